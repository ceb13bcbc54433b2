"""Aligned double JPEG compression: the gaps an earlier, coarser quantisation leaves.

When a JPEG is decoded and saved again on the same 8x8 grid, its DCT coefficients were
quantised twice. We recompute the low-frequency DCT coefficients of the luma from the
decoded pixels (there is no access to the stored coefficients) and divide them by the
file's own, final table ``Q2``: that gives back the stored integers ``v`` up to a small
decoding error. A single compression leaves each frequency's histogram of ``v`` smooth (a
peaked, heavy-tailed bell). An earlier quantisation with step ``Q1`` first snapped the
coefficients to multiples of ``Q1``; re-quantising with ``Q2`` maps them to
``round(m * Q1 / Q2)``, so when ``Q1 > Q2`` some integers can no longer occur (gaps) and
the rest come in a periodic pattern.

For each of the 15 AC frequencies of the 4x4 low-frequency corner we fit two models to
the histogram by maximum likelihood (EM over mixture weights):

* H0: a mixture of Laplacians of fixed scales, quantised once with ``Q2``. A flexible
  smooth bell: it takes the shape of real histograms (point mass of flat blocks, heavy
  tails) but cannot make periodic gaps.
* H1: H0 mixed with the same bells quantised with a candidate ``Q1 > Q2`` and then (after
  Gaussian rounding noise) with ``Q2``; the mixture lets a partly recompressed image (a
  splice) fit too. All candidates are screened cheaply, the best three fitted in full.

The gain of H1 over H0 (nats), summed over frequencies, is the evidence; the detector asks
for both a total and a per-block gain above a threshold (a single-compressed image's gain
from model misfit is a small constant per block; a double-compressed one gains much more).
The estimated ``Q1`` per frequency, fitted to the IJG tables, gives the first quality.
From the fits we also get, per block, the log-ratio "saved twice" vs "saved once" of its
coefficients (``block_log_ratio``), which maps regions of another history, and ``ghost``
reuses the fitted bells to score any earlier quality (``FrequencyFit.ratios_for``).

Non-aligned double compression (a crop between the saves) is found by ``grid``.

Honest limits: when ``Q1 <= Q2`` (the second quality is the lower one) the gaps vanish;
only weak periodic peaks remain and H1 does not model them (on our corpus 10-15% of
such images are still flagged). Nothing can be seen when both qualities share their
low-frequency steps (e.g. q85 then q87). With a final step of 1 or 2 (quality >= ~95) the
first quantisation is seen through 8-bit rounding noise, which we model. Blocks with
clipped pixels break the pixel/coefficient link and are left out; images with fewer than
``MIN_BLOCKS`` usable blocks (small or mostly saturated) get no result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr

from deeptrawl.detectors.jpeg.blocks import LOW_AC
from deeptrawl.detectors.jpeg.quant import fit_quality

#: Std (in coefficient units) of the error between recomputed and stored coefficients
#: (8-bit rounding of RGB and of the decoder's output). Measured ~0.28 on Pillow decodes.
DECODE_NOISE = 0.3
#: Std of the rounding error between the first decode and the second encode (RGB and
#: YCbCr rounding), on top of the decode noise.
RECODE_NOISE = 0.6
#: Number of Laplacian bells; their scales run geometrically from a near point mass at
#: zero (flat blocks) to the histogram's far tail.
N_SCALES = 9
#: Frequencies with fewer non-zero values than this carry no comb to see and are skipped.
MIN_NONZERO = 50
EM_ITERATIONS = 25
#: Screening gain (nats) below which a frequency shows no earlier quantisation.
SCREEN_GAIN = 1.0
#: Candidates tried with full EM after screening all of them.
SHORTLIST = 3
#: Largest histogram half-width, in quantised units.
MAX_SPAN = 40
#: Largest Q1 tried.
MAX_Q1 = 48
#: Fewer usable blocks than this and we abstain: histograms of a few hundred values are noise.
MIN_BLOCKS = 150
#: Clip per-coefficient log-ratios: one noisy coefficient must not decide a block.
RATIO_CLIP = 3.0


# --- per-frequency histogram models -----------------------------------------------------


def _laplace_cdf(t: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return 0.5 + 0.5 * np.sign(t) * (1.0 - np.exp(-np.abs(t) / scale))


def _blur(p: np.ndarray, q2: int) -> np.ndarray:
    """Spread each bin into its neighbours by the chance that decoding noise crosses a bin edge."""
    side = float(ndtr(-q2 / 2 / DECODE_NOISE))
    if side < 1e-4:
        return p
    out = (1 - 2 * side) * p
    out[..., 1:] += side * p[..., :-1]
    out[..., :-1] += side * p[..., 1:]
    return out


def _with_tail(p: np.ndarray) -> np.ndarray:
    """Append the bin "|v| > span" so the probabilities sum to one."""
    return np.concatenate([p, np.clip(1.0 - p.sum(-1, keepdims=True), 1e-9, None)], -1)


def _single_probs(scales: np.ndarray, q2: int, span: int) -> np.ndarray:
    """(components, bins) P(v) for each bell quantised once with step q2."""
    v = np.arange(-span, span + 1)
    s = scales[:, None]
    p = _laplace_cdf((v + 0.5) * q2, s) - _laplace_cdf((v - 0.5) * q2, s)
    return _with_tail(_blur(p, q2))


def _double_probs(scales: np.ndarray, q1s, q2: int, span: int) -> np.ndarray:
    """(candidates, components, bins) P(v) for each bell quantised with each q1 in ``q1s``,
    then (with rounding noise) with q2.

    The noise is narrow, so each first-quantisation bin m only reaches the few v around
    round(m q1 / q2): the m -> v transition is evaluated there and scattered, not as a
    dense matrix.
    """
    q1s = np.asarray(q1s, dtype=np.float64)
    n_c, n_k, n_v = len(q1s), len(scales), 2 * span + 1
    noise = RECODE_NOISE
    m_max = int(np.ceil(((span + 0.5) * q2 + 3 * noise) / q1s.min())) + 1
    m = np.arange(-m_max, m_max + 1, dtype=np.float64)
    edges = (m[None, :, None] + np.array([-0.5, 0.5])) * q1s[:, None, None]  # (C, M, 2)
    cdf = _laplace_cdf(edges[:, None], scales[None, :, None, None])  # (C, K, M, 2)
    first = cdf[..., 1] - cdf[..., 0]  # P(u = m): (C, K, M)
    centre = m[None, :] * q1s[:, None]  # (C, M)
    reach = int(np.ceil(3 * noise / q2)) + 1
    near = np.rint(centre / q2)[..., None] + np.arange(-reach, reach + 1)  # (C, M, R) candidate v
    lower = (near - 0.5) * q2 - centre[..., None]
    weight = ndtr((lower + q2) / noise) - ndtr(lower / noise)
    inside = np.abs(near) <= span
    # Scatter sum_m first[c, k, m] * weight[c, m, r] into bin near[c, m, r].
    contrib = first[:, :, :, None] * np.where(inside, weight, 0.0)[:, None]  # (C, K, M, R)
    bins = np.where(inside, near + span, 0).astype(np.int64)
    flat_index = (np.arange(n_c * n_k).reshape(n_c, n_k, 1, 1) * n_v + bins[:, None]).ravel()
    p = np.bincount(flat_index, weights=contrib.ravel(), minlength=n_c * n_k * n_v).reshape(n_c, n_k, n_v)
    return _with_tail(_blur(p, q2))


def _em(
    counts: np.ndarray, probs: np.ndarray, weights: np.ndarray | None = None, iterations: int = EM_ITERATIONS
) -> tuple[np.ndarray, np.ndarray]:
    """Mixture weights by EM for a batch of models. probs: (models, components, bins).

    Returns (log-likelihood per model, weights (models, components)).
    """
    n = counts.sum()
    if weights is None:
        weights = np.full(probs.shape[:2], 1.0 / probs.shape[1])
    weights = weights[:, None, :]  # (models, 1, components) for batched products
    for _ in range(iterations):
        mix = weights @ probs + 1e-12  # (models, 1, bins)
        weights = weights * np.swapaxes(probs @ np.swapaxes(counts / mix, 1, 2), 1, 2) / n
    mix = (weights @ probs)[:, 0] + 1e-12
    return np.log(mix) @ counts, weights[:, 0]


@dataclass(frozen=True)
class FrequencyFit:
    """What the histogram of one DCT frequency says."""

    position: tuple[int, int]
    final_step: int
    #: Best earlier step (> final_step), or None when no candidate improves on H0.
    primary_step: int | None
    #: Log-likelihood gain of H1 over H0, nats.
    llr: float
    #: Share of coefficients H1 attributes to double compression.
    double_share: float
    span: int
    #: log P(v | double) - log P(v | single) for v = -span..span, then the tail bin.
    log_ratio: np.ndarray
    #: The H0 fit (bell scales and weights), to score other earlier steps (``ratio_for``).
    scales: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    single_weights: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def ratio_for(self, q1: int) -> np.ndarray | None:
        """Log-ratio table "quantised with q1 before" vs "once", under the H0 bells; None
        when q1 cannot leave a trace (not coarser than the final step, or no fit)."""
        if q1 <= self.final_step or self.single_weights.size == 0:
            return None
        single = self.single_weights @ _single_probs(self.scales, self.final_step, self.span)
        dbl = self.single_weights @ _double_probs(self.scales, [q1], self.final_step, self.span)[0]
        return np.clip(np.log(dbl + 1e-9) - np.log(single + 1e-9), -RATIO_CLIP, RATIO_CLIP).astype(np.float32)

    def ratios_for(self, q1s: list[int]) -> np.ndarray:
        """``ratio_for`` for several steps (all above the final step) at once: (steps, bins)."""
        single = self.single_weights @ _single_probs(self.scales, self.final_step, self.span)
        dbl = self.single_weights @ _double_probs(self.scales, q1s, self.final_step, self.span)
        return np.clip(np.log(dbl + 1e-9) - np.log(single + 1e-9), -RATIO_CLIP, RATIO_CLIP).astype(np.float32)

    def index(self, values: np.ndarray) -> np.ndarray:
        """Bin index of each quantised value in this fit's tables (the tail bin beyond the span)."""
        idx = values + self.span
        return np.where((idx < 0) | (idx > 2 * self.span), 2 * self.span + 1, idx)


def _percentile(histogram: np.ndarray, q: float) -> int:
    """Value below which a share ``q`` of the counts lie (histogram over 0, 1, 2, ...)."""
    total = histogram.sum()
    return int(np.searchsorted(np.cumsum(histogram), q * total)) if total else 0


def fit_frequency(values: np.ndarray, q2: int, position: tuple[int, int] = (0, 0)) -> FrequencyFit:
    """Fit H0 and H1 (see module docstring) to one frequency's quantised values."""
    values = values.astype(np.int64)
    magnitude = np.bincount(np.minimum(np.abs(values), 4096))
    span = int(min(_percentile(magnitude, 0.99) + 1, MAX_SPAN))
    inside = np.abs(values) <= span
    counts = np.append(np.bincount(values[inside] + span, minlength=2 * span + 1), (~inside).sum()).astype(float)
    # Bells from a spike to the widest the data needs (its far tail, not just the span):
    # H0 must be able to fit heavy tails, or a sparse model (a huge Q1) wins by default.
    widest = max(float(_percentile(magnitude, 0.999)), span, 2.0)
    scales = q2 * np.geomspace(0.01, 2 * widest, N_SCALES)
    single = _single_probs(scales, q2, span)
    # H0 is run longer than H1 below: H1 starts from H0's solution, so the gain measures
    # the double-compression bells, not a difference in convergence.
    ll0, w0 = _em(counts, single[None], iterations=3 * EM_ITERATIONS)
    w0 = w0[0]
    p_single = w0 @ single
    # Q1 must leave at least one non-zero multiple inside the span, or the comb it would
    # leave is invisible here.
    # (Up to 6 x Q2, and at least up to Q2 + 24: after a very fine last save, Q2 = 1 or 2,
    # the first steps can be 10-20 times larger.)
    candidates = list(range(q2 + 1, min(max(6 * q2, q2 + 24), MAX_Q1, int(span * q2 + q2 // 2)) + 1))
    flat = np.zeros(2 * span + 2)
    if not candidates or np.count_nonzero(values) < MIN_NONZERO:
        return FrequencyFit(position, q2, None, 0.0, 0.0, span, flat, scales, w0)
    doubles = _double_probs(scales, candidates, q2, span)
    # Screen every candidate cheaply: the H0 bells, quantised twice, mixed with H0 (a
    # whole double-compressed image, or a tenth of one). No candidate that gains here:
    # the histogram shows no trace and the full fit is skipped.
    dq = w0 @ doubles
    screen = np.maximum(
        np.log(0.5 * dq + 0.5 * p_single + 1e-12) @ counts, np.log(0.1 * dq + 0.9 * p_single + 1e-12) @ counts
    ) - float(ll0[0])
    if screen.max() < SCREEN_GAIN:
        return FrequencyFit(position, q2, None, 0.0, 0.0, span, flat, scales, w0)
    short = np.argsort(-screen)[:SHORTLIST]
    both = np.concatenate([np.broadcast_to(single, (len(short),) + single.shape), doubles[short]], axis=1)
    # Start from H0's fit, a share of it moved onto the double-compressed bells.
    start = np.concatenate([0.7 * w0, 0.3 * w0])[None].repeat(len(short), axis=0)
    ll1, w1 = _em(counts, both, start)
    best = int(np.argmax(ll1))
    gain = float(ll1[best] - ll0[0])
    if gain <= 0:
        return FrequencyFit(position, q2, None, 0.0, 0.0, span, flat, scales, w0)
    wd = w1[best, N_SCALES:]
    share = float(wd.sum())
    p_double = (wd / share if share > 1e-3 else w0) @ doubles[short[best]]
    ratio = np.log(p_double + 1e-9) - np.log(p_single + 1e-9)
    ratio = np.clip(ratio, -RATIO_CLIP, RATIO_CLIP)
    return FrequencyFit(position, q2, candidates[short[best]], gain, share, span, ratio, scales, w0)


# --- whole-image aligned analysis ------------------------------------------------------


@dataclass(frozen=True)
class AlignedDouble:
    n_blocks: int
    fits: tuple[FrequencyFit, ...]
    #: Sum of per-frequency gains, nats; and per analysed block.
    llr: float
    llr_per_block: float
    #: IJG quality whose luma table best matches the estimated earlier steps (None if no evidence).
    primary_quality: int | None
    #: Mean share of double-compressed coefficients over the informative frequencies.
    double_share: float

    def primary_steps(self) -> dict[int, int]:
        """Estimated earlier step by frequency index, for the informative frequencies."""
        threshold = informative_gain(self.n_blocks)
        return {k: f.primary_step for k, f in enumerate(self.fits) if f.primary_step and f.llr >= threshold}

    def as_details(self) -> dict:
        return {
            "blocks": self.n_blocks,
            "llr": round(self.llr, 2),
            "llr_per_block": round(self.llr_per_block, 4),
            "primary_quality_estimate": self.primary_quality,
            "double_share": round(self.double_share, 3),
            "primary_steps": {
                f"{f.position[0]},{f.position[1]}": f.primary_step
                for f in self.fits
                if f.primary_step and f.llr >= informative_gain(self.n_blocks)
            },
        }


def informative_gain(n_blocks: int) -> float:
    """Gain (nats) above which one frequency counts as showing an earlier quantisation."""
    return 6.0 + 0.004 * n_blocks


def quantised_values(coefs: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(..., 15) rounded coefficient / step for the low AC positions."""
    steps = np.array([table[r, c] for r, c in LOW_AC], np.float32)
    ac = np.stack([coefs[..., r, c] for r, c in LOW_AC], axis=-1)
    return np.rint(ac / steps).astype(np.int32)


def aligned(values: np.ndarray, table: np.ndarray) -> AlignedDouble | None:
    """Fit every low AC frequency; None when too few blocks.

    ``values``: (blocks, 15) quantised low-AC values (``quantised_values``) of the usable
    (unclipped) blocks; larger images pass a block-strided subset (see ``sampled_pixels``).
    """
    n = int(values.shape[0])
    if n < MIN_BLOCKS:
        return None
    fits = tuple(fit_frequency(values[:, k], int(table[r, c]), (r, c)) for k, (r, c) in enumerate(LOW_AC))
    total = float(sum(f.llr for f in fits))
    strong = [f for f in fits if f.llr >= informative_gain(n)]
    primary = None
    share = 0.0
    if strong:
        share = float(np.mean([f.double_share for f in strong]))
        positions = [f.position for f in strong]
        steps = np.array([f.primary_step for f in strong])
        primary = fit_quality(steps, True, positions)[0]
    return AlignedDouble(n, fits, total, total / n, primary, share)


def informative(values: np.ndarray, final_step: int) -> np.ndarray:
    """Coefficients that can show an earlier quantisation: at least 2 in magnitude.

    Zero (and, with a final step of 1, +-1) values are what flat blocks and rounding noise
    produce under any history; counting them would make flat areas look "single".
    """
    return np.abs(values) * final_step >= 2


def block_log_ratio(
    values: np.ndarray, fits: tuple[FrequencyFit, ...], n_blocks: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per block: (log P(double) - log P(single) over informative coefficients, their count)."""
    threshold = informative_gain(n_blocks)
    total = np.zeros(values.shape[:-1], np.float32)
    count = np.zeros(values.shape[:-1], np.float32)
    used = 0
    for k, f in enumerate(fits):
        if f.llr < threshold or f.primary_step is None:
            continue
        v = values[..., k]
        keep = informative(v, f.final_step)
        total += np.where(keep, f.log_ratio.astype(np.float32)[f.index(v)], 0.0)
        count += keep
        used += 1
    return (total, count) if used else None
