"""Manifest job: list a source, fetch each object once, describe it, write Parquet.

    source --list--> reshuffle --fetch, sha256, sniff, probe--> sharded Parquet manifest

A manifest lives at ``{out}/manifests/{source_id}/{manifest_id}/part-*.parquet`` and is
complete only once its ``_SUCCESS`` marker exists: a run killed half-way leaves shards
that every reader ignores.

Incremental mode (the default): objects whose listing facts (etag, or size and mtime
where the store has no etag) match a completed earlier manifest are not fetched again
and not written again; the union of a source's completed manifests is its inventory.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions

from deeptrawl import progress, tracing
from deeptrawl.config import Limits, S3Settings
from deeptrawl.errors import MediaError
from deeptrawl.media.probe import check_size, probe
from deeptrawl.storage import ObjectStore, open_store
from pipelines.metrics import counter
from pipelines.metrics import run as run_pipeline

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("object_uri", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("size_bytes", pa.int64()),
        pa.field("etag", pa.string()),
        pa.field("mtime", pa.timestamp("us", tz="UTC")),
        pa.field("content_sha256", pa.string()),
        pa.field("media_type", pa.string()),
        pa.field("mime", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("duration_s", pa.float64()),
        pa.field("error_code", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("manifest_id", pa.string(), nullable=False),
        pa.field("listed_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

SUCCESS = "_SUCCESS"
ROWS_PER_SHARD = 5000


def source_id(source: str) -> str:
    return hashlib.sha256(source.rstrip("/").encode()).hexdigest()[:16]


def manifests_prefix(source: str) -> str:
    return f"manifests/{source_id(source)}"


def listing_fingerprint(etag: str | None, size: int | None, mtime: datetime | None) -> str:
    """What must match for an object to count as unchanged since an earlier manifest."""
    if etag:
        return f"etag:{etag}"
    stamp = mtime.astimezone(timezone.utc).isoformat() if mtime else ""
    return f"size:{size}:mtime:{stamp}"


def content_version(record: dict[str, Any]) -> str:
    """The manifest's idea of an object's content: its sha256, else its listing facts."""
    return record.get("content_sha256") or listing_fingerprint(
        record.get("etag"), record.get("size_bytes"), record.get("mtime")
    )


# -- reading completed manifests -------------------------------------------------------


def completed_shards(out: ObjectStore, source: str) -> list[str]:
    """Keys of every shard of every completed manifest of ``source``, oldest first."""
    prefix = manifests_prefix(source) + "/"
    infos = list(out.list(prefix))
    done = {i.key.rsplit("/", 1)[0] for i in infos if i.key.endswith("/" + SUCCESS)}
    return [i.key for i in infos if i.key.endswith(".parquet") and i.key.rsplit("/", 1)[0] in done]


def read_shard(out: ObjectStore, key: str, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(io.BytesIO(out.read(key)), columns=columns)


def load_fingerprints(out: ObjectStore, source: str) -> dict[str, str]:
    """object_uri -> listing fingerprint, over the source's completed manifests."""
    index: dict[str, str] = {}
    for key in completed_shards(out, source):
        table = read_shard(out, key, ["object_uri", "etag", "size_bytes", "mtime"])
        for row in table.to_pylist():
            index[row["object_uri"]] = listing_fingerprint(row["etag"], row["size_bytes"], row["mtime"])
    return index


# -- the job -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestJob:
    source: str
    out: str
    s3: S3Settings
    limits: Limits
    incremental: bool = True
    manifest_id: str = ""
    trace_carrier: dict | None = None

    def __post_init__(self) -> None:
        if not self.manifest_id:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            object.__setattr__(self, "manifest_id", f"m-{stamp}-{uuid.uuid4().hex[:6]}")

    @property
    def prefix(self) -> str:
        return f"{manifests_prefix(self.source)}/{self.manifest_id}"


class ListSource(beam.DoFn):
    """Emit every object of the source, minus those unchanged since the last manifest."""

    def __init__(self, job: ManifestJob) -> None:
        self.job = job
        self.unchanged = counter("unchanged")

    def process(self, source: str) -> Iterator[dict[str, Any]]:
        job = self.job
        store = open_store(source, job.s3)
        known = load_fingerprints(open_store(job.out, job.s3, create=True), source) if job.incremental else {}
        for info in store.list():
            if known.get(info.uri) == listing_fingerprint(info.etag, info.size, info.mtime):
                self.unchanged.inc()
                progress.advance("unchanged")
                continue
            yield {"key": info.key, "uri": info.uri, "size": info.size, "etag": info.etag, "mtime": info.mtime}


class DescribeObject(beam.DoFn):
    """Fetch one object, hash it and read its header facts. Never raises for bad media."""

    def __init__(self, job: ManifestJob) -> None:
        self.job = job
        self.store: ObjectStore | None = None
        self.described = counter("described")

    def setup(self) -> None:
        self.store = open_store(self.job.source, self.job.s3)
        self.listed_at = datetime.now(timezone.utc)

    def process(self, obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
        record = {
            "object_uri": obj["uri"],
            "key": obj["key"],
            "size_bytes": obj["size"],
            "etag": obj["etag"],
            "mtime": obj["mtime"],
            "content_sha256": None,
            "media_type": None,
            "mime": None,
            "width": None,
            "height": None,
            "duration_s": None,
            "error_code": None,
            "error_message": None,
            "manifest_id": self.job.manifest_id,
            "listed_at": self.listed_at,
        }
        try:
            check_size(obj["size"], self.job.limits)  # oversized objects are never fetched
            data = self.store.read(obj["key"])
            record["content_sha256"] = hashlib.sha256(data).hexdigest()
            record["size_bytes"] = len(data)
            media_type, info = probe(data, self.job.limits)
            record.update(
                media_type=media_type.kind.value,
                mime=media_type.mime,
                width=info.width,
                height=info.height,
                duration_s=info.duration_s,
            )
        except MediaError as exc:
            record.update(error_code=exc.code, error_message=exc.message)
        self.described.inc()
        progress.advance("described")
        yield record


class WriteShard(beam.DoFn):
    """Write one batch of records as one Parquet file through the object store."""

    def __init__(self, job: ManifestJob) -> None:
        self.job = job

    def setup(self) -> None:
        self.out = open_store(self.job.out, self.job.s3, create=True)

    def process(self, keyed: tuple[int, Iterable[dict[str, Any]]]) -> Iterator[int]:
        shard, records = keyed
        rows = sorted(records, key=lambda r: r["object_uri"])
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA), buf, compression="zstd")
        name = f"{self.job.prefix}/part-{shard:05d}-{uuid.uuid4().hex[:8]}.parquet"
        self.out.write(name, buf.getvalue(), content_type="application/vnd.apache.parquet")
        yield len(rows)


def _shard_of(uri: str, shards: int) -> int:
    # A hash of the whole URI: the URI's tail is mostly its extension, and a shard key
    # taken from it put every .jpg in one shard.
    return int(hashlib.blake2b(uri.encode(), digest_size=4).hexdigest(), 16) % shards


def build(job: ManifestJob, pipeline_args: list[str] | None = None, shards: int = 4) -> dict[str, int]:
    """Run the manifest job; return its counters (``described``, ``unchanged``)."""
    options = PipelineOptions(pipeline_args or ["--runner=DirectRunner"])
    tracer = tracing.tracer()
    parent = tracing.attach(job.trace_carrier)
    try:
        with tracer.start_as_current_span("deeptrawl.manifest") as span:
            span.set_attribute("deeptrawl.source", job.source)
            span.set_attribute("deeptrawl.manifest_id", job.manifest_id)
            p = beam.Pipeline(options=options)
            (
                p
                | "Source" >> beam.Create([job.source])
                | "List" >> beam.ParDo(ListSource(job))
                | "Spread" >> beam.Reshuffle()
                | "Describe" >> beam.ParDo(DescribeObject(job))
                | "Shard" >> beam.WithKeys(lambda r: _shard_of(r["object_uri"], shards))
                | "Batch" >> beam.GroupIntoBatches(ROWS_PER_SHARD)
                | "Write" >> beam.ParDo(WriteShard(job))
            )
            counts = run_pipeline(p)
            out = open_store(job.out, job.s3, create=True)
            written = sum(
                read_shard(out, i.key, ["object_uri"]).num_rows
                for i in out.list(job.prefix + "/")
                if i.key.endswith(".parquet")
            )
            out.write(
                f"{job.prefix}/{SUCCESS}",
                json.dumps({"source": job.source, "objects": written, "manifest_id": job.manifest_id}).encode(),
            )
            span.set_attribute("deeptrawl.objects", written)
            return {"described": counts.get("described", 0), "unchanged": counts.get("unchanged", 0)}
    finally:
        tracing.detach(parent)
