"""The forensic report: one JSON document per object, versioned, with an exported schema.

``schemas/report.schema.json`` is generated from these models (``deeptrawl schema``) and
checked into the repository; a test fails if the two drift apart, and every report the
tests produce is validated against the file.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).parent / "schemas" / "report.schema.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MediaReport(_Model):
    kind: str | None = Field(None, description="image, video or audio; null when unidentified")
    mime: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    codec: str | None = None
    mode: str | None = Field(None, description="pixel mode as stored (RGB, L, I;16, CMYK, ...)")
    frames: int | None = None
    sample_rate: int | None = None
    channels: int | None = None


class FindingReport(_Model):
    code: str
    message: str
    score: float = Field(ge=0.0, le=1.0)
    decisive: bool = False


class EvidenceReport(_Model):
    name: str
    kind: str
    uri: str
    caption: str = ""


class ErrorReport(_Model):
    code: str
    message: str
    stage: Literal["fetch", "decode", "detector", "report"]
    detector: str | None = None


class DetectorReport(_Model):
    name: str
    version: str
    score: float | None = Field(None, ge=0.0, le=1.0, description="evidence of manipulation; null = abstained or failed")
    status: Literal["ok", "abstained", "error"]
    findings: list[FindingReport] = []
    details: dict[str, Any] = {}
    evidence: list[EvidenceReport] = []
    error: ErrorReport | None = None
    seconds: float = Field(ge=0.0)


class VerdictReport(_Model):
    label: Literal["likely_synthetic", "likely_authentic", "inconclusive", "error"]
    score: float | None = Field(None, ge=0.0, le=1.0)
    reason: str
    rule: str


class ForensicReport(_Model):
    schema_version: Literal["1.0"] = SCHEMA_VERSION
    object_uri: str
    content_sha256: str | None
    size_bytes: int | None
    media: MediaReport
    detectors: list[DetectorReport]
    verdict: VerdictReport
    errors: list[ErrorReport]
    timings: dict[str, float] = Field(description="seconds per stage: fetch, decode, each detector, total")
    detector_set_version: str
    pipeline_version: str
    scan_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    created_at: datetime

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def json_schema() -> dict[str, Any]:
    schema = ForensicReport.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://deeptrawl.dev/schemas/report-{SCHEMA_VERSION}.json"
    return schema


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    return path
