"""Run a whole scan: preflight, manifest job, scan job, summary.

The CLI's ``scan`` is a thin shell over :func:`run_scan`, so the same run can be started
from Python (tests, ``jobs/`` entry points) with the same settings object.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import pyarrow.compute as pc

from deeptrawl import detectors as detector_registry
from deeptrawl import progress, tracing
from deeptrawl.config import ScanSettings
from deeptrawl.fusion import default_fuser
from deeptrawl.storage import open_store
from deeptrawl.warehouse import IcebergSink, count_by


@dataclass
class ScanSummary:
    scan_id: str
    source: str
    detector_set_version: str
    manifest_objects: int = 0
    unchanged: int = 0
    superseded: int = 0
    skipped: int = 0
    analyzed: int = 0
    committed: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def objects_per_s(self) -> float:
        return self.analyzed / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {**self.__dict__, "objects_per_s": round(self.objects_per_s, 2)}


def new_scan_id() -> str:
    return f"scan-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"


def preflight(settings: ScanSettings) -> None:
    """Fail fast, with one clear message, on what would stop the run anyway."""
    source = open_store(settings.source, settings.s3)
    next(iter(source.list()), None)  # unreachable endpoint, bad credentials, missing bucket/folder
    open_store(settings.out, settings.s3, create=True)
    IcebergSink(settings.warehouse).table()


def run_scan(
    settings: ScanSettings,
    pipeline_args: list[str] | None = None,
    on_phase: Callable[[str, int | None], None] | None = None,
) -> ScanSummary:
    """Build/refresh the source's manifest, then scan what has no row yet.

    ``on_phase(name, total)`` is called as each phase starts (for progress bars).
    """
    from pipelines import manifest as manifest_job
    from pipelines import scan as scan_job

    tracing.configure()
    analyzer_detectors = detector_registry.create(settings.detectors)
    if settings.rule is None:  # resolved once here, so every worker fuses the same way
        settings = dataclasses.replace(settings, rule=default_fuser(d.name for d in analyzer_detectors))
    set_version = detector_registry.detector_set_version(analyzer_detectors, settings.rule.version)
    scan_id = new_scan_id()
    summary = ScanSummary(scan_id=scan_id, source=settings.source, detector_set_version=set_version)
    progress.reset("described", "unchanged", "superseded", "skipped", "analyzed", "committed")
    started = time.perf_counter()
    with tracing.tracer().start_as_current_span("deeptrawl.scan") as span:
        span.set_attribute("deeptrawl.scan_id", scan_id)
        span.set_attribute("deeptrawl.source", settings.source)
        preflight(settings)
        carrier = tracing.carrier()

        if on_phase:
            on_phase("manifest", None)
        job = manifest_job.ManifestJob(
            source=settings.source,
            out=settings.out,
            s3=settings.s3,
            limits=settings.limits,
            incremental=settings.incremental,
            trace_carrier=carrier,
        )
        listed = manifest_job.build(job, pipeline_args)
        summary.manifest_objects, summary.unchanged = listed["described"], listed["unchanged"]

        if on_phase:
            on_phase("scan", _inventory_size(settings))
        scanned = scan_job.run(
            scan_job.ScanJob(settings=settings, scan_id=scan_id, detector_set_version=set_version, trace_carrier=carrier),
            pipeline_args,
        )
    tracing.flush()
    summary.seconds = time.perf_counter() - started
    summary.superseded = scanned.get("superseded", 0)
    summary.skipped = scanned.get("skipped", 0)
    summary.analyzed = scanned.get("analyzed", 0)
    rows = IcebergSink(settings.warehouse).read(scan_id=scan_id, columns=["verdict", "status", "error_code"])
    summary.committed = rows.num_rows
    summary.verdicts = count_by(rows, "verdict")
    summary.errors = count_by(rows.filter(pc.equal(rows.column("status"), "error")), "error_code")
    return summary


def _inventory_size(settings: ScanSettings) -> int:
    """Records in the source's completed manifests, from the shards' Parquet footers."""
    from pipelines.manifest import completed_shards, shard_rows

    out = open_store(settings.out, settings.s3, create=True)
    return sum(shard_rows(out, key) for key in completed_shards(out, settings.source))


class ProgressPoller:
    """Draw process-local progress counters on a rich progress bar from a thread."""

    def __init__(self, bar, interval_s: float = 0.2) -> None:
        self.bar = bar
        self.interval_s = interval_s
        self.task = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.phase = ""

    def on_phase(self, name: str, total: int | None) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=self._count(), total=self._count() or 1)
        label = {"manifest": "Listing and describing", "scan": "Scanning"}[name]
        self.phase = name
        self.task = self.bar.add_task(label, total=total)

    def _count(self) -> int:
        if self.phase == "manifest":
            return progress.value("described") + progress.value("unchanged")
        return progress.value("analyzed") + progress.value("skipped") + progress.value("superseded")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            if self.task is not None:
                self.bar.update(self.task, completed=self._count())

    def __enter__(self) -> "ProgressPoller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self.task is not None:
            self.bar.update(self.task, completed=self._count())
