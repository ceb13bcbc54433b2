"""Error-level analysis (ELA) of the luma plane, calibrated against the image's own content
and quality.

Classic ELA re-saves an image as JPEG and looks for regions that change more than the
rest. Taken literally it mostly maps texture (edges re-quantise worse than sky), and it
lights up clean photos re-saved just under their own quality. This version keeps the
idea but asks a sharper question per 16x16 block and per re-save quality ``q``:

    r = log((A + 1) / (B + 1))

``A`` is the block's mean error (|difference| of luma, Y) when the image's Y plane is
re-saved at ``q`` on its own 8x8 grid; ``B`` is the same error when the content is first
shifted by 4 pixels, so the grid cuts it elsewhere. ``B`` is what a block of *this
texture* loses when its pixels carry no memory of the grid (the "calibration" idea of
JPEG steganalysis), so texture largely cancels. A block whose DCT coefficients still sit
near the lattice of an earlier compression at a similar quality loses much less on the
aligned grid (``r`` well below 0); one pasted from an uncompressed source has ``r`` near
0; one pasted from a more heavily compressed JPEG at another offset has its own ``r``.
A uniformly re-compressed photo has one history everywhere, so its ``r`` is uniform up to
noise and a texture trend (a busy block keeps more coefficients on an old lattice than a
smooth one).

What is analysed: the luma plane only (``item.luma``; ``pixels = "luma"``, so a scan
whose detectors all read luma decodes JPEGs without colour). For a YCbCr or greyscale
JPEG that is the file's own Y plane exactly as libjpeg decodes it, with no round trip
through RGB, so it carries the traces of the file's luma quantisation undisturbed; for
other images it is the BT.601 luma of the RGB pixels. Each round trip is a greyscale
(one-component) JPEG quantised with the luma table at ``q``: no colour conversion, no
chroma, about half the cost of a colour round trip. ELA 1.x summed the error over R, G
and B of colour round trips; on the seeded tuning data (``deeptrawl/samples/corpus_ela.py``
seeds 1-3, 300 cases, and the re-compressed, resized, noisy and grey photos of
tests/test_ela.py and of the tuning script) the luma plane alone separates as well: AUC
0.990 vs 0.977, 137 vs 132 of 150 splices flagged, 1 vs 3 of 370 clean photos flagged.

The test, per quality: ``r`` minus the image's own robust (Theil-Sen) line of ``r``
against texture ``log(B + 1)``, standardised robustly over the informative blocks,
smoothed over 3x3 blocks (a splice is a region, noise is not) and standardised again.
A region departing on the high side (changes *more* than the rest), or at half weight on
the low side (changes *less*: e.g. pasted from a more heavily compressed JPEG), is
evidence: mean z of the blocks above 2.5, times their share of the analysed blocks
(saturating at 10%). The score is a logistic of the strongest such region over the
qualities. The heatmap shows, at that quality and on that side, the mean of that
detrended test and the plain standardised ``r`` (no texture line); 0.5 in the map means
a mean z of 2 (``Z_HEAT``). On seeded splices the line partly absorbs a pasted region
whose texture differs from the host's, which the plain map does not, while the plain map
is noisier; ELA 1.x, in colour, showed the plain map. On luma the plain map alone
localises badly and the mean best: on the 150 tuning splices, with an even spread of
qualities, IoU >= 0.3 on 91% (plain alone 49%, detrended alone 85%); as shipped 87%
(ELA 1.1: 83%).

Which blocks count: flat blocks (shifted luma error under 0.4 levels at any chosen
quality) and blocks with more than 3% of pixels whose luma is clipped at 0 or 255 are
skipped: the decoder clamps clipped pixels, which knocks their coefficients off any
lattice, so blown highlights (a cat's eye) and crushed shadows look "fresh". In the
heatmap they take the mean of the informative blocks around them (5x5). Under 15%
informative blocks (a noisy night sky), ELA abstains.

Which qualities: the file's own JPEG quality is estimated from its quantisation tables
(``estimate_quality``: the IJG scaling of the standard tables; camera and editor tables
are matched approximately by their median step). Re-saving a clean JPEG at or just
below its own quality re-quantises content-dependently (coefficient ``n*S`` moves to the
nearest multiple of a step only a little larger than ``S``), which is what made plain
ELA flag clean photos. So only qualities 50..90 (step 5) whose quantiser steps are at
least twice the file's own (``MIN_STEP_RATIO``) are allowed: quality 95 or better ->
50..90, 90 -> 50..80, 85 -> 50..70, 80 -> 50..60, 75 -> 50. PNG and other lossless
files have no last quality, so all nine are allowed. A JPEG last saved at quality 70 or
lower leaves no usable quality and ELA abstains: a save that coarse erases the traces ELA
reads. Of the allowed qualities at most three are used (``chosen_qualities``): the lowest,
the highest, and the one where an earlier compression shows. Re-saving at the quality a
region was compressed at before reproduces its quantiser, so that region loses least on
its own grid there (the "JPEG ghost"); ELA 1.1 found most of its strongest evidence at
that quality, wherever it lay among the nine. ``probe_quality`` finds it by re-saving a
few evenly spaced tiles (``PROBE_PIXELS``, 3 tiles of 128px) at every allowed quality and
taking the one with the lowest median ``r``; it replaces the inner pick of an even spread
(95 -> 50, 70, 90; 90 -> 50, 65, 80; 85 -> 50, 60, 70; 80 -> 50, 55, 60; 75 -> 50). On
the tuning splices the even spread alone flagged 129 of 150 and the probed choice 137
(ELA 1.1 with all nine qualities: 132), with 1 of 370 clean photos flagged either way.

Cost: each quality costs two greyscale round trips (OpenCV's libjpeg, bit-identical to
Pillow's saving mode "L"), the probe 18 small ones. Images with pixels x qualities up to
``PIXEL_QUALITY_BUDGET`` (1.8 MP: 0.6 MP at three qualities) are analysed whole. Larger
ones are never rescaled (that would destroy the 8x8 grid ELA reads): a stratified sample
of 128x128 tiles, evenly spaced in raster order, with origins on multiples of 16 so the
8x8 grid lines up, is assembled into one mosaic per quality (plus a mosaic of the same
tiles shifted by 4). Without chroma, re-encoding a tile in the mosaic gives exactly the
pixels that re-encoding the whole image gives, shifted copy included (checked in
tests/test_ela.py), so every pixel of a tile counts. On one core (the Intel Xeon of
bench/RESULTS.md, noisy photos saved at q90-95, min of 15 runs) ELA takes 20-23 ms for
any photo of 1 MP or more, whatever its size: 36 tiles, i.e. 59% of a 1 MP photo, 11% of
5.4 MP and 4.9% of 12 MP (ELA 1.1: 67-87 tiles, 12% of 12 MP, 120-210 ms). The
heatmap's unsampled blocks are interpolated (normalised box average of sampled blocks
over about one sampling period).

Limits (honest): ELA needs the last save to be finer than the history it looks for, so
a splice last saved at or just above the host's quality (within the 2x step rule) is
invisible, and hosts saved above ~90 leave little to find. Flat or clipped donor
regions carry no information, and a donor that differs from the host only in its colour
planes' history is invisible to a luma-only ELA. Clipping is judged on luma, so a
saturated colour whose luma is not clipped counts as informative. A donor pasted from a
more heavily compressed JPEG is found less reliably than an uncompressed one. On large
images the sample (5% of a 12 MP photo, against 9-12% in ELA 1.1) misses a small pasted
region more often than before. The probe reads 3 tiles: where they are flat it finds
nothing and the even spread is used. Uniformly double-compressed photos (q1 then a finer
q2) are still the hardest clean case. ELA says nothing about fully synthetic images
saved once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from deeptrawl.detectors.base import Detector, DetectorResult, Evidence, Finding
from deeptrawl.detectors.registry import register
from deeptrawl.media.item import MediaItem
from deeptrawl.media.sniff import MediaKind

BLOCK = 16
#: Re-save qualities ELA may use; the file's own quality rules some out.
CANDIDATE_QUALITIES = (50, 55, 60, 65, 70, 75, 80, 85, 90)
#: A re-save quality is used only if its quantiser steps are at least this many times the
#: file's own (measured on seeded data: ratios of 1.3-1.6 let more clean photos light up).
MIN_STEP_RATIO = 2.0
#: At most this many of the allowed qualities are used (each costs two greyscale round
#: trips): the lowest, the highest and the probed one (``chosen_qualities``).
MAX_QUALITIES = 3
#: The calibration copy is shifted by this many pixels: half an 8x8 block.
SHIFT = 4
#: Blocks whose shifted re-save error is below this (luma levels per pixel) are flat: too
#: little changes for a ratio to mean anything.
MIN_BLOCK_ERROR = 0.4  # 0.8 left 13 of 150 tuning splices abstaining; 0.3 flagged more clean photos
#: Blocks with more than this share of pixels with luma clipped at 0 or 255 are skipped.
MAX_CLIPPED_SHARE = 0.03
#: Robust z above which a smoothed block counts as anomalous.
Z_ANOMALOUS = 2.5
#: In the heatmap, 0.5 means a mean z (of the detrended test and the plain ratio) of this.
Z_HEAT = 2.0
#: Weight of a region that changes *less* than the rest.
LOW_SIDE_WEIGHT = 0.5
#: Raw evidence at which the score crosses 0.5, and the logistic's width. Set on seeded
#: data (deeptrawl/samples/corpus_ela.py seeds 1-3 and re-compressed, resized, noisy, grey
#: photos; never the evaluation seed 1000) so that photos with one uniform history stay
#: below it. On luma the clean photos' evidence reaches higher than on R+G+B (ELA 1.x: 1.75).
RAW_AT_HALF = 2.3
RAW_WIDTH = 0.35
#: Cost cap: analysed pixels x re-save qualities (each two greyscale round trips). Within
#: it the whole image is analysed, beyond it tiles are sampled; 1.8 MP keeps any photo
#: near 20-23 ms on one core, probe included.
PIXEL_QUALITY_BUDGET = 1_800_000
TILE = 128
#: Pixels (in 128px tiles) re-saved at every allowed quality to find an earlier
#: compression's quality (``probe_quality``).
PROBE_PIXELS = 49_152
#: Blocks (evenly spaced) whose pairwise slopes give the Theil-Sen texture line.
THEIL_SEN_BLOCKS = 200
#: Smaller images carry too few blocks for a meaningful comparison.
MIN_SIDE = 64
MIN_INFORMATIVE_BLOCKS = 30
#: Below this share of informative blocks, robust statistics describe a few odd blocks,
#: not the image: abstain.
MIN_INFORMATIVE_SHARE = 0.15

#: The IJG (libjpeg) standard tables, natural order; quality q scales them.
IJG_LUMA = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.float64,
)  # fmt: skip
IJG_CHROMA = np.array(
    [
        17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
        24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    ]
    + [99] * 32,
    dtype=np.float64,
)  # fmt: skip


# --- the file's own quality ---------------------------------------------------------------


def ijg_scale(quality: int) -> float:
    """The IJG percentage scaling of the standard tables at ``quality`` (1..100)."""
    quality = min(max(int(quality), 1), 100)
    return 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """The table libjpeg writes for ``quality`` (baseline: steps clamped to 1..255)."""
    return np.clip(np.floor((base * ijg_scale(quality) + 50.0) / 100.0), 1, 255)


#: Quality -> (luma, chroma) IJG tables, for matching a file's tables exactly.
_IJG_TABLES = {q: (ijg_table(IJG_LUMA, q), ijg_table(IJG_CHROMA, q)) for q in range(1, 101)}


@dataclass(frozen=True)
class QualityEstimate:
    quality: int  #: the IJG quality whose tables are closest
    scale: float  #: effective IJG scaling of the file's own luma table (percent)
    standard: bool  #: the tables are exactly the IJG ones at ``quality``


def estimate_quality(quantization: dict | None) -> QualityEstimate | None:
    """The JPEG quality a file was last saved at, from its quantisation tables.

    ``quantization`` is Pillow's ``image.quantization`` (table id -> 64 steps in natural
    order). Exactly IJG-scaled tables give the quality exactly; other encoders' tables
    (cameras, editors) are matched by their median step relative to the IJG luma table.
    ``None`` when there are no tables (PNG and other lossless formats).
    """
    if not quantization or len(quantization.get(0, ())) != 64:
        return None
    luma = np.asarray(quantization[0], dtype=np.float64)
    chroma = np.asarray(quantization[1], dtype=np.float64) if len(quantization.get(1, ())) == 64 else None
    for q, (luma_q, chroma_q) in _IJG_TABLES.items():
        if np.array_equal(luma_q, luma) and (chroma is None or np.array_equal(chroma_q, chroma)):
            return QualityEstimate(q, ijg_scale(q), True)
    scale = float(np.median(luma / IJG_LUMA) * 100.0)
    nearest = min(range(1, 101), key=lambda q: abs(math.log(max(ijg_scale(q), 0.5) / max(scale, 0.5))))
    return QualityEstimate(nearest, scale, False)


def resave_qualities(own: QualityEstimate | None) -> tuple[int, ...]:
    """Candidate qualities whose steps are at least ``MIN_STEP_RATIO`` x the file's own."""
    if own is None:
        return CANDIDATE_QUALITIES
    # Floor the own scale at 1% (quality 100's tables of all ones): finer is not possible.
    return tuple(q for q in CANDIDATE_QUALITIES if ijg_scale(q) >= MIN_STEP_RATIO * max(own.scale, 1.0))


# --- what is analysed ---------------------------------------------------------------------


def chosen_qualities(allowed: tuple[int, ...], ghost: int | None = None, most: int | None = None) -> tuple[int, ...]:
    """At most ``MAX_QUALITIES`` of the allowed qualities, spread evenly over them (the
    lowest and the highest always among them); ``ghost`` (``probe_quality``) takes the
    place of the inner pick nearest to it."""
    most = MAX_QUALITIES if most is None else most
    if len(allowed) <= most:
        return tuple(allowed)
    picks = [allowed[i] for i in sorted({round(k * (len(allowed) - 1) / max(most - 1, 1)) for k in range(most)})]
    if ghost in allowed and ghost not in picks and len(picks) > 2:
        inner = min(picks[1:-1], key=lambda q: abs(q - ghost))
        picks[picks.index(inner)] = ghost
    return tuple(sorted(picks))


@dataclass(frozen=True)
class Plan:
    """The analysed part of an image: the whole of it, or grid-aligned tiles."""

    origins: tuple[tuple[int, int], ...]  #: (y, x) of each tile; ((0, 0),) when whole
    tile: tuple[int, int]  #: tile height and width (the image size when whole)
    whole: bool
    stride_blocks: int  #: typical spacing of sampled tiles, in blocks (for the heatmap)

    @property
    def analysed_pixels(self) -> int:
        return len(self.origins) * self.tile[0] * self.tile[1]


def plan(h: int, w: int, n_qualities: int, budget: int | None = None) -> Plan:
    """The whole image when the budget (``PIXEL_QUALITY_BUDGET``) allows; otherwise evenly
    spaced 128px tiles."""
    budget = (PIXEL_QUALITY_BUDGET if budget is None else budget) // max(n_qualities, 1)
    # Tile origins on multiples of 16 (the block grid), with SHIFT pixels of margin for
    # the shifted copy.
    cells = [(y, x) for y in range(BLOCK, h - TILE - SHIFT + 1, TILE) for x in range(BLOCK, w - TILE - SHIFT + 1, TILE)]
    if h * w <= budget or not cells:
        return Plan(((0, 0),), (h, w), True, 1)
    fraction = max(1, min(len(cells), budget // (TILE * TILE))) / len(cells)
    # Evenly spaced in raster order: cell k is taken when floor((k + 1) f) steps up; rows
    # whose length is not a multiple of 1/f come out staggered rather than in columns.
    chosen = tuple(c for k, c in enumerate(cells) if math.floor((k + 1) * fraction) > math.floor(k * fraction))
    return Plan(chosen, (TILE, TILE), False, max(1, round((TILE // BLOCK) / math.sqrt(fraction))))


def resave_error(luma: np.ndarray, quality: int) -> np.ndarray:
    """Per-pixel |difference| (uint8) after one greyscale JPEG round trip at ``quality``.

    A 2-D array makes a one-component JPEG quantised with the luma table at ``quality``:
    no colour conversion, no chroma. OpenCV's libjpeg gives pixels bit-identical to
    Pillow's saving mode "L" (tests/test_ela.py) without Pillow's buffer copies.
    """
    ok, encoded = cv2.imencode(".jpg", luma, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - libjpeg does not refuse an 8-bit 2-D array
        raise RuntimeError("JPEG re-encode failed")
    return cv2.absdiff(luma, cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE))


def _block_means(values: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Mean of a uint8 map over the 16x16 blocks starting at rows ``ys`` x columns ``xs``
    (exact: block sums from the integral image, one pass over the pixels, no copies)."""
    total = cv2.integral(values, sdepth=cv2.CV_32S)
    y0, y1, x0, x1 = ys[:, None], ys[:, None] + BLOCK, xs[None, :], xs[None, :] + BLOCK
    sums = total[y1, x1] - total[y0, x1] - total[y1, x0] + total[y0, x0]
    return sums.astype(np.float32) * np.float32(1.0 / (BLOCK * BLOCK))


class Sampler:
    """The aligned and shifted luma of a plan, and per-quality block errors from them.

    Block maps are on the *image's* 16x16 block grid (``h // 16`` x ``w // 16``);
    ``sampled`` marks the blocks that were analysed (all of them when whole).
    """

    def __init__(self, luma: np.ndarray, layout: Plan):
        self.layout = layout
        h, w = luma.shape
        self.rows, self.cols = h // BLOCK, w // BLOCK
        self.sampled = np.ones((self.rows, self.cols), bool)
        if layout.whole:
            self.aligned = luma
            # The content moves SHIFT pixels down/right (edge-padded): the encoder's grid
            # then cuts it half a block away from where the file's grid did.
            self.shifted = cv2.copyMakeBorder(luma, SHIFT, SHIFT, SHIFT, SHIFT, cv2.BORDER_REPLICATE)
            # Block starts in the aligned and shifted pictures.
            self._ya, self._xa = np.arange(self.rows) * BLOCK, np.arange(self.cols) * BLOCK
            self._ys, self._xs = self._ya + SHIFT, self._xa + SHIFT
            return
        self._build_mosaics(luma)

    def _build_mosaics(self, luma: np.ndarray) -> None:
        th, tw = self.layout.tile
        n = len(self.layout.origins)
        gc = math.ceil(math.sqrt(n))
        gr = math.ceil(n / gc)
        sh, sw = th + 2 * SHIFT, tw + 2 * SHIFT
        aligned = np.zeros((gr * th, gc * tw), np.uint8)
        shifted = np.zeros((gr * sh, gc * sw), np.uint8)
        by, bx = th // BLOCK, tw // BLOCK
        mosaic_blocks = np.arange(gr * by * gc * bx).reshape(gr * by, gc * bx)
        image_blocks = np.arange(self.rows * self.cols).reshape(self.rows, self.cols)
        src, dst = [], []
        for k, (y, x) in enumerate(self.layout.origins):
            i, j = divmod(k, gc)
            aligned[i * th : (i + 1) * th, j * tw : (j + 1) * tw] = luma[y : y + th, x : x + tw]
            # Shifted tiles are 2 * SHIFT pixels larger and start at multiples of 8 in
            # their mosaic: the content sits SHIFT pixels off the grid, as in the shifted
            # whole image.
            source = luma[y - SHIFT : y + th + SHIFT, x - SHIFT : x + tw + SHIFT]
            shifted[i * sh : (i + 1) * sh, j * sw : (j + 1) * sw] = source
            src.append(mosaic_blocks[i * by : (i + 1) * by, j * bx : (j + 1) * bx].ravel())
            dst.append(image_blocks[y // BLOCK : y // BLOCK + by, x // BLOCK : x // BLOCK + bx].ravel())
        self.grid = (gr, gc)
        self.aligned, self.shifted = aligned, shifted
        # Block starts in the mosaics, in the same order: the shifted mosaic's blocks sit
        # SHIFT pixels into each (larger) tile.
        self._ya, self._xa = np.arange(gr * by) * BLOCK, np.arange(gc * bx) * BLOCK
        self._ys = (np.arange(gr)[:, None] * sh + SHIFT + np.arange(by)[None, :] * BLOCK).ravel()
        self._xs = (np.arange(gc)[:, None] * sw + SHIFT + np.arange(bx)[None, :] * BLOCK).ravel()
        self._src, self._dst = np.concatenate(src), np.concatenate(dst)
        self.sampled = np.zeros((self.rows, self.cols), bool)
        self.sampled.flat[self._dst] = True

    def _to_image(self, values: np.ndarray, shifted: bool = False) -> np.ndarray:
        """Block means of a per-pixel map of the aligned (or shifted) picture, on the
        image's block grid."""
        means = _block_means(values, *((self._ys, self._xs) if shifted else (self._ya, self._xa)))
        if self.layout.whole:
            return means
        image = np.zeros((self.rows, self.cols), np.float32)
        image.flat[self._dst] = means.flat[self._src]
        return image

    def clipped_share(self) -> np.ndarray:
        """Share of each block's pixels at luma 0 or 255."""
        clipped = (self.aligned == 0) | (self.aligned == 255)
        return self._to_image(clipped.view(np.uint8))

    def block_errors(self, quality: int) -> tuple[np.ndarray, np.ndarray]:
        """(aligned, shifted) mean block errors at ``quality`` (0 where unsampled)."""
        err_a = resave_error(self.aligned, quality)
        err_s = resave_error(self.shifted, quality)
        return self._to_image(err_a), self._to_image(err_s, shifted=True)


def probe_quality(luma: np.ndarray, allowed: tuple[int, ...]) -> int | None:
    """The allowed quality at which the image's blocks lose least on their own grid,
    relative to the shifted copy: where an earlier compression's quantiser is (nearly)
    reproduced (the "JPEG ghost"), on a few evenly spaced tiles (``PROBE_PIXELS``).

    ``None`` when no choice is needed (``MAX_QUALITIES`` or fewer allowed) or the probe
    has too few informative blocks.
    """
    if len(allowed) <= MAX_QUALITIES:
        return None
    h, w = luma.shape
    sampler = Sampler(luma, plan(h, w, 1, PROBE_PIXELS))
    errors = {q: sampler.block_errors(q) for q in allowed}
    usable = sampler.sampled & (sampler.clipped_share() <= MAX_CLIPPED_SHARE)
    for _, shifted in errors.values():
        usable &= shifted > MIN_BLOCK_ERROR
    if usable.sum() < 10:
        return None
    typical = {q: float(np.median(np.log((a[usable] + 1.0) / (s[usable] + 1.0)))) for q, (a, s) in errors.items()}
    return min(typical, key=typical.get)


# --- statistics ---------------------------------------------------------------------------


def _robust_z(values: np.ndarray, mask: np.ndarray, floor: float) -> np.ndarray:
    x = values[mask]
    median = float(np.median(x))
    spread = max(float(np.median(np.abs(x - median))) * 1.4826, floor)
    return (values - median) / spread


def _detrend(ratio: np.ndarray, texture: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``ratio`` minus a Theil-Sen line of it against ``texture`` over ``mask``.

    Theil-Sen (median of pairwise slopes, on up to ``THEIL_SEN_BLOCKS`` evenly spaced
    blocks) because a pasted region whose texture differs from the host's is a cluster of
    leverage points that would tilt a least-squares line towards itself and hide.
    """
    x, y = texture[mask], ratio[mask]
    pick = np.linspace(0, x.size - 1, min(x.size, THEIL_SEN_BLOCKS)).astype(int)
    dx = x[pick][:, None] - x[pick][None, :]
    dy = y[pick][:, None] - y[pick][None, :]
    usable = dx > 1e-3  # each pair once, and not two blocks of the same texture
    slope = float(np.median(dy[usable] / dx[usable])) if usable.sum() >= 10 else 0.0
    intercept = float(np.median(y - slope * x))
    return ratio - (intercept + slope * texture)


def _fill(grid: np.ndarray, known: np.ndarray, size: int) -> np.ndarray:
    """``grid`` where ``known``; elsewhere the mean of known blocks in a size x size window
    (0 where there are none)."""
    weight = known.astype(np.float32)
    num = cv2.blur(np.where(known, grid, 0.0).astype(np.float32), (size, size), borderType=cv2.BORDER_REPLICATE)
    den = cv2.blur(weight, (size, size), borderType=cv2.BORDER_REPLICATE)
    return np.where(known, grid, np.where(den > 1e-6, num / np.maximum(den, 1e-6), 0.0)).astype(np.float32)


def standardised(ratio: np.ndarray, informative: np.ndarray) -> np.ndarray:
    """Robust z over informative blocks, smoothed 3x3 (over informative neighbours) and
    standardised again; 0 on uninformative blocks."""
    z = np.clip(_robust_z(ratio, informative, 0.05), -5.0, 5.0)
    weight = cv2.blur(informative.astype(np.float32), (3, 3), borderType=cv2.BORDER_REPLICATE)
    total = cv2.blur(np.where(informative, z, 0.0).astype(np.float32), (3, 3), borderType=cv2.BORDER_REPLICATE)
    # A block with fewer than 3 informative blocks around it (itself included) is not part
    # of a region: 0.
    smooth = np.where(weight > 0.3, total / np.maximum(weight, 1e-6), 0.0)
    # Clipped: beyond ~10 a larger z means a tiny spread, not more evidence.
    zs = np.clip(_robust_z(smooth, informative, 0.02), -10.0, 10.0)
    zs[~informative] = 0.0
    return zs


@dataclass(frozen=True)
class Region:
    """The strongest departure at one quality."""

    raw: float  #: evidence: mean z of anomalous blocks x min(area / 10%, 1), low side halved
    area: float  #: anomalous share of the analysed blocks
    strength: float  #: mean z of the anomalous blocks
    side: str  #: "higher" (changes more than the rest) or "lower"


def strongest_region(z: np.ndarray, analysed: int) -> Region:
    """The stronger of the high and (half-weighted) low departures in a z map."""
    sides = []
    for side, values, weight in (("higher", z, 1.0), ("lower", -z, LOW_SIDE_WEIGHT)):
        anomalous = values > Z_ANOMALOUS
        area = float(anomalous.sum()) / max(analysed, 1)
        strength = float(values[anomalous].mean()) if anomalous.any() else 0.0
        # A few stray blocks do not flag an image; a region of ~10% or more does.
        sides.append(Region(weight * strength * min(area / 0.10, 1.0), area, strength, side))
    return max(sides, key=lambda r: r.raw)


# --- the detector -------------------------------------------------------------------------


@register
class ElaDetector(Detector):
    name = "ela"
    version = "2.0.0"
    media_kinds = frozenset({MediaKind.IMAGE})
    pixels = "luma"

    def analyze_one(self, item: MediaItem) -> DetectorResult:
        luma = item.luma
        h, w = luma.shape
        if min(h, w) < MIN_SIDE:
            return DetectorResult.abstain(f"image {w}x{h} is smaller than {MIN_SIDE}px: too few blocks for ELA")
        own = _own_quality(item)
        details: dict = {
            "estimated_quality": own.quality if own else None,
            "standard_tables": own.standard if own else None,
        }
        allowed = resave_qualities(own)
        luma = np.ascontiguousarray(luma)
        ghost = probe_quality(luma, allowed)
        qualities = chosen_qualities(allowed, ghost)
        if not qualities:
            details["reason"] = (
                f"last saved at JPEG quality ~{own.quality}: no re-save quality is at least "
                f"{MIN_STEP_RATIO:g}x coarser, and a save that coarse erases the history ELA reads"
            )
            return DetectorResult(score=None, details=details)

        layout = plan(h, w, len(qualities))
        sampler = Sampler(luma, layout)
        errors = {q: sampler.block_errors(q) for q in qualities}
        # Flat blocks carry no information at any quality, nor do blocks with clipped
        # pixels; one set for all qualities.
        informative = sampler.sampled & (sampler.clipped_share() <= MAX_CLIPPED_SHARE)
        for _, shifted in errors.values():
            informative &= shifted > MIN_BLOCK_ERROR
        analysed = int(sampler.sampled.sum())
        details.update(
            qualities=list(qualities),
            allowed_qualities=list(allowed),
            probed_quality=ghost,
            mode="whole image" if layout.whole else f"{len(layout.origins)} tiles of {TILE}px",
            analysed_share=round(min(1.0, layout.analysed_pixels / (h * w)), 4),
            informative_share=round(float(informative.sum()) / max(analysed, 1), 4),
        )
        if informative.sum() < max(MIN_INFORMATIVE_BLOCKS, MIN_INFORMATIVE_SHARE * analysed):
            details["reason"] = (
                "too few textured, unclipped blocks: flat or clipped areas change too little, or too "
                "arbitrarily, under re-compression for ELA to compare"
            )
            return DetectorResult(score=None, details=details)

        regions, tests = {}, {}
        for q, (aligned, shifted) in errors.items():
            ratio = np.log((aligned + 1.0) / (shifted + 1.0))
            tests[q] = standardised(_detrend(ratio, np.log(shifted + 1.0), informative), informative)
            regions[q] = strongest_region(tests[q], analysed)
        q_best = max(regions, key=lambda q: regions[q].raw)
        best = regions[q_best]
        score = float(1.0 / (1.0 + math.exp(-(best.raw - RAW_AT_HALF) / RAW_WIDTH)))

        # The map: the mean of the detrended test and the plain standardised ratio (see the
        # module docstring), on the side of the evidence; 0.5 at Z_HEAT.
        aligned, shifted = errors[q_best]
        plain = standardised(np.log((aligned + 1.0) / (shifted + 1.0)), informative)
        z = 0.5 * (tests[q_best] + plain)
        heat_blocks = np.clip((z if best.side == "higher" else -z) / (2 * Z_HEAT), 0.0, 1.0)
        heat = _heatmap(heat_blocks, informative, sampler.sampled, layout)
        details.update(
            raw_evidence=round(best.raw, 3),
            evidence_per_quality={str(q): round(r.raw, 3) for q, r in regions.items()},
            best_quality=q_best,
            anomalous_side=best.side,
            anomalous_area=round(best.area, 4),
            anomaly_strength=round(best.strength, 3),
            block=BLOCK,
        )
        caption = (
            f"ELA at quality {q_best}: blocks whose aligned/shifted re-save error ratio departs from the "
            f"image's typical ratio ({'whole image' if layout.whole else 'sampled tiles, interpolated between'})"
        )
        return DetectorResult(
            score=score,
            findings=_findings(score, best, q_best),
            details=details,
            evidence=(Evidence.blocks("heatmap", heat, BLOCK, (h, w), caption=caption),),
        )


def _own_quality(item: MediaItem) -> QualityEstimate | None:
    """The estimated last JPEG quality, or None (not a JPEG)."""
    if item.media_type.format != "jpeg" or item.image is None:
        return None
    return estimate_quality(getattr(item.image, "quantization", None))


def _findings(score: float, best: Region, quality: int) -> tuple[Finding, ...]:
    if score < 0.5:
        return ()
    how = "more" if best.side == "higher" else "less"
    return (
        Finding(
            code="ela_inconsistent_region",
            message=(
                f"blocks covering {best.area:.0%} of the analysed image change {how} under re-compression at "
                f"quality {quality}, relative to the same content off the JPEG grid, than the rest of the image "
                f"({best.strength:.1f} robust SDs): a sign of a region with a different compression history"
            ),
            score=score,
        ),
    )


def _heatmap(blocks: np.ndarray, informative: np.ndarray, sampled: np.ndarray, layout: Plan) -> np.ndarray:
    """Block heat in [0, 1], one value per 16x16 block.

    Blocks ELA cannot read (flat or clipped) take the mean of the informative blocks
    around them (5x5), so a pasted region with a patch of sky is not a hole in the map;
    in a tile-sampled image the unsampled blocks are then interpolated the same way over
    about one sampling period. Averages of values in [0, 1] stay in [0, 1].
    """
    grid = _fill(blocks.astype(np.float32), informative, 5)
    return grid if layout.whole else _fill(grid, sampled, 2 * layout.stride_blocks + 1)
