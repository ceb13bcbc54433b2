"""Scan job: manifests -> detectors -> one Iceberg row per object, plus reports and evidence.

    completed manifest shards --reshuffle--> per shard: drop records a newer manifest
        superseded and objects already in the table --batch--> analyse (fetch,
        detectors, verdict; write report JSON + evidence PNGs) --batch--> commit to Iceberg

Exactly one row per object per detector-set version: the row key is derived from the
object URI, its content version in the manifest and the detector set. Rows already in
the table are skipped before fetching, and every commit drops keys that landed in the
meantime, so a rerun adds nothing and a scan killed at any point resumes with nothing
lost or duplicated. Reports and evidence are written (idempotently, at paths derived
from the row key) *before* their row is committed, so a committed row never points at a
missing report.

Memory does not grow with the archive: only shard keys are shuffled (the DirectRunner
holds a shuffle in memory), objects stream from a shard through analysis to the commit,
and what a worker remembers per object (row keys already committed, which manifest holds
an object's newest record) is kept as 8-byte digests (``deeptrawl.keyset``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from opentelemetry import propagate

from deeptrawl import detectors as detector_registry
from deeptrawl import progress, tracing
from deeptrawl.analysis import Analyzer, ObjectInput
from deeptrawl.config import ScanSettings
from deeptrawl.errors import LimitExceeded, MediaError
from deeptrawl.media.probe import check_size
from deeptrawl.storage import open_store
from deeptrawl.warehouse import IcebergSink, row_from_report, row_key
from pipelines.manifest import completed_manifests, content_version, newest_manifests, read_shard
from pipelines.metrics import counter
from pipelines.metrics import run as run_pipeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanJob:
    settings: ScanSettings
    scan_id: str
    detector_set_version: str
    trace_carrier: dict[str, str] = field(default_factory=dict)


def make_analyzer(job: ScanJob) -> Analyzer:
    s = job.settings
    analyzer = Analyzer(detector_registry.create(s.detectors), limits=s.limits, rule=s.rule, scan_id=job.scan_id)
    if analyzer.set_version != job.detector_set_version:
        raise RuntimeError("detector set differs between the driver and this worker (mixed deeptrawl versions?)")
    return analyzer


class ReadShard(beam.DoFn):
    """Emit the records of one manifest shard that still need a row, with their row key.

    A record is dropped when a newer manifest of the source lists the same object (it
    changed since: the newer record is scanned instead) or when its row is already in
    the table.
    """

    def __init__(self, job: ScanJob, manifests: list[list[str]]) -> None:
        self.job = job
        self.manifests = manifests  # shard keys of each completed manifest, oldest first
        self.superseded = counter("superseded")
        self.skipped = counter("skipped")

    def setup(self) -> None:
        s = self.job.settings
        self.out = open_store(s.out, s.s3, create=True)
        self.done = IcebergSink(s.warehouse).existing_keys()
        self.newest = newest_manifests(self.out, self.manifests)

    def process(self, shard: tuple[int, str]) -> Iterator[dict[str, Any]]:
        number, key = shard
        records = read_shard(self.out, key).to_pylist()
        newest = self.newest.newest(r["object_uri"] for r in records) if self.newest else None
        for i, record in enumerate(records):
            if newest is not None and newest[i] > number:
                self.superseded.inc()
                progress.advance("superseded")
                continue
            row_key_ = row_key(record["object_uri"], content_version(record), self.job.detector_set_version)
            if row_key_ in self.done:
                self.skipped.inc()
                progress.advance("skipped")
                continue
            yield {**record, "row_key": row_key_}


class AnalyzeBatch(beam.DoFn):
    """Fetch and analyse a batch; write reports and evidence; emit result rows."""

    def __init__(self, job: ScanJob) -> None:
        self.job = job
        self.analyzed = counter("analyzed")

    def setup(self) -> None:
        s = self.job.settings
        self.source = open_store(s.source, s.s3)
        self.out = open_store(s.out, s.s3, create=True)
        self.analyzer = make_analyzer(self.job)
        self.analyzer.setup()
        self.parent = propagate.extract(self.job.trace_carrier)

    def process(self, batch: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        inputs = [self._fetch(record) for record in batch]
        analyses = self.analyzer.analyze_batch(inputs, parent=self.parent)
        for record, analysis in zip(batch, analyses, strict=True):
            for uri, png in analysis.evidence.items():
                name = uri.rsplit("/", 1)[1]
                self.out.write(f"{_evidence_key(record['row_key'])}/{name}", png, content_type="image/png")
            report_key = f"reports/{record['row_key'][:2]}/{record['row_key']}.json"
            report_uri = self.out.write(report_key, analysis.report.to_json().encode(), content_type="application/json")
            yield row_from_report(
                analysis.report,
                key=record["row_key"],
                report_uri=report_uri,
                scan_id=self.job.scan_id,
                scanned_at=datetime.now(timezone.utc),
            )
        self.analyzed.inc(len(batch))
        progress.advance("analyzed", len(batch))

    def _fetch(self, record: dict[str, Any]) -> ObjectInput:
        key = record["row_key"]
        prefix = self.out.uri_for(_evidence_key(key))
        common = dict(uri=record["object_uri"], size_bytes=record["size_bytes"], evidence_prefix=prefix)
        try:
            check_size(record["size_bytes"] or 0, self.job.settings.limits)
        except LimitExceeded as exc:
            return ObjectInput(error=exc, **common)
        started = time.perf_counter()
        try:
            data = self.source.read(record["key"])
        except MediaError as exc:
            return ObjectInput(error=exc, **common)
        return ObjectInput(data=data, fetch_s=time.perf_counter() - started, **common)


def _evidence_key(row_key_: str) -> str:
    return f"evidence/{row_key_[:2]}/{row_key_}"


class CommitRows(beam.DoFn):
    def __init__(self, job: ScanJob) -> None:
        self.job = job
        self.committed = counter("committed")

    def setup(self) -> None:
        self.sink = IcebergSink(self.job.settings.warehouse)
        self.parent = propagate.extract(self.job.trace_carrier)

    def process(self, rows: list[dict[str, Any]]) -> Iterator[int]:
        with tracing.tracer().start_as_current_span("deeptrawl.commit", context=self.parent) as span:
            added = self.sink.append(rows)
            span.set_attribute("deeptrawl.rows", added)
        self.committed.inc(added)
        progress.advance("committed", added)
        yield added


def run(job: ScanJob, pipeline_args: list[str] | None = None) -> dict[str, int]:
    """Scan every object of the source's completed manifests that has no row yet.

    Returns the job's counters: ``superseded`` (records of an older manifest),
    ``skipped`` (already in the table), ``analyzed``, ``committed``.
    """
    s = job.settings
    manifests = completed_manifests(open_store(s.out, s.s3, create=True), s.source)
    if not manifests:
        return {}
    shards = [(number, key) for number, keys in enumerate(manifests) for key in keys]
    options = PipelineOptions(pipeline_args or ["--runner=DirectRunner"])
    p = beam.Pipeline(options=options)
    (
        p
        | "Shards" >> beam.Create(shards)
        | "Spread" >> beam.Reshuffle()
        | "Read" >> beam.ParDo(ReadShard(job, manifests))
        | "AnalyzeBatches" >> beam.BatchElements(min_batch_size=1, max_batch_size=s.analyze_batch_size)
        | "Analyze" >> beam.ParDo(AnalyzeBatch(job))
        | "CommitBatches" >> beam.BatchElements(min_batch_size=s.commit_batch_size, max_batch_size=s.commit_batch_size)
        | "Commit" >> beam.ParDo(CommitRows(job))
    )
    return run_pipeline(p)
