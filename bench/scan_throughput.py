#!/usr/bin/env python
"""Scan throughput and memory benchmark for deeptrawl.

Part 1, throughput (one process, one data set, measured back to back):
  (a) decode only:      read file + ``load_item`` + ``item.rgb``             (the floor)
  (b) full scan:        ``run_scan`` with the DirectRunner into a fresh out/warehouse:
                        listing, manifest (fetch, sha256, header probe, Parquet), fetch again,
                        decode, detectors, evidence PNGs, report JSON, Iceberg commits
  (c) analyzer only:    ``Analyzer(detectors.create())`` on the same bytes, no Beam, no
                        storage; per-detector seconds per megapixel from the reports' timings
  and the ratio (b)/(a) in objects/s (project goal: >= 0.60).

  The images are realistic camera-sized JPEGs: scikit-image's bundled photos upscaled with
  Lanczos to 1, 2, 4, 8 and 12 MP, with mild seeded noise and a small EXIF block, saved at
  JPEG quality 75-95.

Part 2, memory: peak RSS of a whole ``deeptrawl scan`` (the real CLI entry point) over a
  small and a large archive of distinct 256x256 JPEG crops (default 1,000 vs 10,000), each
  in a fresh child process. Peak RSS is the child's own ``ru_maxrss`` from ``os.wait4`` (so
  the two numbers are independent); RSS is also sampled from /proc while it runs. The small
  archive is a sub-folder of the large one, generated once.

While scans run, a few product functions are wrapped with timers (storage reads/writes,
sha256, header probe, decode, each detector, evidence rendering, report JSON, Iceberg
commits) to show where the time goes. ``--no-probes`` runs the child scans untouched.

Usage:
  python bench/scan_throughput.py                 # default run (several minutes)
  python bench/scan_throughput.py --quick         # smoke run, well under a minute
  python bench/scan_throughput.py --json          # JSON on stdout instead of tables
  python bench/scan_throughput.py --memory-objects 1000 5000 --skip-throughput
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # ``pipelines`` is a top-level package of the repository
    sys.path.insert(0, str(REPO))

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")
DEFAULT_SIZES_MP = (1, 2, 4, 8, 12)
CHILD_FLAG = "--_child-scan"
#: Detectors to run (``--detectors``); empty means every registered one.
DETECTORS: tuple[str, ...] = ()
GOAL_RATIO = 0.60


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- machine ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    from importlib import metadata

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    versions = {}
    for dist in ("deeptrawl", "apache-beam", "pyiceberg", "pyarrow", "pillow", "numpy", "scikit-image"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        from PIL import features

        versions["libjpeg"] = f"{features.version('jpg')}{' (turbo)' if features.check_feature('libjpeg_turbo') else ''}"
    except Exception:  # noqa: BLE001 - informational only
        pass
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    try:
        from deeptrawl import detectors
        from deeptrawl.config import VerdictRule

        created = detectors.create(DETECTORS)
        detector_set = {
            "detectors": {d.name: d.version for d in created},
            "detector_set_version": detectors.detector_set_version(created, VerdictRule().version),
        }
    except Exception as exc:  # noqa: BLE001 - informational only
        detector_set = {"error": repr(exc)}
    try:
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        dirty = ""
    if rev and dirty:
        rev += " + uncommitted changes"
    return {
        "detector_set": detector_set,
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gib": mem_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "git_revision": rev or "none (no commit yet)",
    }


# -- probes: timers wrapped around product functions ------------------------------------------


class Probes:
    """Wrap functions and methods with cumulative timers; ``remove`` restores them.

    The wrapped functions do not call each other (leaves), except the ``phase:`` ones,
    which bracket whole jobs, so the leaf times add up without double counting.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.spans: dict[str, list[float]] = {}  # label -> [first start, last end] (epoch seconds)
        #: Labels whose every call's duration is kept, in call order (to see growth).
        self.series: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, attr: str, label: str, keep_series: bool = False) -> None:
        missing = object()
        own = owner.__dict__.get(attr, missing) if isinstance(owner, type) else getattr(owner, attr)
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start_epoch, start = time.time(), time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                with self._lock:
                    self.seconds[label] += elapsed
                    self.calls[label] += 1
                    span = self.spans.setdefault(label, [start_epoch, 0.0])
                    span[1] = time.time()
                    if keep_series:
                        self.series.setdefault(label, []).append(elapsed)

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, own if own is not missing else None))

    def install(self) -> "Probes":
        import deeptrawl.analysis as analysis
        import deeptrawl.scan as scan_mod
        import pipelines.manifest as manifest
        import pipelines.scan as scan_job
        from deeptrawl import detectors
        from deeptrawl.report import ForensicReport
        from deeptrawl.storage.local import LocalStore
        from deeptrawl.warehouse.iceberg import IcebergSink

        self.wrap(scan_mod, "preflight", "phase: preflight")
        self.wrap(manifest, "build", "phase: manifest job")
        self.wrap(scan_job, "run", "phase: scan job")
        self.wrap(scan_mod, "_inventory_size", "inventory count (between jobs)")
        self.wrap(LocalStore, "read", "storage: read (objects, manifest shards)")
        self.wrap(LocalStore, "write", "storage: write (reports, evidence, shards)")
        self.wrap(manifest, "probe", "manifest: header probe")
        # sha256 runs twice per object: in the manifest job and again in the analyzer.
        self._wrap_hashlib(manifest, "sha256: manifest")
        self._wrap_hashlib(analysis, "sha256: analyzer")
        self.wrap(analysis, "load_item", "analyzer: decode (load_item)")
        for name in detectors.available():
            self.wrap(detectors.get(name), "analyze", f"detector: {name}")
        from deeptrawl.evidence import EvidenceRenderer

        self.wrap(EvidenceRenderer, "png", "analyzer: evidence PNG")
        self.wrap(ForensicReport, "to_json", "report: to_json")
        self.wrap(IcebergSink, "existing_keys", "iceberg: existing_keys")
        self.wrap(IcebergSink, "append", "iceberg: append (commit)", keep_series=True)
        self.wrap(IcebergSink, "read", "iceberg: read (summary)")
        return self

    def _wrap_hashlib(self, module: Any, label: str) -> None:
        shim = type("HashlibShim", (), {"__getattr__": lambda _self, name: getattr(hashlib, name)})()
        shim.sha256 = hashlib.sha256
        self.wrap(shim, "sha256", label)
        self._undo.append((module, "hashlib", hashlib))
        module.hashlib = shim

    def remove(self) -> None:
        for owner, attr, original in reversed(self._undo):
            if original is None and isinstance(owner, type):
                delattr(owner, attr)
            elif original is not None:
                setattr(owner, attr, original)
        self._undo.clear()

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "calls": dict(self.calls),
            "spans": {k: [round(a, 3), round(b, 3)] for k, v in self.spans.items() for a, b in [v]},
            "series": {k: [round(x, 4) for x in v] for k, v in self.series.items()},
        }


BREAKDOWN_HEADERS = ["component", "calls", "seconds", "% of scan", "ms/object"]


def breakdown_rows(probes: dict[str, Any], total_s: float, objects: int, megapixels: float | None = None) -> list[list[str]]:
    """Rows: component, calls, seconds, % of the scan, ms per object (and s/MP when
    ``megapixels`` is given); plus what no timer covered."""
    seconds, calls = probes["seconds"], probes["calls"]
    leaves = {k: v for k, v in seconds.items() if not k.startswith("phase:")}
    rows = []

    def row(label: str, n: str, value: float) -> list[str]:
        cells = [label, n, f"{value:.2f}", f"{100 * value / total_s:.1f}%", f"{1000 * value / max(objects, 1):.1f}"]
        return cells + ([f"{value / megapixels:.4f}"] if megapixels else [])

    for label in sorted(seconds, key=lambda k: (not k.startswith("phase:"), -seconds[k])):
        rows.append(row(label, str(calls[label]), seconds[label]))
    rows.append(row("unattributed (Beam, Python glue, rows)", "", total_s - sum(leaves.values())))
    return rows


# -- data sets --------------------------------------------------------------------------------


def _cached(folder: Path, spec: dict[str, Any]) -> bool:
    marker = folder / "_bench_spec.json"
    return marker.exists() and json.loads(marker.read_text()) == spec


def _mark(folder: Path, spec: dict[str, Any]) -> None:
    (folder / "_bench_spec.json").write_text(json.dumps(spec))


def _exif(rng) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = str(rng.choice(["Canon EOS R6", "Canon EOS 5D Mark IV", "Canon EOS 90D"]))  # Model
    exif[0x0132] = f"2024:05:{int(rng.integers(1, 29)):02d} 10:{int(rng.integers(0, 60)):02d}:00"  # DateTime
    return exif.tobytes()


def make_photo_set(root: Path, n: int, sizes_mp: tuple[float, ...], seed: int) -> Path:
    """``n`` camera-like JPEGs (sizes cycling over ``sizes_mp``) in ``root/photos/images``.

    The data set lives one level down so the scan's source folder holds nothing else.
    """
    import numpy as np
    from PIL import Image

    from deeptrawl.samples.media import photo

    spec = {"kind": "photos", "n": n, "sizes_mp": list(sizes_mp), "seed": seed, "version": 1}
    base = root / "photos"
    folder = base / "images"
    if _cached(base, spec):
        log(f"reusing {n} photos in {folder}")
        return folder
    shutil.rmtree(base, ignore_errors=True)
    folder.mkdir(parents=True)
    log(f"generating {n} JPEGs of {'/'.join(f'{s:g}' for s in sizes_mp)} MP in {folder} ...")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    sources = {name: Image.fromarray(photo(name)).convert("RGB") for name in PHOTOS}
    for i in range(n):
        name = PHOTOS[i % len(PHOTOS)]
        mp = sizes_mp[i % len(sizes_mp)]
        src = sources[name]
        aspect = src.width / src.height
        height = round(math.sqrt(mp * 1e6 / aspect))
        width = round(height * aspect)
        big = src.resize((width, height), Image.LANCZOS)
        pixels = np.asarray(big).astype(np.float32)
        pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * 2.0  # mild sensor-like noise
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        quality = int(rng.integers(75, 96))
        image.save(folder / f"img-{i:04d}-{name}-{mp:g}mp-q{quality}.jpg", "JPEG", quality=quality, exif=_exif(rng))
    _mark(base, spec)
    log(f"  done in {time.perf_counter() - started:.1f} s")
    return folder


def make_crop_set(root: Path, small: int, large: int, side: int, seed: int) -> tuple[Path, Path]:
    """``large`` distinct ``side``x``side`` JPEG crops; the first ``small`` of them in a
    sub-folder, so that sub-folder is the small archive and its parent the large one."""
    import numpy as np
    from PIL import Image

    from deeptrawl.samples.media import photo

    spec = {"kind": "crops", "small": small, "large": large, "side": side, "seed": seed, "version": 1}
    base = root / "crops"
    top = base / "archive"
    subset = top / "subset"
    rest = top / "rest"
    if _cached(base, spec):
        log(f"reusing {large} crops in {top}")
        return subset, top
    shutil.rmtree(base, ignore_errors=True)
    subset.mkdir(parents=True)
    rest.mkdir(parents=True)
    log(f"generating {large} distinct {side}x{side} JPEG crops in {top} ...")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    sources = [np.asarray(Image.fromarray(photo(name)).convert("RGB")) for name in PHOTOS]
    sources = [s for s in sources if min(s.shape[:2]) >= side] or [np.asarray(Image.fromarray(photo("astronaut")).convert("RGB").resize((side * 2, side * 2)))]
    for i in range(large):
        src = sources[i % len(sources)]
        y = int(rng.integers(0, src.shape[0] - side + 1))
        x = int(rng.integers(0, src.shape[1] - side + 1))
        crop = src[y : y + side, x : x + side].astype(np.int16)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = crop + rng.integers(-2, 3, crop.shape, dtype=np.int16)  # makes every object distinct
        buf = io.BytesIO()
        Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(75, 96)))
        folder = subset if i < small else rest
        (folder / f"crop-{i:06d}.jpg").write_bytes(buf.getvalue())
    _mark(base, spec)
    log(f"  done in {time.perf_counter() - started:.1f} s")
    return subset, top


# -- part 1: throughput -------------------------------------------------------------------------


def bench_decode(files: list[Path]) -> dict[str, Any]:
    from deeptrawl.config import Limits
    from deeptrawl.media.probe import load_item

    limits = Limits()
    load_item("warmup", files[0].read_bytes(), limits).rgb  # imports, plugin registration
    pixels = nbytes = 0
    cpu_started, started = time.process_time(), time.perf_counter()
    for path in files:
        data = path.read_bytes()
        item = load_item(str(path), data, limits)
        rgb = item.rgb
        pixels += rgb.shape[0] * rgb.shape[1]
        nbytes += len(data)
        del item, rgb
    seconds = time.perf_counter() - started
    return {
        "objects": len(files),
        "megapixels": round(pixels / 1e6, 2),
        "bytes": nbytes,
        "seconds": round(seconds, 3),
        "cpu_s": round(time.process_time() - cpu_started, 3),
        "objects_per_s": round(len(files) / seconds, 3),
        "megapixels_per_s": round(pixels / 1e6 / seconds, 2),
    }


def bench_resave(files: list[Path]) -> dict[str, Any]:
    """Seconds for one JPEG re-save round trip (encode at q90 + decode, libjpeg through
    OpenCV) of every whole image, in colour and luma only: the least any error-level
    analysis that re-saves the whole image once must spend, on top of the decode."""
    import cv2
    import numpy as np

    from deeptrawl.config import Limits
    from deeptrawl.media.probe import load_item

    # Also the decode of the Y plane alone (``load_item(colour=False)``: what a scan does
    # when none of its detectors reads colour), a stricter floor than (a) for such scans.
    seconds = {"colour": 0.0, "luma": 0.0, "luma_decode": 0.0}
    for path in files:
        started = time.perf_counter()
        load_item(str(path), path.read_bytes(), Limits(), colour=False).luma
        seconds["luma_decode"] += time.perf_counter() - started
        rgb = np.ascontiguousarray(load_item(str(path), path.read_bytes(), Limits()).rgb)
        for mode, pixels, flag in (("colour", rgb, cv2.IMREAD_COLOR), ("luma", cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.IMREAD_GRAYSCALE)):
            started = time.perf_counter()
            cv2.imdecode(cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])[1], flag)
            seconds[mode] += time.perf_counter() - started
    return {mode: round(s, 3) for mode, s in seconds.items()}


def bench_analyzer(files: list[Path], evidence: bool) -> dict[str, Any]:
    from deeptrawl import detectors
    from deeptrawl.analysis import Analyzer, ObjectInput

    analyzer = Analyzer(detectors.create(DETECTORS))
    analyzer.setup()
    totals: dict[str, float] = defaultdict(float)
    pixels = 0
    json_s = 0.0
    cpu_started, started = time.process_time(), time.perf_counter()
    for i, path in enumerate(files):
        # An evidence prefix makes the analyzer render evidence PNGs, as the scan does.
        prefix = f"mem://evidence/{i}" if evidence else None
        analysis = analyzer.analyze(ObjectInput(uri=str(path), data=path.read_bytes(), evidence_prefix=prefix))
        report = analysis.report
        t0 = time.perf_counter()
        report.to_json()
        json_s += time.perf_counter() - t0
        if report.verdict.label == "error":
            raise RuntimeError(f"analyzer failed on {path}: {report.errors}")
        pixels += (report.media.width or 0) * (report.media.height or 0)
        for key, value in report.timings.items():
            totals[key] += value
    seconds = time.perf_counter() - started
    mp = pixels / 1e6
    names = [d.name for d in analyzer.detectors]
    per_stage = {}
    for key in ["decode", *names, *(["evidence"] if evidence else [])]:
        per_stage[key] = {
            "seconds": round(totals.get(key, 0.0), 3),
            "ms_per_object": round(1000 * totals.get(key, 0.0) / len(files), 1),
            "s_per_megapixel": round(totals.get(key, 0.0) / mp, 4),
        }
    per_stage["report_json"] = {
        "seconds": round(json_s, 3),
        "ms_per_object": round(1000 * json_s / len(files), 1),
        "s_per_megapixel": round(json_s / mp, 4),
    }
    detectors_s = sum(totals.get(n, 0.0) for n in names)
    return {
        "objects": len(files),
        "megapixels": round(mp, 2),
        "seconds": round(seconds, 3),
        "cpu_s": round(time.process_time() - cpu_started, 3),
        "objects_per_s": round(len(files) / seconds, 3),
        "detectors": names,
        "renders_evidence": evidence,
        "detectors_only_s_per_object": round(detectors_s / len(files), 4),
        "detectors_only_s_per_megapixel": round(detectors_s / mp, 4),
        "stages": per_stage,
    }


def scan_settings(source: Path, out: Path):
    from deeptrawl.config import ScanSettings, WarehouseSettings

    return ScanSettings(
        source=str(source), out=str(out), warehouse=WarehouseSettings(location=str(out / "warehouse")), detectors=DETECTORS
    )


def bench_scan_inprocess(source: Path, out: Path, beam_args: list[str], use_probes: bool) -> dict[str, Any]:
    from deeptrawl.scan import run_scan

    shutil.rmtree(out, ignore_errors=True)
    probes = Probes().install() if use_probes else None
    cpu_started = time.process_time()
    try:
        summary = run_scan(scan_settings(source, out), ["--runner=DirectRunner", *beam_args])
    finally:
        if probes:
            probes.remove()
    cpu_s = time.process_time() - cpu_started
    result = {"summary": summary.as_dict(), "cpu_s": round(cpu_s, 2), "out_bytes": _tree_bytes(out)}
    if summary.analyzed == 0 or summary.errors:
        raise RuntimeError(f"scan did not analyse cleanly: {summary.as_dict()}")
    if probes:
        result["probes"] = probes.as_dict()
    return result


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def part_throughput(args, work: Path) -> dict[str, Any]:
    folder = make_photo_set(work, args.objects, tuple(args.sizes_mp), args.seed)
    files = sorted(p for p in folder.iterdir() if p.suffix == ".jpg")
    log(f"(a) decode only: {len(files)} files ...")
    decode = bench_decode(files)
    log(f"    {decode['objects_per_s']:.2f} objects/s, {decode['megapixels_per_s']:.1f} MP/s")
    sha_started = time.perf_counter()
    for path in files:
        hashlib.sha256(path.read_bytes()).hexdigest()
    sha_s = time.perf_counter() - sha_started
    resave = bench_resave(files)
    log(f"(c) analyzer only (decode + detectors{' + evidence' if args.analyzer_evidence else ''}, no Beam, no storage) ...")
    analyzer = bench_analyzer(files, args.analyzer_evidence)
    log(f"    {analyzer['objects_per_s']:.2f} objects/s")
    log("(b) full scan (run_scan, DirectRunner) ...")
    scan = bench_scan_inprocess(folder, work / "runs" / "throughput-out", args.beam_arg, not args.no_probes)
    summary = scan["summary"]
    log(f"    {summary['objects_per_s']:.2f} objects/s over {summary['seconds']:.1f} s")
    if not args.keep:
        shutil.rmtree(work / "runs" / "throughput-out", ignore_errors=True)
    ratio = summary["objects_per_s"] / decode["objects_per_s"]
    # The same ratio from CPU seconds: both are single-threaded, so this one barely moves
    # when other work shares the machine (the wall-clock one does).
    cpu_ratio = decode["cpu_s"] / scan["cpu_s"] if scan["cpu_s"] > 0 else None
    # What the scan costs beyond the detectors' own work (Beam, listing, hashing, decode,
    # evidence, reports, Iceberg), against the same decode bound: the pipeline's share.
    detector_s = sum(v for k, v in scan.get("probes", {}).get("seconds", {}).items() if k.startswith("detector: "))
    rest_s = summary["seconds"] - detector_s
    # Ceilings of the ratio for any ELA that re-saves each whole image once (one quality,
    # no calibration copy): the decode plus that round trip, alone and on top of what this
    # scan spends outside its detectors.
    ceilings = {
        f"{mode}_resave_{where}": round(decode["seconds"] / (base + resave[mode]), 4)
        for mode in ("colour", "luma")
        for where, base in (("decode", decode["seconds"]), ("pipeline", rest_s))
    }
    return {
        "data": {"folder": str(folder), "objects": len(files), "sizes_mp": list(args.sizes_mp), "megapixels": decode["megapixels"], "bytes": decode["bytes"]},
        "decode_only": decode,
        "sha256_only": {"seconds": round(sha_s, 3), "MB_per_s": round(decode["bytes"] / 1e6 / sha_s, 1)},
        "resave_round_trip_s": resave,
        "ratio_ceilings_one_whole_image_resave": ceilings,
        "analyzer_only": analyzer,
        "full_scan": scan,
        "ratio_scan_to_decode": round(ratio, 4),
        "ratio_scan_to_decode_cpu": round(cpu_ratio, 4) if cpu_ratio else None,
        "goal_ratio": GOAL_RATIO,
        "goal_met": ratio >= GOAL_RATIO,
        "ratio_scan_to_luma_decode": round(summary["objects_per_s"] * resave["luma_decode"] / len(files), 4),
        "ratio_scan_without_detectors_to_decode": round(decode["seconds"] / rest_s, 4) if detector_s and rest_s > 0 else None,
    }


# -- part 2: memory -------------------------------------------------------------------------------


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


#: Runs the scan as its own child and reports that child's rusage. The scan must not be
#: started straight from this (big) benchmark process: Linux carries the RSS high-water
#: mark of the pre-exec address space into the new program's ``ru_maxrss`` (with vfork,
#: that is the parent's), so every child would report at least this process's peak.
#: This wrapper is a small process, so what it passes on is negligible (it reports it).
RUSAGE_WRAPPER = r"""
import json, os, subprocess, sys
result_file, pid_file = sys.argv[1], sys.argv[2]
hwm = next((int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")), None)
proc = subprocess.Popen(sys.argv[3:])
with open(pid_file, "w") as f:
    f.write(str(proc.pid))
_, status, ru = os.wait4(proc.pid, 0)
with open(result_file, "w") as f:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "maxrss_kib": ru.ru_maxrss, "utime": ru.ru_utime,
               "stime": ru.ru_stime, "wrapper_hwm_kib": hwm}, f)
"""


def run_child_scan(source: Path, out: Path, beam_args: list[str], use_probes: bool, log_dir: Path) -> dict[str, Any]:
    """One ``deeptrawl scan`` in a fresh process; its peak RSS from ``os.wait4`` (via a
    small wrapper process, see ``RUSAGE_WRAPPER``) and RSS sampled from /proc meanwhile."""
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    probe_file = out.parent / f"{out.name}-probes.json"
    rusage_file, pid_file = out.parent / f"{out.name}-rusage.json", out.parent / f"{out.name}.pid"
    for f in (probe_file, rusage_file, pid_file):
        f.unlink(missing_ok=True)
    cli = ["scan", str(source), "--out", str(out), "--no-progress", "--json", *beam_args]
    if DETECTORS:
        cli += ["--detectors", ",".join(DETECTORS)]
    if use_probes:
        cmd = [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, str(probe_file), *cli]
    else:
        cmd = [sys.executable, "-m", "deeptrawl.cli", *cli]
    wrapper = [sys.executable, "-c", RUSAGE_WRAPPER, str(rusage_file), str(pid_file), *cmd]
    stdout_path, stderr_path = log_dir / f"{out.name}.stdout", log_dir / f"{out.name}.stderr"
    samples: list[tuple[float, int]] = []
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(wrapper, stdout=stdout, stderr=stderr, cwd=str(REPO))
        done = threading.Event()

        def sample() -> None:
            pid = None
            while not done.wait(0.2):
                if pid is None:
                    try:
                        pid = int(pid_file.read_text())
                    except (OSError, ValueError):
                        continue
                rss = _rss_kib(pid)
                if rss is not None:
                    samples.append((time.time(), rss))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
    usage = json.loads(rusage_file.read_text()) if rusage_file.exists() else {"exit": proc.returncode}
    if proc.returncode != 0 or usage["exit"] != 0:
        raise RuntimeError(
            f"child scan exited {usage['exit']}: {' '.join(cmd)}\n{stderr_path.read_text(errors='replace')[-3000:]}"
        )
    summary = json.loads(stdout_path.read_text())
    result: dict[str, Any] = {
        "command": " ".join(cmd),
        "summary": summary,
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(usage["maxrss_kib"] / 1024, 1),  # Linux: KiB
        "wrapper_hwm_mib": round((usage["wrapper_hwm_kib"] or 0) / 1024, 1),
        "cpu_user_s": round(usage["utime"], 1),
        "cpu_sys_s": round(usage["stime"], 1),
        "max_sampled_rss_mib": round(max((kib for _, kib in samples), default=0) / 1024, 1),
        "rss_samples_mib": [[round(t, 2), round(kib / 1024, 1)] for t, kib in samples],
        "out_bytes": _tree_bytes(out),
    }
    if use_probes and probe_file.exists():
        result["probes"] = json.loads(probe_file.read_text())
        result["child_vmhwm_mib"] = result["probes"].get("vmhwm_mib")
        spans = result["probes"]["spans"]
        per_phase = {}
        for phase in ("phase: preflight", "phase: manifest job", "phase: scan job"):
            if phase in spans:
                lo, hi = spans[phase]
                inside = [m for t, m in result["rss_samples_mib"] if lo <= t <= hi]
                per_phase[phase.removeprefix("phase: ")] = max(inside) if inside else None
        result["max_sampled_rss_mib_by_phase"] = per_phase
    return result


def child_scan_main(argv: list[str]) -> None:
    """Child mode: the real ``deeptrawl`` CLI, with timers around product functions."""
    probe_file, cli_args = Path(argv[0]), argv[1:]
    import resource

    from deeptrawl.cli import main

    probes = Probes().install()
    try:
        main(cli_args, prog_name="deeptrawl")
    finally:
        data = probes.as_dict()
        # VmHWM is this address space's own high-water mark (ru_maxrss may include the
        # launcher's, carried over exec).
        hwm = next((int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:")), 0)
        data["vmhwm_mib"] = round(hwm / 1024, 1)
        data["ru_maxrss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        probe_file.write_text(json.dumps(data))


def part_memory(args, work: Path) -> dict[str, Any]:
    small_n, large_n = args.memory_objects
    if not 0 < small_n < large_n:
        raise SystemExit("--memory-objects needs SMALL LARGE with 0 < SMALL < LARGE")
    small, large = make_crop_set(work, small_n, large_n, args.crop_side, args.seed)
    runs_dir = work / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for n, source in ((small_n, small), (large_n, large)):
        log(f"memory: scanning {n} objects in a fresh process ...")
        out = runs_dir / f"memory-{n}-out"
        run = run_child_scan(source, out, args.beam_arg, not args.no_probes, runs_dir)
        run["objects"] = n
        if run["summary"]["analyzed"] != n or run["summary"]["errors"]:
            raise RuntimeError(f"expected {n} clean objects, got {run['summary']}")
        log(f"    peak RSS {run['peak_rss_mib']:.0f} MiB, {run['summary']['objects_per_s']:.1f} objects/s, wall {run['wall_s']:.0f} s")
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
        runs.append(run)
    a, b = runs
    per_obj_s = (b["summary"]["seconds"] - a["summary"]["seconds"]) / (large_n - small_n)
    fixed_s = a["summary"]["seconds"] - small_n * per_obj_s
    slope_kib = (b["peak_rss_mib"] - a["peak_rss_mib"]) * 1024 / (large_n - small_n)
    return {
        "crop_side": args.crop_side,
        "runs": runs,
        "peak_ratio": round(b["peak_rss_mib"] / a["peak_rss_mib"], 3),
        "rss_growth_kib_per_object": round(slope_kib, 2),
        "projected_peak_gib_at_1M_objects": round((a["peak_rss_mib"] + slope_kib * (1_000_000 - small_n) / 1024) / 1024, 1),
        "fit_fixed_s": round(fixed_s, 2),
        "fit_marginal_objects_per_s": round(1 / per_obj_s, 1) if per_obj_s > 0 else None,
    }


# -- output -------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    right = [i > 0 for i in range(len(headers))]

    def fmt(row):
        return "  ".join(str(c).rjust(w) if r else str(c).ljust(w) for c, w, r in zip(row, widths, right))

    return "\n".join([fmt(headers), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)])


def contention_notes(measurements: list[tuple[str, float, float]]) -> list[str]:
    """A warning where a single-threaded measurement got much less CPU than wall time:
    something else was running on the machine, and that time is not to be trusted."""
    return [
        f"  WARNING {name}: CPU {cpu:.1f} s over {wall:.1f} s wall ({cpu / wall:.0%}): other load on the machine?"
        for name, cpu, wall in measurements
        if wall > 0.2 and cpu / wall < 0.85
    ]


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    pkgs = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    lines = [
        "deeptrawl scan benchmark",
        f"  date:    {results['date']}",
        f"  command: {results['command']}",
        f"  machine: {m['cpu']}, {m['usable_cpus']} usable of {m['logical_cpus']} logical CPUs, {m['ram_gib']} GiB RAM",
        f"           {m['os']}, Python {m['python']}",
        f"           {pkgs}",
        f"  deeptrawl revision: {m['git_revision']}; detectors: "
        + ", ".join(f"{k} {v}" for k, v in m["detector_set"].get("detectors", {}).items())
        + f" ({m['detector_set'].get('detector_set_version')})",
        "",
    ]
    t = results.get("throughput")
    if t:
        d, s, an = t["decode_only"], t["full_scan"]["summary"], t["analyzer_only"]
        mp = t["data"]["megapixels"]
        lines += [
            f"THROUGHPUT: {t['data']['objects']} JPEGs, {mp:.0f} MP in all ({mp / t['data']['objects']:.1f} MP mean), "
            f"{t['data']['bytes'] / 1e6:.0f} MB, sizes {'/'.join(f'{x:g}' for x in t['data']['sizes_mp'])} MP",
            table(
                ["measurement", "seconds", "CPU s", "objects/s", "MP/s", "ms/object"],
                [
                    ["(a) decode only (read + load_item + rgb)", f"{d['seconds']:.2f}", f"{d['cpu_s']:.2f}", f"{d['objects_per_s']:.2f}", f"{d['megapixels_per_s']:.1f}", f"{1000 * d['seconds'] / d['objects']:.0f}"],
                    [f"(c) analyzer only (decode + detectors{' + evidence' if an['renders_evidence'] else ''})", f"{an['seconds']:.2f}", f"{an['cpu_s']:.2f}", f"{an['objects_per_s']:.2f}", f"{mp / an['seconds']:.1f}", f"{1000 * an['seconds'] / an['objects']:.0f}"],
                    ["(b) full scan (run_scan, DirectRunner)", f"{s['seconds']:.2f}", f"{t['full_scan']['cpu_s']:.2f}", f"{s['objects_per_s']:.2f}", f"{mp / s['seconds']:.1f}", f"{1000 * s['seconds'] / max(s['analyzed'], 1):.0f}"],
                ],
            ),
            *contention_notes([("(a)", d["cpu_s"], d["seconds"]), ("(c)", an["cpu_s"], an["seconds"]), ("(b)", t["full_scan"]["cpu_s"], s["seconds"])]),
            f"  full scan / decode only = {t['ratio_scan_to_decode']:.3f}  (goal >= {GOAL_RATIO:.2f}: "
            f"{'MET' if t['goal_met'] else 'NOT MET'}); from CPU seconds: {t['ratio_scan_to_decode_cpu']:.3f}",
            *(
                [f"  full scan without the detectors' own time / decode only = {t['ratio_scan_without_detectors_to_decode']:.3f}"]
                if t.get("ratio_scan_without_detectors_to_decode")
                else []
            ),
            f"  decode of the Y plane only (no colour), stricter floor for scans whose detectors read no colour: "
            f"{t['resave_round_trip_s']['luma_decode']:.2f} s; full scan / that = {t['ratio_scan_to_luma_decode']:.3f}",
            f"  sha256 alone over the same bytes: {t['sha256_only']['seconds']:.2f} s ({t['sha256_only']['MB_per_s']:.0f} MB/s)",
            *(
                [
                    f"  one JPEG re-save round trip of every whole image (q90, OpenCV): colour {t['resave_round_trip_s']['colour']:.2f} s, "
                    f"luma only {t['resave_round_trip_s']['luma']:.2f} s",
                    "  ceiling of the ratio for ANY ELA re-saving each whole image once (one quality, no calibration):",
                    f"    decode + round trip only: colour {c['colour_resave_decode']:.3f}, luma {c['luma_resave_decode']:.3f}; "
                    f"on top of this scan's pipeline: colour {c['colour_resave_pipeline']:.3f}, luma {c['luma_resave_pipeline']:.3f}",
                ]
                if (c := t.get("ratio_ceilings_one_whole_image_resave"))
                else []
            ),
            "",
            "  analyzer stages (from the reports' timings):",
            table(
                ["stage", "seconds", "ms/object", "s/MP"],
                [[k, f"{v['seconds']:.2f}", f"{v['ms_per_object']:.0f}", f"{v['s_per_megapixel']:.4f}"] for k, v in an["stages"].items()],
            ),
            f"  detectors only: {an['detectors_only_s_per_object']:.3f} s/object, {an['detectors_only_s_per_megapixel']:.4f} s/MP",
            "",
        ]
        if "probes" in t["full_scan"]:
            lines += [
                "  where the full scan's time went (timers around product functions):",
                table([*BREAKDOWN_HEADERS, "s/MP"], breakdown_rows(t["full_scan"]["probes"], s["seconds"], s["analyzed"], mp)),
                "",
            ]
    mem = results.get("memory")
    if mem:
        a, b = mem["runs"]
        lines += [
            f"MEMORY: whole `deeptrawl scan` in a fresh process, {mem['crop_side']}x{mem['crop_side']} JPEG crops",
            table(
                ["objects", "peak RSS MiB (wait4)", "VmHWM MiB", "max sampled MiB", "scan s", "objects/s", "wall s (incl. start-up)", "CPU user+sys s", "out MB"],
                [
                    [f"{r['objects']:,}", f"{r['peak_rss_mib']:.0f}", f"{r['child_vmhwm_mib']:.0f}" if r.get("child_vmhwm_mib") else "-",
                     f"{r['max_sampled_rss_mib']:.0f}", f"{r['summary']['seconds']:.1f}", f"{r['summary']['objects_per_s']:.1f}",
                     f"{r['wall_s']:.1f}", f"{r['cpu_user_s'] + r['cpu_sys_s']:.0f}", f"{r['out_bytes'] / 1e6:.0f}"]
                    for r in (a, b)
                ],
            ),
            f"  (launcher high-water carried into wait4's number: <= {max(a['wrapper_hwm_mib'], b['wrapper_hwm_mib']):.0f} MiB)",
            *contention_notes([(f"{r['objects']:,} objects", r["cpu_user_s"] + r["cpu_sys_s"], r["wall_s"]) for r in (a, b)]),
            f"  peak RSS ratio {b['objects']:,} / {a['objects']:,} objects = {mem['peak_ratio']:.2f} (flat would be ~1.0); "
            f"growth {mem['rss_growth_kib_per_object']:.1f} KiB/object -> ~{mem['projected_peak_gib_at_1M_objects']:.1f} GiB at 1M objects if linear",
            f"  straight line through the two scans: {mem['fit_fixed_s']:.1f} s fixed + objects / {mem['fit_marginal_objects_per_s']} objects/s",
        ]
        if "max_sampled_rss_mib_by_phase" in b:
            lines.append(
                "  max sampled RSS by phase (MiB): "
                + "; ".join(
                    f"{r['objects']:,}: " + ", ".join(f"{k} {v:.0f}" for k, v in r["max_sampled_rss_mib_by_phase"].items() if v is not None)
                    for r in (a, b)
                )
            )
        for r in (a, b):
            commits = r.get("probes", {}).get("series", {}).get("iceberg: append (commit)")
            if commits and len(commits) >= 4:
                q = max(len(commits) // 10, 1)
                first, last = commits[:q], commits[-q:]
                lines.append(
                    f"  Iceberg commits, {r['objects']:,} objects: {len(commits)} commits, first {q} average "
                    f"{1000 * sum(first) / q:.0f} ms, last {q} average {1000 * sum(last) / q:.0f} ms"
                )
        for r in (a, b):
            if "probes" in r:
                lines += [
                    f"  where the time went, {r['objects']:,} objects:",
                    table(BREAKDOWN_HEADERS, breakdown_rows(r["probes"], r["summary"]["seconds"], r["objects"])),
                ]
        lines.append("")
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Measure deeptrawl scan throughput (vs. decode-only) and peak memory vs. archive size.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    # 180 so that the scan's start-up (two Beam pipelines, the Iceberg table: about 1 s)
    # weighs on the ratio about as little as in a real archive scan; at 60 it is a quarter
    # of the run (bench/RESULTS.md has both).
    p.add_argument("--objects", type=int, default=180, help="JPEGs for the throughput part")
    p.add_argument("--sizes-mp", type=float, nargs="+", default=list(DEFAULT_SIZES_MP), help="image sizes (megapixels) cycled over")
    p.add_argument("--memory-objects", type=int, nargs=2, default=[1000, 10000], metavar=("SMALL", "LARGE"), help="archive sizes for the memory part")
    p.add_argument("--crop-side", type=int, default=256, help="side of the memory part's JPEG crops")
    p.add_argument("--quick", action="store_true", help="smoke run: --objects 6 --memory-objects 100 300")
    p.add_argument("--analyzer-evidence", action="store_true", help="(c) also renders evidence PNGs (the scan always does; its timers show that cost)")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--beam-arg", action="append", default=[], help="extra Beam argument, e.g. --beam-arg=--direct_num_workers=2 (repeatable)")
    p.add_argument("--no-probes", action="store_true", help="no timers around product functions (plain `python -m deeptrawl.cli scan` children)")
    p.add_argument("--workdir", type=Path, default=None, help="where data sets and outputs go; data sets are reused from here [default: a new temp dir]")
    p.add_argument("--keep", action="store_true", help="keep the work dir and scan outputs")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--detectors", default="", help="comma-separated detectors (default: all registered)")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout instead of tables")
    p.add_argument("--save", type=Path, default=None, help="also write the JSON results to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.objects = 6
        args.memory_objects = [100, 300]
    if args.objects < 1:
        p.error("--objects must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == CHILD_FLAG:
        child_scan_main(argv[1:])
        return
    args = parse_args(argv)
    global DETECTORS
    DETECTORS = tuple(n for n in args.detectors.split(",") if n)
    results: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([Path(sys.executable).name, "bench/scan_throughput.py", *argv]),
        "machine": machine(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    temp = args.workdir is None
    work = Path(tempfile.mkdtemp(prefix="deeptrawl-bench-")) if temp else args.workdir.absolute()
    work.mkdir(parents=True, exist_ok=True)
    log(f"work dir: {work}")
    started = time.perf_counter()
    try:
        if not args.skip_throughput:
            results["throughput"] = part_throughput(args, work)
        if not args.skip_memory:
            results["memory"] = part_memory(args, work)
    finally:
        if temp and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif not args.keep:
            shutil.rmtree(work / "runs", ignore_errors=True)
    results["benchmark_wall_s"] = round(time.perf_counter() - started, 1)
    log(f"benchmark finished in {results['benchmark_wall_s']:.0f} s")
    if args.save:
        args.save.write_text(json.dumps(results, indent=2) + "\n")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(render(results))


if __name__ == "__main__":
    main()
