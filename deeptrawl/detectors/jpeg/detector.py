"""JPEG forensics: one score, findings and a map from the file's compression history.

Four readings of the same JPEG (each module's docstring gives its method and limits):

* ``quant``: the file's quantisation tables: estimated IJG quality, standard or not,
  known-software signatures. Informational: it says who saved the file last, not whether
  the picture was edited, so it never raises the score.
* ``double``: aligned double compression from the histograms of low-frequency DCT
  coefficients (gaps a coarser earlier quantisation leaves), and per block the
  log-likelihood ratio "saved twice" vs "saved once". Blocks of the image's minority
  history (single in a double-compressed image, or the reverse) form the history map.
* ``ghost``: for every quality below the file's, how likely each block is to have been
  saved at that quality before; a compact minority of blocks with another earlier
  quality (or one where the rest has none) is a ghost region.
* ``grid``: a foreign 8x8 grid (DC coefficients on a lattice at an offset other than the
  file's): a pasted region from a shifted JPEG, or the whole image cropped between saves.

Score. Double compression alone is common in benign workflows (any re-save), so it scores
at most ~0.85 and 0.5 exactly at its detection threshold. A localised inconsistency (a
region with another history or another grid) scores up to 0.95. The score is the
largest of those; quantisation tables never move it.

Map. One heatmap at full resolution: the largest of the history, ghost and grid maps
that pass their own significance tests (maps of tests that found nothing are left out, so
a clean or merely re-saved image has an empty map).

Resolution and cost. Everything reads the file's 8x8 grid, so nothing is ever resampled:
images over 30,000 blocks (~1.9 MP) analyse every ``step``-th whole block each way (the
map gets coarser, the blocks stay exact), and the grid search uses a sparser lattice of
sites. A 12 MP JPEG takes ~0.17-0.25 s on one core after decoding (measured on a shared,
loaded machine; decoding itself is ~0.18 s and shared with the other detectors).

Thresholds were set on ``deeptrawl.samples.corpus_jpeg`` (seeds 0-2) and checked on other
seeds. Non-JPEG inputs, CMYK JPEGs and images under 64 px a side abstain with a reason.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from deeptrawl.detectors.base import Detector, DetectorResult, Evidence, Finding
from deeptrawl.detectors.jpeg import double, ghost, grid, quant
from deeptrawl.detectors.jpeg.blocks import (
    BLOCK,
    clipped_blocks,
    grid_shape,
    low_dct,
    luma,
    luma_u8,
    sampled_pixels,
    step_for,
)
from deeptrawl.detectors.registry import register
from deeptrawl.media.item import MediaItem
from deeptrawl.media.sniff import MediaKind

MIN_SIDE = 64
CAPTION = "regions whose JPEG history or grid differs from the rest"
#: Blocks analysed (a block-strided subset of larger images).
MAX_BLOCKS = 30_000

# Thresholds (see the module docstring for how they were set):
#: Aligned double compression: total gain (nats) and gain per block both above these.
DQ_LLR, DQ_PER_BLOCK = 80.0, 0.07
#: Foreign grid: robust z of the strongest tile (against all tried offsets and steps) and
#: its coherence (m |mean phasor|^2, ~Exp(1) by chance) both above these.
GRID_Z, GRID_PEAK = 6.0, 8.0
#: A foreign grid covering more than this share of the informative tiles is the whole
#: image (non-aligned double compression), not a pasted region.
GRID_GLOBAL_AREA = 0.7
#: Ghost region: mean smoothed log-ratio (nats per block) at the detection threshold.
GHOST_STRENGTH = 2.0
#: History map: blocks pooled per neighbourhood (side, in blocks).
HISTORY_POOL = 5
#: History map: mean P(minority history) inside the region minus outside, at threshold.
HISTORY_CONTRAST = 0.87
#: History map: smallest and largest share of blocks for a "region".
REGION_MIN, REGION_MAX = 0.01, 0.6


def _sigmoid_score(evidence: float, top: float, power: float = 3.0) -> float:
    """``top * e^p / (c + e^p)``: 0 at no evidence, 0.5 at evidence 1 (the detection
    threshold), tending to ``top``; ``power`` sets how sharp the threshold is."""
    ep = max(evidence, 0.0) ** power
    c = top / 0.5 - 1.0
    return float(top * ep / (c + ep))


@register
class JpegDetector(Detector):
    name = "jpeg"
    version = "1.0.0"
    media_kinds = frozenset({MediaKind.IMAGE})

    def analyze_one(self, item: MediaItem) -> DetectorResult:
        if item.media_type.format != "jpeg":
            return DetectorResult.abstain(f"not a JPEG ({item.media_type.format}): no compression history to read")
        tables = quant.read_tables(item.image)
        report = quant.analyse(tables)
        details: dict = {"quantisation": report.as_details() if report else None}
        findings = list(_table_findings(report))
        if report is None or 0 not in tables:
            details["reason"] = "the JPEG carries no readable quantisation table"
            return DetectorResult(score=None, findings=tuple(findings), details=details)
        if item.image.mode not in ("L", "RGB"):
            details["reason"] = f"{item.image.mode} JPEG: the pixel analyses need a luma (grey or YCbCr) JPEG"
            return DetectorResult(score=None, findings=tuple(findings), details=details)
        rgb = item.rgb
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_SIDE:
            details["reason"] = f"image {w}x{h} is smaller than {MIN_SIDE}px: too few blocks"
            return DetectorResult(score=None, findings=tuple(findings), details=details)
        return self._analyse_pixels(rgb, tables[0], report, details, findings)

    def _analyse_pixels(
        self, rgb: np.ndarray, table: np.ndarray, report: quant.QuantReport, details: dict, findings: list
    ) -> DetectorResult:
        h, w = rgb.shape[:2]
        by, bx = grid_shape(rgb.shape)
        # Large images: every step-th block each way (whole blocks, never resampled).
        step = step_for(by * bx, MAX_BLOCKS)
        pixels = sampled_pixels(rgb, step)
        clipped = clipped_blocks(pixels)
        values = double.quantised_values(low_dct(luma(pixels)), table)
        aligned = double.aligned(values[~clipped], table)
        # Clipped pixels break the pixel/coefficient link (such blocks would read as
        # "single"): in the maps they count as flat.
        values[clipped] = 0

        parts: list[_Part] = []
        if aligned is None:
            details["double"] = {"reason": f"fewer than {double.MIN_BLOCKS} unclipped 8x8 blocks for histograms"}
        else:
            details["double"] = aligned.as_details()
            parts += _double_parts(aligned, values, details)
            dq_found = parts[0].score >= 0.5
            parts.append(_ghost_part(aligned, values, report.quality or 75, dq_found, details))
        # Rounded luma is enough for the grid: its rounding noise is small next to DC steps.
        gr = grid.analyse(luma_u8(rgb), int(table[0, 0]))
        if gr is not None:
            details["grid"] = gr.as_details()
            parts.append(_grid_part(gr, (by, bx), step))

        parts = [p for p in parts if p.score is not None]
        details["scores"] = {p.key: round(p.score, 4) for p in parts}
        findings += [p.finding for p in parts if p.finding is not None]
        maps = [p.map for p in parts if p.map is not None]
        heat = np.max(np.stack(maps), axis=0) if maps else np.zeros((1, 1), np.float32)
        return DetectorResult(
            score=float(max((p.score for p in parts), default=0.0)),
            findings=tuple(findings),
            details=details,
            evidence=(Evidence.blocks("heatmap", heat, BLOCK * step, (h, w), caption=CAPTION),),
        )


class _Part(NamedTuple):
    """One reading's contribution: its score, its finding and its map (when significant)."""

    key: str
    score: float | None
    finding: Finding | None = None
    map: np.ndarray | None = None


def _double_parts(aligned: double.AlignedDouble, values: np.ndarray, details: dict) -> list[_Part]:
    evidence = min(aligned.llr / DQ_LLR, aligned.llr_per_block / DQ_PER_BLOCK)
    score = _sigmoid_score(evidence, 0.85)
    if score < 0.5:
        return [_Part("double", score)]
    q1 = aligned.primary_quality
    first = f" (first quality about {q1}, if that encoder used IJG tables)" if q1 else ""
    parts = [
        _Part(
            "double",
            score,
            Finding(
                "jpeg_double_compressed",
                f"the DCT coefficient histograms show the gaps an earlier, coarser JPEG save leaves{first}: "
                f"the image was decoded and saved again as JPEG",
                score,
            ),
        )
    ]
    history = _history_map(values, aligned)
    if history is None:
        return parts
    suspect, area, contrast, minority = history
    details["history_region"] = {"area": round(area, 4), "contrast": round(contrast, 3), "minority": minority}
    if not REGION_MIN <= area <= REGION_MAX:
        return parts
    score = _sigmoid_score(contrast / HISTORY_CONTRAST, 0.95, power=8) * min(area / 0.03, 1.0)
    if score < 0.5:
        return parts + [_Part("history_region", score)]
    what = {
        "single": "do not share the double compression of the rest",
        "double": "were JPEG-compressed once more than the rest",
    }[minority]
    finding = Finding(
        "jpeg_region_history",
        f"blocks covering {area:.0%} of the image {what}: a region pasted from a picture with another JPEG history",
        score,
    )
    return parts + [_Part("history_region", score, finding, suspect)]


def _ghost_part(
    aligned: double.AlignedDouble, values: np.ndarray, final_quality: int, dq_found: bool, details: dict
) -> _Part:
    # The image-wide earlier quality (when double compression was found) is its history,
    # not a region: the ghost search skips it.
    gh = ghost.analyse(values, aligned.fits, final_quality, aligned.primary_steps() if dq_found else None)
    details["ghost"] = gh.as_details()
    if gh.quality is None:
        return _Part("ghost", None)
    score = _sigmoid_score(gh.strength / GHOST_STRENGTH, 0.95) * min(gh.area / 0.03, 1.0)
    if score < 0.5:
        return _Part("ghost", score)
    finding = Finding(
        "jpeg_ghost",
        f"blocks covering {gh.area:.0%} of the image look saved before at JPEG quality about {gh.quality}, "
        f"unlike the rest: a region with another compression history",
        score,
    )
    return _Part("ghost", score, finding, gh.map)


def _grid_part(gr: grid.GridResult, shape: tuple[int, int], step: int) -> _Part:
    if gr.offset is None:
        return _Part("foreign_grid", None)
    evidence = min(gr.z / GRID_Z, gr.peak / GRID_PEAK)
    if gr.area >= GRID_GLOBAL_AREA:  # the whole image: cropped between two saves
        score = _sigmoid_score(evidence, 0.85)
        if score < 0.5:
            return _Part("nonaligned", score)
        finding = Finding(
            "jpeg_double_compressed_nonaligned",
            f"DC coefficients across the image sit on the lattice of an earlier JPEG save whose 8x8 grid was "
            f"offset by {tuple(gr.offset)} px: the image was cropped and saved again",
            score,
        )
        return _Part("nonaligned", score, finding)
    score = _sigmoid_score(evidence, 0.95)
    if score < 0.5:
        return _Part("foreign_grid", score)
    finding = Finding(
        "jpeg_grid_misaligned",
        f"a region covering about {gr.area:.0%} of the textured area carries a JPEG grid offset by "
        f"{tuple(gr.offset)} px from the file's: pasted from another JPEG",
        score,
    )
    return _Part("foreign_grid", score, finding, _sites_to_blocks(gr, shape, step))


def _table_findings(report: quant.QuantReport | None):
    if report is None:
        return
    if report.standard:
        yield Finding(
            "jpeg_tables_standard",
            f"standard IJG quantisation tables at quality {report.quality} (libjpeg-family software such as "
            f"Pillow or OpenCV saved this file last; informational)",
            0.0,
        )
    else:
        yield Finding(
            "jpeg_tables_custom",
            f"non-standard quantisation tables (closest IJG quality {report.quality}): a camera or an encoder "
            f"with its own tables saved this file last (informational)",
            0.0,
        )


def _history_map(values: np.ndarray, aligned: double.AlignedDouble):
    """Blocks whose history is the image's minority one, from the fitted models.

    Per block, the log-likelihood ratio "saved twice" vs "saved once" over its informative
    coefficients, pooled over 3x3 blocks, gives P(single). Flat neighbourhoods (under one
    informative coefficient per block) say nothing and stay at 0. The minority history is
    the suspect one: single-compressed blocks in a double-compressed image (an
    uncompressed paste) or the reverse (a JPEG paste into an image saved once).

    Returns (map (by, bx) in [0, 1], area share above 0.5, contrast, "single"/"double"),
    or None when no frequency is informative.
    """
    pooled = double.block_log_ratio(values, aligned.fits, aligned.n_blocks)
    if pooled is None:
        return None
    ratio, count = pooled
    total, n = ghost.box_mean(ratio, HISTORY_POOL), ghost.box_mean(count, HISTORY_POOL)
    known = n >= 1.0
    if not known.any():
        return None
    # Evidence per informative coefficient, times a few: a neighbourhood whose many
    # coefficients all sit in the gaps is clearly "single".
    p_single = 1.0 / (1.0 + np.exp(np.clip(total * 3.0, -30, 30)))
    minority = "single" if (p_single[known] > 0.5).mean() <= 0.5 else "double"
    suspect = np.where(known, p_single if minority == "single" else 1.0 - p_single, 0.0)
    # A pasted region is one compact blob; scattered specks are flat or saturated corners
    # where the evidence is weak. Keep the largest blob and any at least a third its size.
    labels, count = ndimage.label(suspect > 0.5)
    if count == 0:
        return suspect.astype(np.float32), 0.0, 0.0, minority
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(sizes >= sizes.max() / 3) + 1
    inside = np.isin(labels, keep)
    suspect = np.where(inside | (suspect <= 0.5), suspect, 0.0)
    area = float(inside.mean())
    others = known & ~inside
    contrast = float(suspect[inside].mean() - suspect[others].mean()) if others.any() else 0.0
    return suspect.astype(np.float32), area, contrast, minority


def _sites_to_blocks(gr: grid.GridResult, shape: tuple[int, int], step: int) -> np.ndarray:
    """Resample the grid map (sites every ``gr.spacing`` px) onto the block map (8*step px)."""
    by, bx = shape
    oy, ox = gr.offset
    # A site's block starts at site + offset; match each map cell's centre to the nearest.
    ys = np.rint((np.arange(0, by, step) * BLOCK + 4 * step - oy - 4) / gr.spacing).astype(int)
    xs = np.rint((np.arange(0, bx, step) * BLOCK + 4 * step - ox - 4) / gr.spacing).astype(int)
    ys = np.clip(ys, 0, gr.map.shape[0] - 1)
    xs = np.clip(xs, 0, gr.map.shape[1] - 1)
    return gr.map[ys[:, None], xs[None, :]]


