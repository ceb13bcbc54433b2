"""Analyse objects: bytes in, a forensic report and evidence pictures out.

The one place where identification, limits, detectors, fusion and reporting meet. The
CLI's ``analyze`` uses it directly on a file; the Beam scan job calls it from a DoFn.
Every input produces exactly one ``Analysis``, error or not.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Sequence

from opentelemetry import trace

from deeptrawl import __version__, tracing
from deeptrawl.config import Limits
from deeptrawl.detectors.base import Detector, DetectorResult
from deeptrawl.detectors.registry import detector_set_version
from deeptrawl.errors import DeeptrawlError, MediaError
from deeptrawl.evidence import EvidenceRenderer
from deeptrawl.fusion import default_fuser
from deeptrawl.media.item import MediaItem
from deeptrawl.media.probe import load_item
from deeptrawl.media.sniff import SNIFF_BYTES, sniff
from deeptrawl.report import (
    DetectorReport,
    ErrorReport,
    EvidenceReport,
    FindingReport,
    ForensicReport,
    MediaReport,
    VerdictReport,
)
from deeptrawl.verdict import Fuser, Label, Verdict, fuse

PIPELINE_VERSION = f"deeptrawl-{__version__}"


@dataclass(frozen=True)
class ObjectInput:
    """One object to analyse: its bytes, or the error that prevented reading them."""

    uri: str
    data: bytes | None = None
    error: DeeptrawlError | None = None
    size_bytes: int | None = None
    fetch_s: float = 0.0
    #: Where this object's evidence pictures go (``{prefix}/{detector}-{name}.png``);
    #: ``None`` renders no evidence.
    evidence_prefix: str | None = None


@dataclass
class Analysis:
    report: ForensicReport
    #: Evidence URI -> PNG bytes, for the caller to store.
    evidence: dict[str, bytes] = field(default_factory=dict)
    #: Detector name -> its raw result (fusion is fitted and evaluated on these).
    results: dict[str, DetectorResult] = field(default_factory=dict)


class Analyzer:
    def __init__(
        self,
        detectors: Sequence[Detector],
        *,
        limits: Limits = Limits(),
        rule: Fuser | None = None,
        scan_id: str | None = None,
    ) -> None:
        self.detectors = list(detectors)
        self.limits = limits
        self.rule = rule if rule is not None else default_fuser(d.name for d in self.detectors)
        self.scan_id = scan_id
        self.set_version = detector_set_version(self.detectors, self.rule.version)
        self.colour = any(d.pixels != "luma" for d in self.detectors)

    def setup(self) -> None:
        for detector in self.detectors:
            detector.setup()

    @property
    def detector_versions(self) -> dict[str, str]:
        return {d.name: d.version for d in self.detectors}

    def analyze(self, obj: ObjectInput, parent: trace.Context | None = None) -> Analysis:
        return self.analyze_batch([obj], parent)[0]

    def analyze_batch(self, objects: Sequence[ObjectInput], parent=None) -> list[Analysis]:
        """One ``Analysis`` per input, in order.

        Each object gets its own span (child of ``parent``) with one child span per
        detector. Detectors that batch for real run once over the batch, in a span
        linked to every object's span.
        """
        tracer = tracing.tracer()
        states = [_State(obj, tracer.start_span("deeptrawl.analyze_object", context=parent)) for obj in objects]
        for state in states:
            state.span.set_attribute("deeptrawl.object_uri", state.obj.uri)
            with trace.use_span(state.span, end_on_exit=False):
                self._load(state)

        for detector in (d for d in self.detectors if d.batched):
            ready = [s for s in states if s.item is not None and detector.accepts(s.item)]
            if not ready:
                continue
            links = [trace.Link(s.span.get_span_context()) for s in ready]
            with tracer.start_as_current_span(f"deeptrawl.detector.{detector.name}", context=parent, links=links):
                started = time.perf_counter()
                results = detector.analyze([s.item for s in ready])
                each = (time.perf_counter() - started) / len(ready)
            for state, result in zip(ready, results, strict=True):
                state.record(detector, result, each)

        out = []
        for state in states:
            with trace.use_span(state.span, end_on_exit=True):
                if state.item is not None:
                    for detector in (d for d in self.detectors if not d.batched and d.accepts(state.item)):
                        with tracer.start_as_current_span(f"deeptrawl.detector.{detector.name}"):
                            started = time.perf_counter()
                            result = detector.analyze([state.item])[0]
                            state.record(detector, result, time.perf_counter() - started)
                out.append(self._finish(state))
        return out

    # -- steps ---------------------------------------------------------------------

    def _load(self, state: "_State") -> None:
        obj = state.obj
        if obj.error is not None:
            state.fail(obj.error, "fetch")
            return
        data = obj.data or b""
        state.sha256 = hashlib.sha256(data).hexdigest()
        state.size = len(data)
        started = time.perf_counter()
        try:
            state.media_type = sniff(data[:SNIFF_BYTES])
            state.item = load_item(obj.uri, data, self.limits, colour=self.colour)
        except MediaError as exc:
            state.fail(exc, "decode")
        state.timings["decode"] = time.perf_counter() - started

    def _finish(self, state: "_State") -> Analysis:
        obj = state.obj
        evidence: dict[str, bytes] = {}
        detector_reports = []
        started = time.perf_counter()
        has_pixels = state.item is not None and state.item.image is not None
        renderer = EvidenceRenderer(state.item if has_pixels else None)
        for detector, result, seconds in state.results:
            evidence_reports = []
            if obj.evidence_prefix is not None:
                for ev in result.evidence:
                    uri = f"{obj.evidence_prefix}/{detector.name}-{ev.name}.png"
                    evidence[uri] = renderer.png(ev)
                    evidence_reports.append(EvidenceReport(name=ev.name, kind=ev.kind, uri=uri, caption=ev.caption))
            detector_reports.append(_detector_report(detector, result, seconds, evidence_reports))
            if result.error is not None:
                state.errors.append(
                    ErrorReport(code=result.error.code, message=result.error.message, stage="detector", detector=detector.name)
                )
        if evidence:
            state.timings["evidence"] = time.perf_counter() - started

        if state.failed:
            verdict = Verdict(Label.ERROR, None, state.errors[0].message)
        else:
            verdict = fuse({d.name: r for d, r, _ in state.results}, self.rule)
        state.span.set_attribute("deeptrawl.verdict", verdict.label.value)
        trace_id, span_id = tracing.ids(state.span)
        state.timings["fetch"] = obj.fetch_s
        state.timings["total"] = obj.fetch_s + (time.perf_counter() - state.started)
        item = state.item
        info = item.info if item is not None else None
        media_type = state.media_type
        report = ForensicReport(
            object_uri=obj.uri,
            content_sha256=state.sha256,
            size_bytes=state.size if state.size is not None else obj.size_bytes,
            media=MediaReport(
                kind=media_type.kind.value if media_type else None,
                mime=media_type.mime if media_type else None,
                format=media_type.format if media_type else None,
                **(info.as_dict() if info else {}),
            ),
            detectors=detector_reports,
            verdict=VerdictReport(
                label=verdict.label.value, score=verdict.score, reason=verdict.reason, rule=self.rule.version
            ),
            errors=state.errors,
            timings={k: round(v, 6) for k, v in state.timings.items()},
            detector_set_version=self.set_version,
            pipeline_version=PIPELINE_VERSION,
            scan_id=self.scan_id,
            trace_id=trace_id,
            span_id=span_id,
            created_at=datetime.now(timezone.utc),
        )
        return Analysis(report, evidence, {d.name: r for d, r, _ in state.results})


class _State:
    """Per-object bookkeeping while a batch is analysed."""

    def __init__(self, obj: ObjectInput, span: trace.Span) -> None:
        self.obj = obj
        self.span = span
        self.started = time.perf_counter()
        self.item: MediaItem | None = None
        self.media_type = None
        self.sha256: str | None = None
        self.size: int | None = None
        self.failed = False
        self.errors: list[ErrorReport] = []
        self.results: list[tuple[Detector, DetectorResult, float]] = []
        self.timings: dict[str, float] = {}

    def fail(self, error: DeeptrawlError, stage: str) -> None:
        self.failed = True
        self.errors.append(ErrorReport(code=error.code, message=error.message, stage=stage))
        self.span.set_attribute("deeptrawl.error_code", error.code)

    def record(self, detector: Detector, result: DetectorResult, seconds: float) -> None:
        self.results.append((detector, result, seconds))
        self.timings[detector.name] = seconds


def _detector_report(
    detector: Detector, result: DetectorResult, seconds: float, evidence: list[EvidenceReport]
) -> DetectorReport:
    if result.error is not None:
        status = "error"
    elif result.score is None:
        status = "abstained"
    else:
        status = "ok"
    return DetectorReport(
        name=detector.name,
        version=detector.version,
        score=result.score,
        status=status,
        findings=[FindingReport(code=f.code, message=f.message, score=f.score, decisive=f.decisive) for f in result.findings],
        details=result.details,
        evidence=evidence,
        error=(
            ErrorReport(code=result.error.code, message=result.error.message, stage="detector", detector=detector.name)
            if result.error is not None
            else None
        ),
        seconds=round(seconds, 6),
    )
