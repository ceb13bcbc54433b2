"""Quantisation-table analysis: what the file's own tables say about its last encoder.

Every JPEG stores the tables its encoder divided the DCT coefficients by. The IJG
reference encoder (libjpeg, and everything built on it or on libjpeg-turbo: Pillow,
OpenCV, ...) uses the example tables of the standard (ITU-T T.81 Annex K) scaled by a
quality factor 1..100; we fit that family to each table, which gives the estimated
quality and tells standard (an exact scaled Annex K table) from non-standard tables
(camera makers and some editors use their own).

Known-software signatures are limited to what can be checked here, in code, against the
installed libraries (the tests do): IJG tables at quality 75 are Pillow's default save,
at 95 OpenCV's default; the preset tables that Pillow ships (``PIL.JpegPresets``, which
Pillow documents as equivalent to Photoshop's settings) are read from Pillow itself. No
camera tables are listed: we could not verify them.

Pillow's ``Image.quantization`` gives each table as 64 values in natural (row-major)
order (checked against Annex K in the tests), not in the zigzag order of the file.

Limits: tables describe only the *last* save. A standard table does not prove editing
(cameras built on libjpeg exist), a non-standard one does not prove a camera original.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

#: ITU-T T.81 Annex K, table K.1 (luminance) and K.2 (chrominance), natural order.
LUMA_ANNEX_K = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
)
CHROMA_ANNEX_K = np.full((8, 8), 99, dtype=np.int64)
CHROMA_ANNEX_K[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]

QUALITIES = np.arange(1, 101)


def ijg_scale(quality: int) -> int:
    """libjpeg's ``jpeg_quality_scaling``: percentage applied to the Annex K tables."""
    quality = min(max(int(quality), 1), 100)
    return 5000 // quality if quality < 50 else 200 - 2 * quality


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """Annex K table ``base`` scaled to ``quality`` as libjpeg does (baseline: 1..255)."""
    return np.clip((base * ijg_scale(quality) + 50) // 100, 1, 255)


@lru_cache(maxsize=2)
def _ijg_stack(which: str) -> np.ndarray:
    base = LUMA_ANNEX_K if which == "luma" else CHROMA_ANNEX_K
    return np.stack([ijg_table(base, q) for q in QUALITIES])  # (100, 8, 8)


def fit_quality(
    steps: np.ndarray, luma: bool = True, positions: Sequence[tuple[int, int]] | None = None
) -> tuple[int, bool, float]:
    """Best IJG quality for ``steps`` (an 8x8 luma or chroma table, or its steps at ``positions``).

    Returns (quality, exact match, mean absolute log-ratio of the steps to that table).
    Errors are compared on a log scale so that a step off by one counts more at step 2
    than at step 60, as it should.
    """
    stack = _ijg_stack("luma" if luma else "chroma")
    steps = np.asarray(steps, dtype=np.float64)
    if positions is not None:
        rows, cols = zip(*positions)
        candidates = stack[:, rows, cols].astype(np.float64)
    else:
        candidates = stack.reshape(100, -1).astype(np.float64)
        steps = steps.reshape(-1)
    error = np.abs(np.log(candidates) - np.log(steps)).mean(axis=1)
    best = int(np.argmin(error))
    exact = bool(np.all(candidates[best] == steps))
    return int(QUALITIES[best]), exact, float(error[best])


def read_tables(image) -> dict[int, np.ndarray]:
    """The image's quantisation tables as 8x8 int arrays (natural order), by table index."""
    raw = getattr(image, "quantization", None) or {}
    tables = {}
    for index, values in raw.items():
        values = np.asarray(list(values), dtype=np.int64)
        if values.size == 64:
            tables[int(index)] = values.reshape(8, 8)
    return tables


@lru_cache(maxsize=1)
def _pillow_presets() -> tuple[tuple[str, tuple[np.ndarray, ...]], ...]:
    try:
        from PIL import JpegPresets
    except ImportError:  # pragma: no cover - Pillow always ships it
        return ()
    out = []
    for name, preset in JpegPresets.presets.items():
        tables = preset.get("quantization")
        if tables:
            out.append((name, tuple(np.asarray(t, dtype=np.int64).reshape(8, 8) for t in tables)))
    return tuple(out)


#: Verified defaults of libraries built on libjpeg (see module docstring).
IJG_DEFAULTS = {75: "Pillow's default quality", 95: "OpenCV's default quality"}


@dataclass(frozen=True)
class TableReport:
    index: int
    quality: int
    exact: bool
    error: float


@dataclass(frozen=True)
class QuantReport:
    tables: tuple[TableReport, ...]
    #: Every table is an exact IJG-scaled Annex K table (at one quality for luma).
    standard: bool
    #: Estimated quality of the luma table (table 0), IJG scale.
    quality: int | None
    signatures: tuple[str, ...] = field(default=())

    def as_details(self) -> dict:
        return {
            "quality_estimate": self.quality,
            "standard_tables": self.standard,
            "tables": [
                {"index": t.index, "ijg_quality": t.quality, "exact": t.exact, "log_error": round(t.error, 4)}
                for t in self.tables
            ],
            "signatures": list(self.signatures),
        }


def analyse(tables: dict[int, np.ndarray]) -> QuantReport | None:
    if not tables:
        return None
    reports = []
    for index in sorted(tables):
        quality, exact, error = fit_quality(tables[index], luma=index == 0)
        reports.append(TableReport(index, quality, exact, error))
    standard = all(r.exact for r in reports)
    luma = next((r for r in reports if r.index == 0), reports[0])
    return QuantReport(tuple(reports), standard, luma.quality, tuple(_signatures(tables, reports, standard)))


def _signatures(tables: dict[int, np.ndarray], reports: Iterable[TableReport], standard: bool) -> list[str]:
    found = []
    reports = list(reports)
    if standard and len({r.quality for r in reports}) == 1:
        q = reports[0].quality
        note = f" ({IJG_DEFAULTS[q]})" if q in IJG_DEFAULTS else ""
        found.append(f"IJG standard tables at quality {q}: libjpeg-family encoder (Pillow, OpenCV, ...){note}")
    ordered = [tables[i] for i in sorted(tables)]
    for name, preset in _pillow_presets():
        n = min(len(preset), len(ordered))
        if n and all(np.array_equal(preset[i], ordered[i]) for i in range(n)):
            found.append(f"Pillow preset '{name}' (documented by Pillow as equivalent to a Photoshop setting)")
    return found
