"""Run every detector over a labelled set of files: what fusion is fitted on and evaluated with.

The files go through the same ``Analyzer`` as a scan (identification, limits, batching,
per-detector failures), so evaluation measures what a scan would produce, error rows
included. Evidence pictures are not rendered: nobody looks at them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from deeptrawl.analysis import Analyzer, ObjectInput
from deeptrawl.config import Limits
from deeptrawl.detectors import Detector, DetectorResult, create

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Scored:
    row: Mapping[str, Any]                 # the labelled row (label, kind, subgroups...)
    results: Mapping[str, DetectorResult]  # per detector; empty when the file could not be read
    error: str | None                      # the error code of an error row


def score_files(rows: Sequence[Mapping[str, Any]], root: Path, *, detectors: Sequence[Detector] | None = None,
                limits: Limits = Limits(), batch_size: int = 8, progress: Progress | None = None) -> list[Scored]:
    """Analyse ``root / row["path"]`` for every row, in batches, keeping each detector's result."""
    analyzer = Analyzer(list(detectors) if detectors is not None else create())
    analyzer.setup()
    out: list[Scored] = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        objects = [ObjectInput(uri=str(root / r["path"]), data=(root / r["path"]).read_bytes()) for r in chunk]
        for row, analysis in zip(chunk, analyzer.analyze_batch(objects), strict=True):
            error = analysis.report.errors[0].code if analysis.report.verdict.label == "error" and analysis.report.errors else None
            out.append(Scored(row, analysis.results, error))
        if progress is not None:
            progress(len(out), len(rows))
    return out
