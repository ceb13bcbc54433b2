"""Frequency / spectral analysis: traces that x2 upsampling leaves in an image's spectrum.

Enlarging a picture x2 (nearest, bilinear, bicubic resize, or the stride-2 transposed
convolutions of GAN generators) first spreads the pixels onto a twice-as-fine grid and
then filters. Spreading makes a *spectral replica*: the content at frequency ``f`` comes
back, filtered, at ``0.5 - f`` (in cycles per pixel). A natural picture's frequencies are
uncorrelated with each other; an enlarged one's come in locked pairs ``(f, 0.5 - f)``, and a
transposed convolution whose four kernel phases have unequal gains adds a 2-pixel
checkerboard, i.e. power peaks at half the sampling frequency.

How it is measured, on the luma at full resolution (never downscaled first: the traces
live at the highest frequencies, and resampling would erase or fake them):

* Up to ``MAX_TILES`` square tiles of at most ``TILE`` pixels, spread over the image, with
  offsets on a 16-pixel grid so that the phase of any 2-, 4- or 8-pixel period (upsampling,
  the JPEG block grid) is the same in every tile, then a 2-D Hann window.
* **Spectral correlation** (cyclostationarity): FFT of every row (and every column); for a
  cycle frequency ``a`` the coherence ``|sum F(f) F*(f - a)| / sqrt(sum |F(f)|^2 sum |F(f - a)|^2)``
  over all rows of all tiles. It is ~0 for a natural picture (up to ``1/sqrt(rows)`` noise)
  and near 1 wherever an enlargement's replica is above the noise. ``a = 1/2`` is x2
  upsampling; ``1/8`` and ``3/8`` are the JPEG 8x8 block grid (which also correlates at
  ``1/2``, so they are the control); ``5/16`` and ``7/16`` correlate for neither and give
  the noise floor, removed from every value. Summing the rows with alternate signs gives
  cycle ``(1/2, 1/2)``: a camera's demosaicing (green pixels on a quincunx) correlates
  there, x2 upsampling does not, and that separates the two.
* The **2-D power spectrum** (Welch average of the tiles): azimuthal average in
  ``PROFILE_BINS`` radial bins, power-law fall-off fits, and peak strengths at (1/2, 0),
  (0, 1/2), (1/2, 1/2) and the 1/4 positions relative to their neighbourhood
  (checkerboards), and the share of high-frequency power on the two axes (the cross that
  blocking and tile edges make).
* **Block DCT statistics**: mean magnitude of 8x8 DCT coefficients per frequency band and the
  share of near-zero high-frequency coefficients (smoothing and quantisation empty them).

``spectral_features`` returns all of it as a fixed-length vector (``FEATURE_NAMES``,
``FEATURE_VERSION``) for learned models. The score is a small logistic model (``MODEL``)
on four inputs derived from the correlation and peak features (``model_inputs``),
fitted on ``deeptrawl.samples.corpus_spectrum`` seeds 0-3 and checked on held-out seeds
100-103: AUC 0.995 upsampled vs original over PNG and JPEG q95-q60, 5% of originals
at >= 0.5 (the fitting command is next to the coefficients).

Cost: at most 4 tiles of 512x512 whatever the image size (about 1 MP of a 12 MP photo),
three FFT passes per tile: ~0.04 s on one core for a 12 MP photo, spectrum picture
included (decoding excluded). No working-resolution downscale, on purpose (see above).

Limits (honest): it finds enlargement by 2 (and 4, 8: their cycles include 1/2) along the
pixel grid; other factors (x1.5, x3, arbitrary resizes) put the correlation at cycle
frequencies this does not scan, and a picture enlarged then shrunk or rotated loses it.
JPEG at quality <= 75 erases much of the high-frequency replica and its block grid
correlates at 1/2 too, so enlarged-then-compressed pictures score lower, and smooth
photos saved at q60 can be flagged (retina). Photos at their camera's native resolution
carry demosaicing traces close to x2 upsampling's; the (1/2, 1/2) input keeps most of
them down, but in a simulated camera pipeline 8-17% were still flagged (chroma
subsampling in JPEG erases the (1/2, 1/2) trace). It says nothing about content-level
synthesis: a generator whose last layer is not an upsampling one, or an image downscaled
after generation, passes. Small images (under ~128 px) give few rows and a noisy
estimate. Some real sources are themselves enlargements (scikit-image's ``moon`` is a
x2 enlargement and is flagged, rightly).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.fft
from PIL import Image, ImageDraw, ImageFont

from deeptrawl.detectors.base import Detector, DetectorResult, Evidence, Finding
from deeptrawl.detectors.common import LUMA_WEIGHTS
from deeptrawl.detectors.registry import register
from deeptrawl.media.item import MediaItem
from deeptrawl.media.sniff import MediaKind

TILE = 512
MAX_TILES = 4
#: Tiles smaller than this give too few rows for a meaningful correlation estimate.
MIN_TILE = 64
#: Tile offsets and sizes are multiples of this, so 2-, 4-, 8- and 16-pixel periods keep
#: their phase from tile to tile.
ALIGN = 16
PROFILE_BINS = 32
#: Side of the centre square of each tile that the block-DCT statistics read.
DCT_SIDE = 256
#: A picture with less luma variance than this has no spectrum to speak of.
MIN_VARIANCE = 0.5
FEATURE_VERSION = "1"

#: Cycle frequencies (cycles/pixel, in 16ths) probed for spectral correlation.
_CYCLES = {"half": 8, "quarter": 4, "jpeg1": 2, "jpeg3": 6, "null5": 5, "null7": 7}
#: Frequencies outside this band are left out of the coherence means (DC leakage, edge bins).
_BAND = (0.03, 0.47)


def _feature_names() -> tuple[str, ...]:
    names = [f"profile_{i:02d}" for i in range(PROFILE_BINS)]
    names += ["falloff_mid_slope", "falloff_mid_intercept", "falloff_high_slope", "falloff_high_intercept"]
    names += ["peak_h2", "peak_v2", "peak_d2", "peak_h4", "peak_v4", "peak_d4", "cross_ratio"]
    for axis in ("x", "y"):
        names += [f"cyc_{axis}_half_central", f"cyc_{axis}_half_outer", f"cyc_{axis}_quarter",
                  f"cyc_{axis}_jpeg", f"cyc_{axis}_half_excess", f"cyc_{axis}_half_diagonal",
                  f"cyc_{axis}_noise"]  # fmt: skip
    names += ["dct_low", "dct_mid", "dct_high", "dct_top", "dct_high_zero_share"]
    return tuple(names)


#: What each element of ``spectral_features`` is (all float32; logs are base 10):
#:
#: - ``profile_00``..``profile_31``: azimuthally averaged power of the windowed luma in 32
#:   equal radial bins over 0 < r <= 0.5 cycles/pixel, as log10 of the bin's mean power over
#:   the whole spectrum's mean power (so brightness and contrast cancel).
#: - ``falloff_{mid,high}_{slope,intercept}``: least-squares line of log10 power against
#:   log10 frequency over the profile bins in 0.05-0.25 (mid) and 0.25-0.5 (high) c/px.
#:   Upsampled pictures fall off steeply above 0.25 (the interpolation filter).
#: - ``peak_{h,v,d}{2,4}``: log10 of the power in the 3x3 bins at (1/2, 0), (0, 1/2),
#:   (1/2, 1/2) (suffix 2) and (1/4, 0), (0, 1/4), (1/4, 1/4) (suffix 4) over 9x the median
#:   of the surrounding 9x9 bins: > 0 is a periodic pattern (checkerboard, block grid).
#: - ``cross_ratio``: log10 of mean power within one bin of the two axes over mean power
#:   elsewhere, for 0.25 < r <= 0.5 (the cross that blocking and hard tile edges make).
#: - ``cyc_{x,y}_*``: spectral correlation along rows (x) / columns (y). Each is a mean
#:   coherence in [0, 1] with the noise floor removed in quadrature (``sqrt(c^2 - floor^2)``),
#:   so ~0 means "nothing" whatever the image size: ``half_central`` cycle 1/2 with both
#:   frequencies in 0.15-0.35 c/px, ``half_outer`` cycle 1/2 with one below 0.15 (the other
#:   above 0.35), ``quarter`` cycle 1/4, ``jpeg`` the larger of cycles 1/8 and 3/8 (the JPEG
#:   block grid), ``half_excess`` = ``half_central - max(quarter, jpeg)`` (what the block
#:   grid cannot explain, since it correlates at every multiple of 1/8), ``half_diagonal``
#:   cycle 1/2 summed with alternate rows negated, i.e. cycle (1/2, 1/2): the quincunx
#:   of a camera's green pixels (demosaicing) puts correlation there, x2 upsampling does
#:   not (measured ~0.01 for every method), and ``noise`` the
#:   floor itself: the mean raw coherence at cycles 5/16 and 7/16, which nothing here
#:   produces (it falls as 1/sqrt(rows analysed)).
#: - ``dct_{low,mid,high,top}``: log10 of the mean |coefficient| of the orthonormal 8x8 DCT of
#:   the luma (on the image's own 8x8 grid) for u+v in 1-2, 3-5, 6-9, 10-14.
#: - ``dct_high_zero_share``: share of coefficients with u+v >= 6 whose magnitude is < 0.5
#:   (smoothing, interpolation and quantisation all empty the high bands).
FEATURE_NAMES = _feature_names()

#: Logistic score model: ``score = sigmoid(bias + sum(weight * input))`` over the four
#: inputs of ``model_inputs``. Fitted by ``python -m deeptrawl.samples.corpus_spectrum fit``
#: (defaults: train seeds 0-3 x 360 cases, held-out seeds 100-103 x 360 cases; IRLS with an
#: L2 penalty of 1e-4, no randomness), which prints this dict and the held-out numbers.
MODEL = {
    "bias": -4.8046,
    "weights": {"half_excess": 8.6633, "half_outer": 9.8425, "peak_half": 1.6631, "half_diagonal": -10.6385},
}


@register
class SpectrumDetector(Detector):
    name = "spectrum"
    version = "1.0.0"
    media_kinds = frozenset({MediaKind.IMAGE})

    def analyze_one(self, item: MediaItem) -> DetectorResult:
        rgb = item.rgb
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_TILE:
            return DetectorResult.abstain(f"image {w}x{h} is smaller than {MIN_TILE}px: too few rows for a spectrum")
        spec = analyse(rgb)
        if spec.variance < MIN_VARIANCE:
            return DetectorResult.abstain("the image is flat: it has no spectrum to analyse")
        features = spec.features()
        f = dict(zip(FEATURE_NAMES, (float(v) for v in features)))
        score = _score(f)
        findings = _findings(f, score)
        details = {
            "feature_version": FEATURE_VERSION,
            "tiles": [list(t) for t in spec.tiles],
            "tile_size": spec.size,
            "features": {k: round(v, 4) for k, v in f.items()},
        }
        picture = render_spectrum(spec, f, score)
        caption = "log power spectrum (centre = 0), radial profile with fall-off fits, spectral correlation per cycle"
        return DetectorResult(
            score=score, findings=findings, details=details, evidence=(Evidence("spectrum", "image", picture, caption),)
        )


def spectral_features(rgb: np.ndarray) -> np.ndarray:
    """The fixed-length float32 feature vector (``FEATURE_NAMES``) of an HxWx3 uint8 image.

    Raises ``ValueError`` for images under ``MIN_TILE`` pixels on a side.
    """
    return analyse(rgb).features()


# --- the analysis ---------------------------------------------------------------------------


@dataclass
class Spectrum:
    """Sums over the analysed tiles; ``features`` turns them into ``FEATURE_NAMES``."""

    size: int
    tiles: list[tuple[int, int]]  # (y, x) of each tile's top-left corner
    power: np.ndarray  # (size, size) Welch-averaged 2-D power, fftshifted (DC at the centre)
    coherence: dict[str, dict[str, float]]  # axis -> name -> mean coherence
    dct: np.ndarray  # mean |coef| per band (4,) and the high-band zero share
    variance: float

    def features(self) -> np.ndarray:
        profile, radii = radial_profile(self.power)
        logp = np.log10(profile / max(float(self.power.mean()), 1e-20) + 1e-12)
        mid = _line_fit(radii, logp, 0.05, 0.25)
        high = _line_fit(radii, logp, 0.25, 0.5)
        peaks = [_peak(self.power, fy, fx) for fy, fx in ((0, 2), (2, 0), (2, 2), (0, 4), (4, 0), (4, 4))]
        cyc = []
        for axis in ("x", "y"):
            c = self.coherence[axis]
            floor = (c["null5"] + c["null7"]) / 2

            def debiased(value: float) -> float:
                # The coherence of uncorrelated data is ~floor, not 0: remove that bias in quadrature.
                return float(np.sqrt(max(value * value - floor * floor, 0.0)))

            central, outer, quarter = debiased(c["half_central"]), debiased(c["half_outer"]), debiased(c["quarter"])
            jpeg = max(debiased(c["jpeg1"]), debiased(c["jpeg3"]))
            diagonal = debiased(c["half_diagonal"])
            cyc += [central, outer, quarter, jpeg, central - max(quarter, jpeg), diagonal, floor]
        vec = [*logp, *mid, *high, *peaks, _cross_ratio(self.power), *cyc, *np.log10(self.dct[:4] + 1e-3), self.dct[4]]
        return np.asarray(vec, dtype=np.float32)


def analyse(rgb: np.ndarray) -> Spectrum:
    """Tile the image, and sum the 2-D power, the row/column spectral correlations and the
    block DCT statistics over the tiles."""
    h, w = rgb.shape[:2]
    size, tiles = choose_tiles(h, w)
    window = np.hanning(size).astype(np.float32)
    window2d = np.outer(window, window)
    power = np.zeros((size, size // 2 + 1), np.float64)
    acc = {axis: _CoherenceSums(size) for axis in ("x", "y")}
    dct = np.zeros(5)
    variance = 0.0
    for y, x in tiles:
        tile = rgb[y : y + size, x : x + size].astype(np.float32) @ LUMA_WEIGHTS
        dct += _dct_stats(tile)
        tile -= tile.mean()
        variance += float(np.mean(tile * tile))
        tile *= window2d
        rows = scipy.fft.rfft(tile, axis=1)  # (size, size/2+1): one spectrum per row
        acc["x"].add(rows)
        acc["y"].add(scipy.fft.rfft(tile, axis=0).T)
        spec = scipy.fft.fft(rows, axis=0)  # rfft2 without redoing the row pass
        power += spec.real**2 + spec.imag**2
    n = len(tiles)
    return Spectrum(
        size=size,
        tiles=tiles,
        power=_full_plane(power / n),
        coherence={axis: a.means() for axis, a in acc.items()},
        dct=dct / n,
        variance=variance / n,
    )


def choose_tiles(h: int, w: int) -> tuple[int, list[tuple[int, int]]]:
    """Square tile size and up to ``MAX_TILES`` top-left corners, spread over a grid of
    at most 2x2, all on the ``ALIGN`` grid."""
    size = min(TILE, min(h, w) // ALIGN * ALIGN)
    if size < MIN_TILE:
        raise ValueError(f"image {w}x{h} is too small for a {MIN_TILE}px tile")
    # Two tiles along a side once it is 1.5 tiles long (overlapping up to half a tile).
    ny, nx = (1 if extent < 1.5 * size else 2 for extent in (h, w))

    def starts(extent: int, count: int) -> list[int]:
        # Tile centres at (i + 0.5) / count of the extent: spread out, away from the borders.
        last = (extent - size) // ALIGN * ALIGN
        return [min(max(int(extent * (i + 0.5) / count - size / 2) // ALIGN * ALIGN, 0), last) for i in range(count)]

    tiles = [(y, x) for y in starts(h, ny) for x in starts(w, nx)]
    return size, tiles[:MAX_TILES]


class _CoherenceSums:
    """Running sums for the spectral coherence at each cycle frequency in ``_CYCLES``.

    ``add`` takes one spectrum per row, ``(rows, size/2+1)`` from an rfft. For cycle
    ``s`` bins, bin ``k`` is paired with ``k - s`` (``F(k - s) = conj F(s - k)`` for the
    negative ones), so the pairs cover every frequency pair ``(f, f - a)`` once. Only
    pairs with both frequencies inside ``_BAND`` are summed: two runs of ``k``, one with
    ``k < s`` and one with ``k >= s``.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.power = np.zeros(size // 2 + 1)
        self.runs = {name: _pair_runs(size, size * sixteenths // 16) for name, sixteenths in _CYCLES.items()}
        self.cross = {name: np.zeros(len(k), np.complex128) for name, (k, _) in self.runs.items()}
        # Cycle 1/2 again with every other row negated: cycle (1/2, 1/2), the quincunx
        # pattern of a camera's green pixels (see the module docstring).
        self.diagonal = np.zeros(len(self.runs["half"][0]), np.complex128)
        self.sign = np.where(np.arange(size) % 2 == 0, 1.0, -1.0).astype(np.float32)

    def add(self, spectra: np.ndarray) -> None:
        conj = np.conj(spectra)
        self.power += np.einsum("rk,rk->k", spectra, conj).real
        for name, sixteenths in _CYCLES.items():
            s = self.size * sixteenths // 16
            (lo1, hi1), (lo2, hi2) = _pair_bounds(self.size, s)
            # k < s: F(k) conj(F(k - s)) = F(k) F(s - k); k >= s: F(k) conj(F(k - s)).
            products = (spectra[:, lo1:hi1], spectra[:, s - hi1 + 1 : s - lo1 + 1][:, ::-1])
            below = np.einsum("rk,rk->k", *products)
            above = np.einsum("rk,rk->k", spectra[:, lo2:hi2], conj[:, lo2 - s : hi2 - s])
            self.cross[name] += np.concatenate([below, above])
            if name == "half":  # all its pairs are in the k < s run
                self.diagonal += np.einsum("r,rk,rk->k", self.sign, *products)

    def means(self) -> dict[str, float]:
        out = {}
        for name, (k, partner) in self.runs.items():
            norm = np.sqrt(self.power[k] * self.power[partner] + 1e-20)
            coh = np.abs(self.cross[name]) / norm
            if name == "half":
                central = np.abs(k / self.size - 0.25) <= 0.1
                out["half_central"] = _mean(coh[central])
                out["half_outer"] = _mean(coh[~central])
                out["half_diagonal"] = _mean(np.abs(self.diagonal) / norm)
            else:
                out[name] = _mean(coh)
        return out


def _pair_bounds(size: int, s: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Half-open runs of ``k`` (below ``s``, and from ``s`` on) whose frequency and partner
    frequency ``|k - s|`` both lie in ``_BAND``."""
    kmin, kmax = int(np.ceil(_BAND[0] * size)), int(np.floor(_BAND[1] * size))
    below = (max(kmin, s - kmax), min(s - kmin, kmax) + 1)
    above = (max(s + kmin, kmin), kmax + 1)
    return (below[0], max(below)), (above[0], max(above))


def _pair_runs(size: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """The bins ``k`` summed for cycle ``s`` and their partners ``|k - s|``."""
    (lo1, hi1), (lo2, hi2) = _pair_bounds(size, s)
    k = np.r_[np.arange(lo1, hi1), np.arange(lo2, hi2)]
    return k, np.abs(k - s)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def _full_plane(half: np.ndarray) -> np.ndarray:
    """The full, fftshifted power plane from the rfft half (a real image's spectrum is
    symmetric: P(-fy, -fx) = P(fy, fx))."""
    size = half.shape[0]
    full = np.empty((size, size))
    full[:, : size // 2 + 1] = half
    neg = (-np.arange(size)) % size
    full[:, size // 2 + 1 :] = half[neg][:, size // 2 - 1 : 0 : -1]
    return np.fft.fftshift(full)


@functools.lru_cache(maxsize=8)
def _rings(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a fftshifted ``size`` x ``size`` plane: the flat indices of bins with
    0 < r <= 0.5, their ring numbers, and the bin count per ring."""
    f = np.fft.fftshift(np.fft.fftfreq(size))
    r = np.hypot(f[:, None], f[None, :]).ravel()
    ring = np.minimum((r * 2 * PROFILE_BINS).astype(np.int64), PROFILE_BINS - 1)
    keep = np.flatnonzero((r > 0) & (r <= 0.5))
    return keep, ring[keep], np.bincount(ring[keep], minlength=PROFILE_BINS)


def radial_profile(power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean power in ``PROFILE_BINS`` equal rings over 0 < r <= 0.5 cycles/pixel, and the
    ring centres (c/px)."""
    keep, ring, counts = _rings(power.shape[0])
    sums = np.bincount(ring, power.ravel()[keep], minlength=PROFILE_BINS)
    centres = (np.arange(PROFILE_BINS) + 0.5) * 0.5 / PROFILE_BINS
    return sums / np.maximum(counts, 1), centres


def _line_fit(radii: np.ndarray, logp: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    m = (radii >= lo) & (radii <= hi)
    slope, intercept = np.polyfit(np.log10(radii[m]), logp[m], 1)
    return float(slope), float(intercept)


def _peak(power: np.ndarray, fy: int, fx: int) -> float:
    """log10 of the 3x3 power at (1/fy, 1/fx) cycles (0 = on the axis) over 9x the median of
    the surrounding 9x9 bins (wrapping round the plane's edge, as the spectrum does)."""
    size = power.shape[0]
    cy = size // 2 + (size // fy if fy else 0)
    cx = size // 2 + (size // fx if fx else 0)
    ys, xs = (np.arange(-4, 5) + cy) % size, (np.arange(-4, 5) + cx) % size
    patch = power[np.ix_(ys, xs)]
    centre = patch[3:6, 3:6].sum()
    ring = np.concatenate([patch[:3].ravel(), patch[6:].ravel(), patch[3:6, :3].ravel(), patch[3:6, 6:].ravel()])
    return float(np.log10((centre + 1e-12) / (9 * np.median(ring) + 1e-12)))


@functools.lru_cache(maxsize=8)
def _cross_masks(size: int) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(size) - size // 2
    r = np.hypot(k[:, None], k[None, :]) / size
    on_axis = (np.abs(k)[:, None] <= 1) | (np.abs(k)[None, :] <= 1)
    high = (r > 0.25) & (r <= 0.5)
    return np.flatnonzero(high & on_axis), np.flatnonzero(high & ~on_axis)


def _cross_ratio(power: np.ndarray) -> float:
    on_axis, off_axis = _cross_masks(power.shape[0])
    flat = power.ravel()
    return float(np.log10((flat[on_axis].mean() + 1e-12) / (flat[off_axis].mean() + 1e-12)))


_DCT8 = np.array(
    [[np.sqrt((1 if u == 0 else 2) / 8) * np.cos((2 * x + 1) * u * np.pi / 16) for x in range(8)] for u in range(8)],
    dtype=np.float32,
)
_UV = np.add.outer(np.arange(8), np.arange(8))
_DCT_BANDS = [(1, 2), (3, 5), (6, 9), (10, 14)]


def _dct_stats(tile: np.ndarray) -> np.ndarray:
    """Mean |coef| per band of the 8x8 block DCT, and the share of near-zero high coefficients,
    over the tile's central ``DCT_SIDE`` square (enough blocks for stable means, at a
    quarter of the cost of a 512 tile). The tile's corner is on the image's 8x8 grid."""
    side = min(DCT_SIDE, tile.shape[0])
    start = (tile.shape[0] - side) // 2 // 8 * 8
    n = side // 8
    blocks = tile[start : start + side, start : start + side].reshape(n, 8, n, 8).transpose(0, 2, 1, 3)
    coefs = np.abs(_DCT8 @ blocks @ _DCT8.T)  # (n, n, 8, 8)
    mean = coefs.mean(axis=(0, 1))
    bands = [float(mean[(_UV >= lo) & (_UV <= hi)].mean()) for lo, hi in _DCT_BANDS]
    high = coefs[:, :, _UV >= 6]
    return np.array([*bands, float((high < 0.5).mean())])


# --- score and explanation --------------------------------------------------------------------


def model_inputs(f: dict[str, float]) -> dict[str, float]:
    """The score model's inputs, from the named features.

    ``half_excess``: cycle-1/2 correlation (central band) beyond what the JPEG grid explains,
    mean over rows and columns. ``half_outer``: cycle-1/2 correlation between a low and a
    high frequency, mean over rows and columns (JPEG removes most of that high band, so it
    is strong evidence when present). ``peak_half``: the stronger checkerboard peak at
    (1/2, 0) or (0, 1/2), log10 over its neighbourhood, floored at 0 (a dip is no evidence).
    ``half_diagonal``: cycle-(1/2, 1/2) correlation, mean over rows and columns: a camera's
    demosaicing puts it there and x2 upsampling does not, so it counts against.
    """
    return {
        "half_excess": (f["cyc_x_half_excess"] + f["cyc_y_half_excess"]) / 2,
        "half_outer": (f["cyc_x_half_outer"] + f["cyc_y_half_outer"]) / 2,
        "peak_half": max(f["peak_h2"], f["peak_v2"], 0.0),
        "half_diagonal": (f["cyc_x_half_diagonal"] + f["cyc_y_half_diagonal"]) / 2,
    }


def _score(f: dict[str, float]) -> float:
    inputs = model_inputs(f)
    z = MODEL["bias"] + sum(w * inputs[name] for name, w in MODEL["weights"].items())
    return float(1.0 / (1.0 + np.exp(-z)))


#: A checkerboard peak this strong (log10 over its neighbourhood, i.e. 30x) is reported on
#: its own: about half of the transposed-convolution cases reach it, under 6% of the
#: interpolated ones and no original in the corpus.
CHECKERBOARD_PEAK = 1.5


def _findings(f: dict[str, float], score: float) -> tuple[Finding, ...]:
    if score < 0.5:
        return ()
    findings = [
        Finding(
            code="spectrum_upsampling_x2",
            message=(
                f"frequencies f and 1/2 - f are locked together (coherence {f['cyc_x_half_central']:.2f} along rows, "
                f"{f['cyc_y_half_central']:.2f} along columns, where a natural photo gives about 0): the spectral "
                f"replica that enlarging a picture x2 leaves (an interpolating resize, or the upsampling layer of an "
                f"image generator)"
            ),
            score=score,
        )
    ]
    peak = max(f["peak_h2"], f["peak_v2"])
    if peak >= CHECKERBOARD_PEAK:
        findings.append(
            Finding(
                code="spectrum_checkerboard_peak",
                message=(
                    f"a power peak {10**peak:.0f}x its surroundings at half the sampling frequency: a 2-pixel "
                    f"checkerboard pattern, typical of transposed-convolution upsampling"
                ),
                score=score,
            )
        )
    return tuple(findings)


# --- evidence picture ---------------------------------------------------------------------------

_PANEL = 256


def render_spectrum(spec: Spectrum, f: dict[str, float], score: float) -> np.ndarray:
    """Three panels, drawn with Pillow: the log power spectrum, the radial profile with its
    fall-off fits, and the spectral correlation per cycle frequency."""
    font = _font()
    canvas = Image.new("RGB", (3 * _PANEL + 20, _PANEL + 20), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    titles = ("log power spectrum (centre = 0 c/px)", "radial profile: log10 power vs c/px",
              f"spectral correlation (score {score:.2f})")  # fmt: skip
    panels = (_spectrum_panel(spec.power), _profile_panel(spec, f, font), _coherence_panel(f, font))
    for i, (title, panel) in enumerate(zip(titles, panels)):
        x = i * (_PANEL + 10)
        canvas.paste(panel, (x, 20))
        draw.text((x + 4, 5), title, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


@functools.lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default_imagefont()  # the bitmap font: fast, and the same everywhere


def _spectrum_panel(power: np.ndarray) -> Image.Image:
    logp = np.log10(power + 1e-12).astype(np.float32)
    if logp.shape[0] != _PANEL:  # area-resample (log values) to the panel, DC stays at the centre
        logp = np.asarray(Image.fromarray(logp, mode="F").resize((_PANEL, _PANEL), Image.BOX))
    lo, hi = np.percentile(logp, [1.0, 99.9])
    norm = np.clip((logp - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    # A blue-yellow ramp: peaks read better in colour than in grey.
    rgb = np.stack([norm**0.8, norm**1.5 * 0.9 + 0.1 * norm, 0.5 * (1 - norm) + 0.3 * norm**4], axis=-1)
    return Image.fromarray((rgb * 255).astype(np.uint8))


def _profile_panel(spec: Spectrum, f: dict[str, float], font: ImageFont.ImageFont) -> Image.Image:
    panel = Image.new("RGB", (_PANEL, _PANEL), (250, 250, 250))
    draw = ImageDraw.Draw(panel)
    logp = np.asarray([f[f"profile_{i:02d}"] for i in range(PROFILE_BINS)])
    radii = (np.arange(PROFILE_BINS) + 0.5) * 0.5 / PROFILE_BINS
    lo, hi = float(logp.min()) - 0.3, float(max(logp.max(), 0.0)) + 0.3
    left, right, top, bottom = 8, _PANEL - 8, 6, _PANEL - 34

    def px(r: float, v: float) -> tuple[float, float]:
        return left + (right - left) * r / 0.5, bottom - (bottom - top) * (v - lo) / (hi - lo)

    draw.line([(left, top), (left, bottom), (right, bottom)], fill=(0, 0, 0))
    for r in (0.125, 0.25, 0.375, 0.5):
        x, _ = px(r, lo)
        draw.line([(x, bottom), (x, bottom + 3)], fill=(0, 0, 0))
        draw.text((x - 14, bottom + 5), f"{r:g}", fill=(0, 0, 0), font=font)
    draw.line([px(r, v) for r, v in zip(radii, logp)], fill=(20, 60, 200), width=2)
    for key, lo_r, hi_r in (("mid", 0.05, 0.25), ("high", 0.25, 0.5)):
        slope, intercept = f[f"falloff_{key}_slope"], f[f"falloff_{key}_intercept"]
        ends = [(r, intercept + slope * np.log10(r)) for r in (lo_r, hi_r)]
        draw.line([px(r, v) for r, v in ends], fill=(220, 60, 30), width=1)
    text = f"fall-off slope {f['falloff_mid_slope']:.1f} (mid), {f['falloff_high_slope']:.1f} (high)"
    draw.text((left, bottom + 18), text, fill=(220, 60, 30), font=font)
    return panel


def _coherence_panel(f: dict[str, float], font: ImageFont.ImageFont) -> Image.Image:
    """Bars of the noise-corrected coherence (0..1) per cycle, rows in blue, columns in red."""
    panel = Image.new("RGB", (_PANEL, _PANEL), (250, 250, 250))
    draw = ImageDraw.Draw(panel)
    bars = [("1/2", "half_central"), ("1/2 hi", "half_outer"), ("1/4", "quarter"), ("jpeg", "jpeg"),
            ("diag", "half_diagonal")]  # fmt: skip
    top, bottom = 8, _PANEL - 50
    width = (_PANEL - 16) // (2 * len(bars))
    draw.line([(8, bottom), (_PANEL - 8, bottom)], fill=(0, 0, 0))
    for i, (label, key) in enumerate(bars):
        for j, (axis, colour) in enumerate((("x", (20, 60, 200)), ("y", (220, 60, 30)))):
            value = float(np.clip(f[f"cyc_{axis}_{key}"], 0.0, 1.0))
            x0 = 8 + (2 * i + j) * width
            draw.rectangle([x0 + 2, bottom - (bottom - top) * value, x0 + width - 2, bottom], fill=colour)
        draw.text((8 + 2 * i * width + 2, bottom + 5), label, fill=(0, 0, 0), font=font)
    legend = ("blue: along rows, red: along columns", "1/2: x2 upsampling; jpeg: block grid;",
              "diag (1/2,1/2): camera demosaicing")  # fmt: skip
    for n, line in enumerate(legend):
        draw.text((8, bottom + 16 + 11 * n), line, fill=(0, 0, 0), font=font)
    return panel


# --- refitting (python -m deeptrawl.samples.corpus_spectrum fit) -------------------------------


def _fit_command(n: int, n_test: int, train_seeds: list[int], test_seeds: list[int], l2: float = 1e-4) -> int:
    """Fit ``MODEL`` on the spectrum corpus, print it and the held-out numbers."""
    import io

    from deeptrawl.metrics import roc_auc
    from deeptrawl.samples import corpus_spectrum

    def auc(positive: np.ndarray, negative: np.ndarray) -> float:
        return roc_auc([True] * len(positive) + [False] * len(negative), np.r_[positive, negative])

    def table(seeds: list[int], n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        rows, labels, kinds = [], [], []
        for seed in seeds:
            for case in corpus_spectrum.cases(n, seed):
                rgb = np.asarray(Image.open(io.BytesIO(case.data)).convert("RGB"))
                f = dict(zip(FEATURE_NAMES, (float(v) for v in spectral_features(rgb))))
                rows.append(list(model_inputs(f).values()))
                labels.append(case.manipulated)
                kinds.append(case.kind)
        return np.array(rows), np.array(labels), kinds

    names = list(MODEL["weights"])
    x_train, y_train, _ = table(train_seeds, n)
    coef = fit_logistic(x_train, y_train.astype(float), l2)
    model = {"bias": round(float(coef[0]), 4), "weights": {k: round(float(c), 4) for k, c in zip(names, coef[1:])}}
    print("MODEL =", model)
    x_test, y_test, kinds = table(test_seeds, n_test)
    z = model["bias"] + x_test @ np.array([model["weights"][k] for k in names])
    score = 1.0 / (1.0 + np.exp(-z))
    real = score[~y_test]
    print(f"held-out seeds {test_seeds}: {len(score)} cases, AUC {auc(score[y_test], real):.4f}, "
          f"FPR@0.5 {np.mean(real >= 0.5):.3f}, TPR@0.5 {np.mean(score[y_test] >= 0.5):.3f}")  # fmt: skip
    for kind in sorted(set(kinds)):
        m = np.array([k == kind for k in kinds])
        line = f"  {kind:26s} n={m.sum():3d} flagged@0.5={np.mean(score[m] >= 0.5):.3f}"
        if y_test[m].all():
            line += f" AUC vs all real={auc(score[m], real):.4f}"
        print(line)
    return 0


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 50) -> np.ndarray:
    """Newton-Raphson (IRLS) logistic regression with an L2 penalty of ``l2 * n`` on the
    weights (not the bias); returns ``[bias, *weights]``. Deterministic."""
    xb = np.c_[np.ones(len(x)), x]
    penalty = l2 * len(y) * np.diag(np.r_[0.0, np.ones(x.shape[1])])
    coef = np.zeros(xb.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-xb @ coef))
        grad = xb.T @ (p - y) + penalty @ coef
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + penalty
        coef -= np.linalg.solve(hess, grad)
    return coef
