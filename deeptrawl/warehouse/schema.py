"""The results table: one row per object per detector-set version.

Defined once as an Iceberg schema (field ids are the contract with readers such as
DuckDB and Spark) and derived into an Arrow schema for writing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import pyarrow as pa
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform
from pyiceberg.types import (
    DoubleType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    TimestamptzType,
)

from deeptrawl.report import ForensicReport

_F = NestedField

RESULTS_SCHEMA = Schema(
    _F(1, "row_key", StringType(), required=True, doc="sha256 of object_uri, content version and detector set"),
    _F(2, "object_uri", StringType(), required=True),
    _F(3, "content_sha256", StringType()),
    _F(4, "size_bytes", LongType()),
    _F(5, "media_type", StringType(), doc="image, video, audio; null when unidentified"),
    _F(6, "mime", StringType()),
    _F(7, "width", IntegerType()),
    _F(8, "height", IntegerType()),
    _F(9, "duration_s", DoubleType()),
    _F(10, "status", StringType(), required=True, doc="ok or error"),
    _F(11, "error_code", StringType()),
    _F(12, "error_message", StringType()),
    _F(13, "verdict", StringType(), required=True),
    _F(14, "score", DoubleType()),
    _F(15, "detector_scores", MapType(101, StringType(), 102, DoubleType(), value_required=False)),
    _F(16, "detector_versions", MapType(103, StringType(), 104, StringType(), value_required=False)),
    _F(17, "detector_set_version", StringType(), required=True),
    _F(18, "report_uri", StringType()),
    _F(19, "evidence_uris", ListType(105, StringType(), element_required=False)),
    _F(20, "scan_id", StringType(), required=True),
    _F(21, "scanned_at", TimestamptzType(), required=True),
    _F(22, "pipeline_version", StringType(), required=True),
    _F(23, "trace_id", StringType()),
)

PARTITION_SPEC = PartitionSpec(PartitionField(source_id=21, field_id=1000, transform=DayTransform(), name="scanned_day"))

ARROW_SCHEMA: pa.Schema = RESULTS_SCHEMA.as_arrow()
COLUMNS = [f.name for f in RESULTS_SCHEMA.fields]


def row_key(object_uri: str, content_version: str | None, detector_set_version: str) -> str:
    """Identity of a results row. ``content_version`` is the sha256 (or, for objects never
    fetched, the etag/size) the manifest recorded, so a changed object gets a new row."""
    text = f"{object_uri}\n{content_version or ''}\n{detector_set_version}"
    return hashlib.sha256(text.encode()).hexdigest()


def row_from_report(
    report: ForensicReport, *, key: str, report_uri: str | None, scan_id: str, scanned_at: datetime
) -> dict[str, Any]:
    error = report.errors[0] if report.verdict.label == "error" and report.errors else None
    return {
        "row_key": key,
        "object_uri": report.object_uri,
        "content_sha256": report.content_sha256,
        "size_bytes": report.size_bytes,
        "media_type": report.media.kind,
        "mime": report.media.mime,
        "width": report.media.width,
        "height": report.media.height,
        "duration_s": report.media.duration_s,
        "status": "error" if report.verdict.label == "error" else "ok",
        "error_code": error.code if error else None,
        "error_message": error.message if error else None,
        "verdict": report.verdict.label,
        "score": report.verdict.score,
        "detector_scores": [(d.name, d.score) for d in report.detectors],
        "detector_versions": [(d.name, d.version) for d in report.detectors],
        "detector_set_version": report.detector_set_version,
        "report_uri": report_uri,
        "evidence_uris": [e.uri for d in report.detectors for e in d.evidence],
        "scan_id": scan_id,
        "scanned_at": scanned_at,
        "pipeline_version": report.pipeline_version,
        "trace_id": report.trace_id,
    }


def to_arrow(rows: list[dict[str, Any]], schema: pa.Schema = ARROW_SCHEMA) -> pa.Table:
    """Rows as Arrow. Writers pass the live table's schema: the catalog assigns its own
    field ids to nested fields when it creates the table."""
    return pa.Table.from_pylist(rows, schema=schema)
