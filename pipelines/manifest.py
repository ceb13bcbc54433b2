"""Manifest job: list a source, fetch each object once, describe it, write Parquet.

    source --list, in chunks--> chunk keys --reshuffle--> per chunk: fetch, sha256,
        sniff, probe --> one Parquet shard per chunk

A manifest lives at ``{out}/manifests/{source_id}/{manifest_id}/part-*.parquet`` and is
complete only once its ``_SUCCESS`` marker exists: a run killed half-way leaves shards
that every reader ignores.

Memory does not grow with the archive. The listing is written to the output store in
chunks of ``CHUNK_OBJECTS`` and only the chunk keys go through the runner's shuffle (the
DirectRunner holds a shuffle in memory; shuffling the listing itself made a worker grow
by kilobytes per object), and the chunks are the unit of parallel work. What the job
remembers about earlier manifests is a ``DigestSet`` at 8 bytes per object.

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
from typing import Any, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions

from deeptrawl import progress, tracing
from deeptrawl.config import Limits, S3Settings
from deeptrawl.errors import MediaError
from deeptrawl.keyset import DigestSet, NewestIndex
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

LISTING_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("uri", pa.string(), nullable=False),
        pa.field("size", pa.int64()),
        pa.field("etag", pa.string()),
        pa.field("mtime", pa.timestamp("us", tz="UTC")),
    ]
)

SUCCESS = "_SUCCESS"
#: Objects per listing chunk, so per manifest shard: the unit of parallel work.
CHUNK_OBJECTS = 1000
LISTING_DIR = "_listing"


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


def completed_manifests(out: ObjectStore, source: str) -> list[list[str]]:
    """Shard keys of each completed manifest of ``source``, oldest manifest first."""
    prefix = manifests_prefix(source) + "/"
    infos = list(out.list(prefix))
    done = sorted({i.key.rsplit("/", 1)[0] for i in infos if i.key.endswith("/" + SUCCESS)})
    shards: dict[str, list[str]] = {d: [] for d in done}
    for info in infos:
        parent = info.key.rsplit("/", 1)[0]
        if info.key.endswith(".parquet") and parent in shards:
            shards[parent].append(info.key)
    return [shards[d] for d in done]


def completed_shards(out: ObjectStore, source: str) -> list[str]:
    """Keys of every shard of every completed manifest of ``source``, oldest first."""
    return [key for keys in completed_manifests(out, source) for key in keys]


def read_shard(out: ObjectStore, key: str, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(io.BytesIO(out.read(key)), columns=columns)


def shard_rows(out: ObjectStore, key: str) -> int:
    """Records in one shard, from its Parquet footer (no column is read)."""
    return pq.read_metadata(io.BytesIO(out.read(key))).num_rows


def newest_manifests(out: ObjectStore, manifests: list[list[str]]) -> NewestIndex | None:
    """Which manifest (index into ``manifests``) holds each object's newest record; None
    when there is only one manifest, so every record is the newest."""
    if len(manifests) < 2:
        return None
    return NewestIndex(
        (number, read_shard(out, key, ["object_uri"]).column("object_uri").to_pylist())
        for number, keys in enumerate(manifests)
        for key in keys
    )


def load_fingerprints(out: ObjectStore, source: str) -> DigestSet:
    """``object_uri + listing fingerprint`` of each object's newest record in the source's
    completed manifests (an object changed back to an older version is not unchanged)."""
    manifests = completed_manifests(out, source)
    newest = newest_manifests(out, manifests)

    def members() -> Iterator[str]:
        for number, keys in enumerate(manifests):
            for key in keys:
                rows = read_shard(out, key, ["object_uri", "etag", "size_bytes", "mtime"]).to_pylist()
                latest = newest.newest(r["object_uri"] for r in rows) if newest else None
                for i, row in enumerate(rows):
                    if latest is None or latest[i] == number:
                        yield _listed(row["object_uri"], listing_fingerprint(row["etag"], row["size_bytes"], row["mtime"]))

    return DigestSet(members())


def _listed(uri: str, fingerprint: str) -> str:
    return f"{uri}\n{fingerprint}"


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
            # Microseconds, so that manifest ids sort in the order the manifests were made.
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
            object.__setattr__(self, "manifest_id", f"m-{stamp}-{uuid.uuid4().hex[:6]}")

    @property
    def prefix(self) -> str:
        return f"{manifests_prefix(self.source)}/{self.manifest_id}"


class ListChunks(beam.DoFn):
    """List the source, drop objects unchanged since an earlier manifest, and write the
    rest to the output store in chunks of ``CHUNK_OBJECTS``; emit each chunk's key."""

    def __init__(self, job: ManifestJob) -> None:
        self.job = job
        self.unchanged = counter("unchanged")

    def process(self, source: str) -> Iterator[str]:
        job = self.job
        store = open_store(source, job.s3)
        out = open_store(job.out, job.s3, create=True)
        known = load_fingerprints(out, source) if job.incremental else DigestSet()
        chunk: list[dict[str, Any]] = []
        number = 0
        for info in store.list():
            if _listed(info.uri, listing_fingerprint(info.etag, info.size, info.mtime)) in known:
                self.unchanged.inc()
                progress.advance("unchanged")
                continue
            chunk.append({"key": info.key, "uri": info.uri, "size": info.size, "etag": info.etag, "mtime": info.mtime})
            if len(chunk) == CHUNK_OBJECTS:
                yield self._write(out, number, chunk)
                chunk, number = [], number + 1
        if chunk:
            yield self._write(out, number, chunk)

    def _write(self, out: ObjectStore, number: int, chunk: list[dict[str, Any]]) -> str:
        # Deterministic names: a retried bundle rewrites the same chunk, never adds one.
        key = f"{self.job.prefix}/{LISTING_DIR}/chunk-{number:05d}.parquet"
        out.write(key, _parquet(pa.Table.from_pylist(chunk, schema=LISTING_SCHEMA)))
        return key


class DescribeChunk(beam.DoFn):
    """Fetch, hash and describe every object of one listing chunk; write its shard.
    Never raises for bad media: a bad object is a record with an error."""

    def __init__(self, job: ManifestJob) -> None:
        self.job = job
        self.described = counter("described")

    def setup(self) -> None:
        self.store = open_store(self.job.source, self.job.s3)
        self.out = open_store(self.job.out, self.job.s3, create=True)
        self.listed_at = datetime.now(timezone.utc)

    def process(self, chunk_key: str) -> Iterator[int]:
        records = [self.describe(obj) for obj in read_shard(self.out, chunk_key).to_pylist()]
        records.sort(key=lambda r: r["object_uri"])
        number = chunk_key.rsplit("-", 1)[1].split(".")[0]
        # Same name on a retry: the shard is replaced, so no object is listed twice.
        self.out.write(
            f"{self.job.prefix}/part-{number}.parquet",
            _parquet(pa.Table.from_pylist(records, schema=MANIFEST_SCHEMA)),
            content_type="application/vnd.apache.parquet",
        )
        yield len(records)

    def describe(self, obj: dict[str, Any]) -> dict[str, Any]:
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
        return record


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def build(job: ManifestJob, pipeline_args: list[str] | None = None) -> dict[str, int]:
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
                | "List" >> beam.ParDo(ListChunks(job))
                | "Spread" >> beam.Reshuffle()
                | "Describe" >> beam.ParDo(DescribeChunk(job))
            )
            counts = run_pipeline(p)
            out = open_store(job.out, job.s3, create=True)
            written = 0
            for info in out.list(job.prefix + "/"):
                if info.key.startswith(f"{job.prefix}/{LISTING_DIR}/"):
                    out.delete(info.key)
                elif info.key.endswith(".parquet"):
                    written += shard_rows(out, info.key)
            out.write(
                f"{job.prefix}/{SUCCESS}",
                json.dumps({"source": job.source, "objects": written, "manifest_id": job.manifest_id}).encode(),
            )
            span.set_attribute("deeptrawl.objects", written)
            return {"described": counts.get("described", 0), "unchanged": counts.get("unchanged", 0)}
    finally:
        tracing.detach(parent)
