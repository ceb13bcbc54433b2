"""JPEG ghosts: which earlier quality each region is consistent with.

Farid's ghosts (2009) re-save an image at a range of qualities; a region that was saved
before at quality ``q`` changes least when re-saved at ``q`` (a dip in its difference
curve). We first did exactly that in the DCT domain (re-quantising each block's
low-frequency coefficients with the IJG table of each quality, squared error per block,
curves normalised per block). On our splices, single-compressed areas showed dips too
(mostly at the lowest qualities tried), and a map of the deepest dips found the pasted
region (IoU >= 0.3) in 3 of 24 splices. So this module asks the same question as a
likelihood:

for every IJG quality ``q`` below the file's own, and every block, the log-likelihood
ratio of the block's quantised coefficients (those of magnitude 2 or more: zeros and
+-1 rounding noise fit every history) under "quantised with ``q``'s table, then
with the file's table" vs "quantised once", using the smooth coefficient distributions
fitted in ``double`` (so texture is accounted for). Smoothed over 3x3 blocks, a positive
value means "this block looks saved at ``q`` before". A ghost region is a compact minority
of blocks (1-40%) consistent with one quality that is not the image-wide earlier quality
(a region saved at another quality than the rest, or saved before when the rest was not).

Limits (honest): aligned histories only (a shifted region has no ghost on the file's grid;
see ``grid``); the earlier save must be coarser than the last; qualities follow the IJG
tables (other encoders' tables match only approximately); regions under ~1% of the image
are not reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deeptrawl.detectors.jpeg.blocks import LOW_AC
from deeptrawl.detectors.jpeg.double import FrequencyFit, informative
from deeptrawl.detectors.jpeg.quant import LUMA_ANNEX_K, ijg_table

#: Lowest quality tried.
LOWEST = 40
#: Smoothed log-ratio (nats per block, 3x3 mean) above which a block counts as consistent.
CONSISTENT = 1.0
#: A ghost region covers this share of the blocks, at least and at most.
REGION_MIN, REGION_MAX = 0.01, 0.4


@dataclass(frozen=True)
class GhostResult:
    #: Quality of the strongest ghost region, its share of blocks and mean smoothed ratio.
    quality: int | None
    area: float
    strength: float
    #: (by, bx) in [0, 1]: consistency with that quality (0.5 at the CONSISTENT level).
    map: np.ndarray | None
    tried: int

    def as_details(self) -> dict:
        return {
            "ghost_quality": self.quality,
            "ghost_area": round(self.area, 4),
            "ghost_strength": round(self.strength, 3),
            "qualities_tried": self.tried,
        }


def box_mean(values: np.ndarray, size: int = 3) -> np.ndarray:
    """size x size mean over the first two axes (edges replicated); size is odd."""
    r = size // 2
    p = np.pad(values, ((r, r), (r, r)) + ((0, 0),) * (values.ndim - 2), mode="edge")
    h, w = values.shape[:2]
    rows = sum(p[i : i + h] for i in range(size))
    return sum(rows[:, j : j + w] for j in range(size)) / float(size * size)


def box3_mean(values: np.ndarray) -> np.ndarray:
    return box_mean(values, 3)


def _matches(steps: tuple[int, ...], primary: dict[int, int] | None) -> bool:
    """Whether a quality's steps are (within ~1/8) the image-wide earlier ones, on at
    least 60% of the frequencies where those were found."""
    if not primary:
        return False
    return float(np.mean([abs(steps[k] - q1) <= max(1, q1 // 8) for k, q1 in primary.items()])) >= 0.6


def candidate_tables(final_quality: int) -> list[tuple[int, tuple[int, ...]]]:
    """(quality, low-AC steps) for qualities LOWEST..final-1, one per distinct table."""
    out, previous = [], None
    for q in range(LOWEST, final_quality):
        table = ijg_table(LUMA_ANNEX_K, q)
        steps = tuple(int(table[r, c]) for r, c in LOW_AC)
        if steps != previous:
            out.append((q, steps))
            previous = steps
    return out


def analyse(
    values: np.ndarray, fits: tuple[FrequencyFit, ...], final_quality: int, primary: dict[int, int] | None = None
) -> GhostResult:
    """``values``: (by, bx, 15) quantised low-AC values; ``fits`` from ``double.aligned``.

    ``primary``: the image-wide earlier steps by frequency index (if ``double`` found
    double compression). Qualities whose table matches them are the whole image's history,
    not a region, and are not reported.
    """
    by, bx = values.shape[:2]
    candidates = [(q, steps) for q, steps in candidate_tables(final_quality) if not _matches(steps, primary)]
    if not candidates:
        return GhostResult(None, 0.0, 0.0, None, 0)
    # Sum, per candidate quality, each frequency's log-ratio table looked up at every
    # block's value. Tables are shared by all qualities with the same step at a frequency.
    totals = np.zeros((len(candidates), by * bx), np.float32)
    used = np.zeros(len(candidates), int)
    for k, fit in enumerate(fits):
        live = sorted({s[k] for _, s in candidates if s[k] > fit.final_step})
        if not live or fit.single_weights.size == 0:
            continue
        v = values[..., k].ravel()
        # Uninformative coefficients point at an extra zero column.
        index = np.where(informative(v, fit.final_step), fit.index(v), 2 * fit.span + 2)
        stack = np.zeros((len(live), 2 * fit.span + 3), np.float32)
        stack[:, :-1] = fit.ratios_for(live)
        gathered = stack[:, index]  # (live steps, blocks)
        row_of = {q1: row for row, q1 in enumerate(live)}
        which = [j for j, (_, s) in enumerate(candidates) if s[k] in row_of]
        totals[which] += gathered[[row_of[candidates[j][1][k]] for j in which]]
        used[which] += 1
    best = None
    smoothed = box3_mean(totals.reshape(-1, by, bx).transpose(1, 2, 0)).transpose(2, 0, 1)
    for j, (quality, _) in enumerate(candidates):
        if used[j] < 3:  # too few frequencies where this quality differs from the final one
            continue
        smooth = smoothed[j]
        consistent = smooth > CONSISTENT
        area = float(consistent.mean())
        if not REGION_MIN <= area <= REGION_MAX:
            continue
        strength = float(smooth[consistent].mean())
        if best is None or area * strength > best[0]:
            best = (area * strength, quality, area, strength, smooth)
    tried = int((used >= 3).sum())
    if best is None:
        return GhostResult(None, 0.0, 0.0, None, tried)
    _, quality, area, strength, smooth = best
    heat = 1.0 / (1.0 + np.exp(-(smooth - CONSISTENT) * 2.0))
    return GhostResult(quality, area, strength, heat.astype(np.float32), tried)
