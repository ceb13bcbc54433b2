"""Build the labelled corpus: files, masks, ``manifest.parquet`` and ``corpus.json``.

Layout of ``out_dir``::

    corpus.json                       the recipe: seed, per_kind, kinds, counts, version
    manifest.parquet                  one row per picture (``MANIFEST_SCHEMA``)
    <split>/<kind>/<index>-<source>.<jpg|png|webp>
    <split>/<kind>/<index>-<source>.mask.png   manipulated kinds: white = manipulated

How many: ``per_kind`` pictures of each fake kind, and as many real pictures as all the
selected fake kinds together (``per_kind`` x number of fake kinds), so the two labels
are balanced. Item ``i`` of a kind goes to split ``SPLIT_CYCLE[i % 5]`` (train 60%,
calib 20%, test 20%; three items already cover all three splits) and takes its source
from that split only (``deeptrawl.corpus.sources``), cycling over the split's groups so
that small builds see every group; splice and face-swap donors come from the same split.
Real item ``i`` draws its source as the ``i % n``-th of the n fake kinds would (face
kinds only from sources with a face), so the real pictures have the fakes' mix of
sources: the same share of faces, of video frames and of picture sizes.

Each item first takes a *working picture*: a window of its source at most ``MAX_SIDE``
pixels on a side, at native resolution. Fakes are made from it (real pictures are it),
grey sources stay grey (a colour donor or a generator's colour noise would otherwise
give grey fakes away), and then every picture lives the same ``upload`` life.

Deterministic: item ``i`` of kind ``k`` draws everything from
``np.random.default_rng([seed, KINDS.index(k), i])`` (a retry after a failed fake adds the
attempt number), and iteration order is fixed, so the same seed gives byte-identical
files and manifest on the same machine and software (Real-ESRGAN's CPU kernels and
codecs may round differently elsewhere). The item numbering does not depend on which
other kinds are built or on ``per_kind`` beyond the count, so a larger build extends a
smaller one.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from deeptrawl import __version__
from deeptrawl.corpus import DEFAULT_PER_KIND, KINDS, SPLITS, sources
from deeptrawl.corpus.upload import upload
from deeptrawl.errors import ConfigError

SPLIT_CYCLE = ("train", "calib", "test", "train", "train")
MAX_SIDE = 384
#: Tries per item before it is skipped (a face swap needs faces the detector finds).
ATTEMPTS = 4
FACE_KINDS = ("faceswap", "sbi")
FORMAT = "deeptrawl-corpus"

MANIFEST_SCHEMA = pa.schema([
    pa.field("path", pa.string(), nullable=False),        # relative to the corpus folder
    pa.field("sha256", pa.string(), nullable=False),      # of the file's bytes
    pa.field("label", pa.int8(), nullable=False),         # 0 real, 1 fake
    pa.field("kind", pa.string(), nullable=False),        # deeptrawl.corpus.KINDS
    pa.field("method", pa.string()),                      # generator variant (upsample, splice, copymove)
    pa.field("split", pa.string(), nullable=False),       # deeptrawl.corpus.SPLITS
    pa.field("source_id", pa.string(), nullable=False),
    pa.field("source_group", pa.string(), nullable=False),  # the split unit
    pa.field("source_package", pa.string(), nullable=False),
    pa.field("media_kind", pa.string(), nullable=False),  # photo or frame
    pa.field("donor_id", pa.string()),                    # splice and face-swap donors
    pa.field("donor_group", pa.string()),
    pa.field("compression", pa.string(), nullable=False),  # png, webp, jpeg_hi, jpeg_mid, jpeg_lo
    pa.field("quality", pa.int16()),                      # JPEG/WebP quality; null for PNG
    pa.field("resolution", pa.string(), nullable=False),  # megapixel bucket
    pa.field("scale", pa.float32(), nullable=False),      # upload resize factor (1: none)
    pa.field("width", pa.int32(), nullable=False),
    pa.field("height", pa.int32(), nullable=False),
    pa.field("has_face", pa.bool_(), nullable=False),     # the face detector's finding on the file
    pa.field("mask_path", pa.string()),                   # null for real pictures
])  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class BuildSummary:
    out_dir: Path
    seed: int
    per_kind: int
    kinds: tuple[str, ...]
    counts: dict[str, dict[str, int]]  # split -> kind -> pictures written
    skipped: dict[str, int]  # kind -> items no fake could be made for
    seconds: float

    @property
    def total(self) -> int:
        return sum(sum(by_kind.values()) for by_kind in self.counts.values())

    def as_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "seed": self.seed, "per_kind": self.per_kind, "kinds": list(self.kinds),
                "counts": self.counts, "skipped": self.skipped, "total": self.total,
                "seconds": round(self.seconds, 2)}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class _Item:
    kind: str
    index: int      # within the kind
    split: str
    position: int   # within the kind and split
    pool_kind: str  # the kind whose choice of sources this item follows (a fake kind for reals)


@dataclass(frozen=True, kw_only=True)
class _Made:
    rgb: np.ndarray
    mask: np.ndarray | None
    source: sources.Source
    donor: sources.Source | None = None
    method: str | None = None


def build(out_dir: Path, *, per_kind: int = DEFAULT_PER_KIND, seed: int = 0, kinds: tuple[str, ...] = KINDS,
          wallpapers: bool = False, force: bool = False,
          progress: Callable[[int, int], None] | None = None) -> BuildSummary:  # fmt: skip
    """Write a corpus into ``out_dir`` (see the module docstring) and return its counts.

    ``out_dir`` must be missing, empty or a previous corpus (which is replaced); any
    other non-empty folder raises ``ConfigError`` unless ``force`` (then nothing in it is
    deleted and same-named files are overwritten). ``progress(done, total)`` is called
    after every item.
    """
    started = time.monotonic()
    kinds = _check_kinds(kinds)
    if per_kind < 1:
        raise ConfigError(f"per_kind must be at least 1, got {per_kind}")
    catalog = sources.catalog(wallpapers)  # fails before anything is written
    out_dir = Path(out_dir)
    _prepare(out_dir, force)
    items = plan(kinds, per_kind)
    recipe = {"format": FORMAT, "deeptrawl_version": __version__, "seed": seed, "per_kind": per_kind,
              "kinds": list(kinds), "wallpapers": wallpapers,
              "has_face": "mtcnn" if _detector() else "source hint"}  # fmt: skip
    _write_json(out_dir / "corpus.json", {**recipe, "complete": False})
    rows, skipped = [], dict.fromkeys(kinds, 0)
    for done, item in enumerate(items, 1):
        row = _build_item(out_dir, item, seed, catalog)
        if row is None:
            skipped[item.kind] += 1
        else:
            rows.append(row)
        if progress is not None:
            progress(done, len(items))
    pq.write_table(pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA), out_dir / "manifest.parquet")
    counts = {split: {kind: 0 for kind in kinds} for split in SPLITS}
    for row in rows:
        counts[row["split"]][row["kind"]] += 1
    _write_json(out_dir / "corpus.json", {**recipe, "complete": True, "counts": counts, "skipped": skipped})
    return BuildSummary(out_dir=out_dir, seed=seed, per_kind=per_kind, kinds=kinds, counts=counts, skipped=skipped,
                        seconds=time.monotonic() - started)  # fmt: skip


def plan(kinds: tuple[str, ...], per_kind: int) -> list[_Item]:
    """The items to build, in build order (``KINDS`` order, then index)."""
    fakes = [kind for kind in kinds if kind != "real"] or ["real"]
    items = []
    for kind in kinds:
        n = per_kind * len(fakes) if kind == "real" else per_kind
        seen = dict.fromkeys(SPLITS, 0)
        for index in range(n):
            split = SPLIT_CYCLE[index % len(SPLIT_CYCLE)]
            pool_kind = fakes[index % len(fakes)] if kind == "real" else kind
            items.append(_Item(kind=kind, index=index, split=split, position=seen[split], pool_kind=pool_kind))
            seen[split] += 1
    return items


def _check_kinds(kinds) -> tuple[str, ...]:
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise ConfigError(f"unknown corpus kinds {unknown}; choose from {', '.join(KINDS)}")
    return tuple(kind for kind in KINDS if kind in kinds)


def _prepare(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is a file, not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if _is_corpus(out_dir):
            for split in SPLITS:
                shutil.rmtree(out_dir / split, ignore_errors=True)
            (out_dir / "manifest.parquet").unlink(missing_ok=True)
        elif not force:
            raise ConfigError(f"{out_dir} is not empty and not a deeptrawl corpus; use --force to write into it anyway")
    out_dir.mkdir(parents=True, exist_ok=True)


def _is_corpus(folder: Path) -> bool:
    try:
        return json.loads((folder / "corpus.json").read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _build_item(out_dir: Path, item: _Item, seed: int, catalog: tuple[sources.Source, ...]) -> dict | None:
    kind_index = KINDS.index(item.kind)
    for attempt in range(ATTEMPTS):
        key = [seed, kind_index, item.index] + ([attempt] if attempt else [])
        rng = np.random.default_rng(key)
        made = _make(item, rng, catalog, retry=attempt > 0)
        if made is not None:
            return _write(out_dir, item, made, rng)
    return None


def _eligible(catalog: tuple[sources.Source, ...], split: str, kind: str) -> list[sources.Source]:
    return [s for s in catalog if s.split == split and (s.has_face or kind not in FACE_KINDS)]


def _pick(pool: list[sources.Source], rng: np.random.Generator, position: int | None) -> sources.Source:
    """A source of ``pool``: by cycling over its groups (``position``) or at random."""
    if position is None:
        return pool[int(rng.integers(len(pool)))]
    groups = sorted({s.group for s in pool})
    members = [s for s in pool if s.group == groups[position % len(groups)]]
    return members[int(rng.integers(len(members)))]


def _working(source: sources.Source, rng: np.random.Generator) -> np.ndarray:
    rgb = sources.pixels(source)
    h, w = rgb.shape[:2]
    ch, cw = min(h, MAX_SIDE), min(w, MAX_SIDE)
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return rgb[y : y + ch, x : x + cw]


def _make(item: _Item, rng: np.random.Generator, catalog: tuple[sources.Source, ...], retry: bool) -> _Made | None:
    pool = _eligible(catalog, item.split, item.pool_kind)
    source = _pick(pool, rng, None if retry else item.position + KINDS.index(item.kind))
    rgb = _working(source, rng)
    if item.kind == "real":
        return _Made(rgb=rgb, mask=None, source=source)
    fake, donor, method = _fake(item.kind, np.ascontiguousarray(rgb), source, pool, rng)
    if fake is None:
        return None
    out = fake.rgb
    if sources.is_grey(rgb) and not sources.is_grey(out):
        out = np.repeat(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    return _Made(rgb=out, mask=fake.mask, source=source, donor=donor, method=method)


def _fake(kind: str, rgb: np.ndarray, source: sources.Source, pool: list[sources.Source], rng: np.random.Generator):
    """``(fake or None, donor source or None, method or None)`` of one fake kind."""
    if kind == "esrgan":
        from deeptrawl.corpus.fakes import esrgan

        return esrgan.make(rgb), None, None
    if kind == "upsample":
        from deeptrawl.corpus.fakes import upsample

        method = upsample.METHODS[int(rng.integers(len(upsample.METHODS)))]
        return upsample.make(rgb, rng, method), None, method
    if kind == "copymove":
        from deeptrawl.corpus.fakes import spatial

        method = spatial.COPYMOVE_METHODS[int(rng.integers(len(spatial.COPYMOVE_METHODS)))]
        return spatial.copymove(rgb, rng, method), None, method
    if kind == "splice":
        from deeptrawl.corpus.fakes import spatial

        method = spatial.SPLICE_METHODS[int(rng.integers(len(spatial.SPLICE_METHODS)))]
        donor = _pick([s for s in pool if s.group != source.group], rng, None)
        return spatial.splice(rgb, _working(donor, rng), rng, method), donor, method
    if kind == "sbi":
        return _face_generator("sbi").make(rgb, rng), None, None
    donor, donor_rgb = _face_donor(source, pool, rng)
    return _face_generator("faceswap").make(rgb, donor_rgb, rng), donor, None


def _face_donor(target: sources.Source, pool: list[sources.Source], rng: np.random.Generator):
    """Another face of the split: another group's if there is one, else another frame of the
    same video; a single photo alone in its split with a face donates its own mirror image."""
    others = [s for s in pool if s.group != target.group] or [s for s in pool if s.id != target.id]
    if not others:
        return target, np.ascontiguousarray(_working(target, rng)[:, ::-1])
    donor = _pick(others, rng, None)
    return donor, np.ascontiguousarray(_working(donor, rng))


def _face_generator(kind: str):
    try:
        return importlib.import_module(f"deeptrawl.corpus.fakes.{kind}")
    except ImportError as exc:
        raise ConfigError(f"the {kind} corpus kind needs the face detector (deeptrawl.faces): {exc}") from exc


def _write(out_dir: Path, item: _Item, made: _Made, rng: np.random.Generator) -> dict:
    up = upload(made.rgb, rng, made.mask)
    stem = f"{item.split}/{item.kind}/{item.index:05d}-{made.source.id}"
    path = f"{stem}.{up.extension}"
    (out_dir / path).parent.mkdir(parents=True, exist_ok=True)
    (out_dir / path).write_bytes(up.data)
    mask_path = None
    if up.mask is not None:
        mask_path = f"{stem}.mask.png"
        Image.fromarray(up.mask.astype(np.uint8) * 255).save(out_dir / mask_path, "PNG")
    return {
        "path": path, "sha256": hashlib.sha256(up.data).hexdigest(), "label": int(item.kind != "real"),
        "kind": item.kind, "method": made.method, "split": item.split, "source_id": made.source.id,
        "source_group": made.source.group, "source_package": made.source.package, "media_kind": made.source.media_kind,
        "donor_id": made.donor.id if made.donor else None, "donor_group": made.donor.group if made.donor else None,
        "compression": up.compression, "quality": up.quality, "resolution": up.resolution, "scale": up.scale,
        "width": up.width, "height": up.height, "has_face": _has_face(up.data, made.source), "mask_path": mask_path,
    }  # fmt: skip


def _detector():
    """``deeptrawl.faces.detect_faces``, or None where the face detector is not installed."""
    try:
        from deeptrawl.faces import detect_faces
    except ImportError:
        return None
    return detect_faces


def _has_face(data: bytes, source: sources.Source) -> bool:
    detect = _detector()
    if detect is None:
        return source.has_face
    from deeptrawl.samples.media import decode

    return bool(detect(decode(data)))


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
