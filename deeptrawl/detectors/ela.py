"""Error-level analysis (ELA), calibrated against the image's own content and quality.

Classic ELA re-saves an image as JPEG and looks for regions that change more than the
rest. Taken literally it mostly maps texture (edges re-quantise worse than sky), and it
lights up clean photos re-saved just under their own quality. This version keeps the
idea but asks a sharper question per 16x16 block and per re-save quality ``q``:

    r = log((A + 1) / (B + 1))

``A`` is the block's mean error (|difference| summed over R, G, B) when the image is
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

The test, per quality: ``r`` minus the image's own robust (Theil-Sen) line of ``r``
against texture ``log(B + 1)``, standardised robustly over the informative blocks,
smoothed over 3x3 blocks (a splice is a region, noise is not) and standardised again.
A region departing on the high side (changes *more* than the rest), or at half weight on
the low side (changes *less*: e.g. pasted from a more heavily compressed JPEG), is
evidence: mean z of the blocks above 2.5, times their share of the analysed blocks
(saturating at 10%). The score is a logistic of the strongest such region over the
qualities. The heatmap shows the plain standardised ``r`` (no texture line) at that
quality and on that side: on seeded splices the line partly absorbs a pasted region
whose texture differs from the host's, so the plain map covers the region better
(IoU >= 0.3 on 85% vs 79% of 150 corpus splices) while the detrended test separates
better (more splices flagged at the same false-alarm rate on re-compressed, resized,
noisy and grey photos). 0.5 in the map means z = 2.5.

Which blocks count: flat blocks (shifted error under 2 levels) and blocks with more
than 3% of pixels clipped at 0 or 255 are skipped: the decoder clamps clipped pixels,
which knocks their coefficients off any lattice, so blown highlights (a cat's eye) and
crushed shadows look "fresh". In the heatmap they take the mean of the informative blocks
around them (5x5). Under 15% informative blocks (a noisy night sky), ELA abstains.

Which qualities: the file's own JPEG quality is estimated from its quantisation tables
(``estimate_quality``: the IJG scaling of the standard tables; camera and editor tables
are matched approximately by their median step). Re-saving a clean JPEG at or just
below its own quality re-quantises content-dependently (coefficient ``n*S`` moves to the
nearest multiple of a step only a little larger than ``S``), which is what made plain
ELA flag clean photos. So only qualities 50..90 (step 5) whose quantiser steps are at
least twice the file's own (``MIN_STEP_RATIO``) are used: quality 95 or better -> 50..90,
90 -> 50..80, 85 -> 50..70, 80 -> 50..60, 75 -> 50. PNG and other lossless files have no
last quality, so all nine are used. A JPEG last saved at quality 70 or lower leaves no
usable quality and ELA abstains: a save that coarse erases the traces ELA reads.

What is analysed (cost): each quality costs two JPEG round trips (OpenCV's libjpeg,
bit-identical to Pillow's). Images with pixels x qualities up to
``PIXEL_QUALITY_BUDGET`` (10 MP: 1.1 MP at nine qualities, 1.4 MP at seven) are
analysed whole. Larger ones are never rescaled (that would destroy the 8x8 grid ELA
reads): a stratified sample of 128x128 tiles, evenly spaced in raster order, with
origins on multiples of 16 so the 8x8 luma grid and the 16x16 chroma MCUs line up, is
assembled into one mosaic per quality (plus a mosaic of the same tiles shifted by 4).
Re-encoding a tile in the mosaic gives exactly the pixels that re-encoding the whole
image gives, except a 1-pixel ring at the tile border where the decoder's chroma
upsampling reads the neighbouring tile (checked in tests/test_ela.py); that ring is left
out of the block means. A 12 MP photo last saved at q90 is thus analysed on 12% of its
area (87 tiles, seven qualities) in about 0.16 s on one core (0.18-0.22 s at nine
qualities for q95 or PNG); the heatmap's unsampled blocks are interpolated (normalised
box average of sampled blocks over about one sampling period).

Limits (honest): ELA needs the last save to be finer than the history it looks for, so
a splice last saved at or just above the host's quality (within the 2x step rule) is
invisible, and hosts saved above ~90 leave little to find. Flat or clipped donor
regions carry no information. A donor pasted from a more heavily compressed JPEG is
found less reliably than an uncompressed one. On large images the sample can miss a
small pasted region. Uniformly double-compressed photos (q1 then a finer q2) are still
the hardest clean case (~2-4% flagged in seeded tests). ELA says nothing about fully
synthetic images saved once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import JpegImagePlugin

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
#: The calibration copy is shifted by this many pixels: half an 8x8 block, and even, so
#: chroma subsampling pairs the same pixels.
SHIFT = 4
#: Blocks whose shifted re-save error is below this (summed over R, G, B, per pixel) are
#: flat: too little changes for a ratio to mean anything.
MIN_BLOCK_ERROR = 2.0
#: Blocks with more than this share of pixels clipped at 0 or 255 are skipped.
MAX_CLIPPED_SHARE = 0.03
#: Robust z above which a smoothed block counts as anomalous (heatmap 0.5).
Z_ANOMALOUS = 2.5
#: Weight of a region that changes *less* than the rest.
LOW_SIDE_WEIGHT = 0.5
#: Raw evidence at which the score crosses 0.5, and the logistic's width. Set on seeded
#: data (deeptrawl/samples/corpus_ela.py and re-compressed, resized, noisy photos) so
#: that photos with one uniform history stay below it.
RAW_AT_HALF = 1.75
RAW_WIDTH = 0.35
#: Cost cap: analysed pixels x re-save qualities. Within it the whole image is analysed,
#: beyond it tiles are sampled; 10 MP keeps a 12 MP photo near 0.2 s on one core.
PIXEL_QUALITY_BUDGET = 10_000_000
TILE = 128
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
    for q in range(1, 101):
        if np.array_equal(ijg_table(IJG_LUMA, q), luma) and (
            chroma is None or np.array_equal(ijg_table(IJG_CHROMA, q), chroma)
        ):
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


def plan(h: int, w: int, n_qualities: int) -> Plan:
    """The whole image when the budget allows; otherwise evenly spaced 128px tiles."""
    budget = PIXEL_QUALITY_BUDGET // max(n_qualities, 1)
    # Tile origins on multiples of 16, with SHIFT pixels of margin for the shifted copy.
    cells = [(y, x) for y in range(BLOCK, h - TILE - SHIFT + 1, TILE) for x in range(BLOCK, w - TILE - SHIFT + 1, TILE)]
    if h * w <= budget or not cells:
        return Plan(((0, 0),), (h, w), True, 1)
    fraction = max(1, min(len(cells), budget // (TILE * TILE))) / len(cells)
    # Evenly spaced in raster order: cell k is taken when floor((k + 1) f) steps up; rows
    # whose length is not a multiple of 1/f come out staggered rather than in columns.
    chosen = tuple(c for k, c in enumerate(cells) if math.floor((k + 1) * fraction) > math.floor(k * fraction))
    return Plan(chosen, (TILE, TILE), False, max(1, round((TILE // BLOCK) / math.sqrt(fraction))))


#: OpenCV sampling-factor codes for Pillow's subsampling 0 (4:4:4), 1 (4:2:2), 2 (4:2:0).
_SAMPLING = {
    0: cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    1: cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    2: cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
}


def resave_error(bgr: np.ndarray, quality: int, subsampling: int = 2) -> np.ndarray:
    """Per-pixel |difference| summed over channels (uint16) after one JPEG round trip.

    OpenCV's libjpeg at the same quality and subsampling gives pixels bit-identical to
    Pillow's (tests/test_ela.py) without Pillow's buffer copies; it takes BGR.
    """
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, _SAMPLING[subsampling]]
    ok, encoded = cv2.imencode(".jpg", bgr, params)
    if not ok:  # pragma: no cover - libjpeg does not refuse an 8-bit BGR array
        raise RuntimeError("JPEG re-encode failed")
    d0, d1, d2 = cv2.split(cv2.absdiff(bgr, cv2.imdecode(encoded, cv2.IMREAD_COLOR)))
    return cv2.add(cv2.add(d0, d1, dtype=cv2.CV_16U), d2, dtype=cv2.CV_16U)


def _block_means(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Mean over each 16x16 block (INTER_AREA at an integer factor is the exact mean)."""
    crop = values[: rows * BLOCK, : cols * BLOCK].astype(np.float32)
    return cv2.resize(crop, (cols, rows), interpolation=cv2.INTER_AREA)


class Sampler:
    """The aligned and shifted pixels of a plan, and per-quality block errors from them.

    Block maps are on the *image's* 16x16 block grid (``h // 16`` x ``w // 16``);
    ``sampled`` marks the blocks that were analysed (all of them when whole).
    """

    def __init__(self, rgb: np.ndarray, layout: Plan):
        self.layout = layout
        h, w = rgb.shape[:2]
        self.rows, self.cols = h // BLOCK, w // BLOCK
        self.sampled = np.ones((self.rows, self.cols), bool)
        if layout.whole:
            self.aligned = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            # The content moves SHIFT pixels down/right (edge-padded): the encoder's grid
            # then cuts it half a block away from where the file's grid did.
            self.shifted = cv2.copyMakeBorder(self.aligned, SHIFT, SHIFT, SHIFT, SHIFT, cv2.BORDER_REPLICATE)
            return
        self._build_mosaics(rgb)

    def _build_mosaics(self, rgb: np.ndarray) -> None:
        th, tw = self.layout.tile
        n = len(self.layout.origins)
        gc = math.ceil(math.sqrt(n))
        gr = math.ceil(n / gc)
        sh, sw = th + 2 * SHIFT, tw + 2 * SHIFT
        aligned = np.zeros((gr * th, gc * tw, 3), np.uint8)
        shifted = np.zeros((gr * sh, gc * sw, 3), np.uint8)
        by, bx = th // BLOCK, tw // BLOCK
        mosaic_blocks = np.arange(gr * by * gc * bx).reshape(gr * by, gc * bx)
        image_blocks = np.arange(self.rows * self.cols).reshape(self.rows, self.cols)
        src, dst = [], []
        for k, (y, x) in enumerate(self.layout.origins):
            i, j = divmod(k, gc)
            aligned[i * th : (i + 1) * th, j * tw : (j + 1) * tw] = rgb[y : y + th, x : x + tw]
            # Shifted tiles are 8 pixels larger and start at multiples of 8 in their mosaic:
            # the content sits 4 pixels off the luma grid and off the chroma grid, and
            # chroma subsampling still pairs the same (even, odd) pixels.
            source = rgb[y - SHIFT : y + th + SHIFT, x - SHIFT : x + tw + SHIFT]
            shifted[i * sh : (i + 1) * sh, j * sw : (j + 1) * sw] = source
            src.append(mosaic_blocks[i * by : (i + 1) * by, j * bx : (j + 1) * bx].ravel())
            dst.append(image_blocks[y // BLOCK : y // BLOCK + by, x // BLOCK : x // BLOCK + bx].ravel())
        self.grid = (gr, gc)
        self.aligned = cv2.cvtColor(aligned, cv2.COLOR_RGB2BGR)
        self.shifted = cv2.cvtColor(shifted, cv2.COLOR_RGB2BGR)
        self._src, self._dst = np.concatenate(src), np.concatenate(dst)
        self.sampled = np.zeros((self.rows, self.cols), bool)
        self.sampled.flat[self._dst] = True
        # The 1-pixel ring at each tile border differs from a whole-image re-save (the
        # decoder upsamples chroma from the neighbouring tile): it is zeroed, and blocks
        # that lose pixels are rescaled so they stay means of the pixels kept.
        kept = self._to_image(self._drop_ring(np.ones(aligned.shape[:2], np.float32)))
        self._ring_scale = np.where(self.sampled, 1.0 / np.maximum(kept, 1e-6), 0.0).astype(np.float32)

    def _drop_ring(self, values: np.ndarray) -> np.ndarray:
        th, tw = self.layout.tile
        values[::th] = 0
        values[th - 1 :: th] = 0
        values[:, ::tw] = 0
        values[:, tw - 1 :: tw] = 0
        return values

    def _to_image(self, values: np.ndarray) -> np.ndarray:
        """Block means of a per-pixel (aligned-)mosaic map, on the image block grid."""
        if self.layout.whole:
            return _block_means(values, self.rows, self.cols)
        mosaic = _block_means(values, values.shape[0] // BLOCK, values.shape[1] // BLOCK)
        image = np.zeros((self.rows, self.cols), np.float32)
        image.flat[self._dst] = mosaic.flat[self._src]
        return image

    def clipped_share(self) -> np.ndarray:
        """Share of each block's pixels with a channel at 0 or 255."""
        b, g, r = cv2.split(self.aligned)
        clipped = (cv2.min(cv2.min(b, g), r) == 0) | (cv2.max(cv2.max(b, g), r) == 255)
        return self._to_image(clipped.astype(np.uint8))

    def block_errors(self, quality: int, subsampling: int) -> tuple[np.ndarray, np.ndarray]:
        """(aligned, shifted) mean block errors at ``quality`` (0 where unsampled)."""
        err_a = resave_error(self.aligned, quality, subsampling)
        err_s = resave_error(self.shifted, quality, subsampling)
        th, tw = self.layout.tile
        if self.layout.whole:
            return self._to_image(err_a), self._to_image(err_s[SHIFT : SHIFT + th, SHIFT : SHIFT + tw])
        gr, gc = self.grid
        sh, sw = th + 2 * SHIFT, tw + 2 * SHIFT
        err_s = err_s.reshape(gr, sh, gc, sw)[:, SHIFT : SHIFT + th, :, SHIFT : SHIFT + tw].reshape(gr * th, gc * tw)
        a = self._to_image(self._drop_ring(err_a)) * self._ring_scale
        s = self._to_image(self._drop_ring(err_s)) * self._ring_scale
        return a, s


# --- statistics ---------------------------------------------------------------------------


def _robust_z(values: np.ndarray, mask: np.ndarray, floor: float) -> np.ndarray:
    x = values[mask]
    median = float(np.median(x))
    spread = max(float(np.median(np.abs(x - median))) * 1.4826, floor)
    return (values - median) / spread


def _detrend(ratio: np.ndarray, texture: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``ratio`` minus a Theil-Sen line of it against ``texture`` over ``mask``.

    Theil-Sen (median of pairwise slopes, on up to 400 evenly spaced blocks) because a
    pasted region whose texture differs from the host's is a cluster of leverage points
    that would tilt a least-squares line towards itself and hide.
    """
    x, y = texture[mask], ratio[mask]
    pick = np.linspace(0, x.size - 1, min(x.size, 400)).astype(int)
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
    version = "1.1.0"
    media_kinds = frozenset({MediaKind.IMAGE})

    def analyze_one(self, item: MediaItem) -> DetectorResult:
        rgb = item.rgb
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_SIDE:
            return DetectorResult.abstain(f"image {w}x{h} is smaller than {MIN_SIDE}px: too few blocks for ELA")
        own, subsampling = _own_compression(item)
        details: dict = {
            "estimated_quality": own.quality if own else None,
            "standard_tables": own.standard if own else None,
        }
        qualities = resave_qualities(own)
        if not qualities:
            details["reason"] = (
                f"last saved at JPEG quality ~{own.quality}: no re-save quality is at least "
                f"{MIN_STEP_RATIO:g}x coarser, and a save that coarse erases the history ELA reads"
            )
            return DetectorResult(score=None, details=details)

        layout = plan(h, w, len(qualities))
        sampler = Sampler(np.ascontiguousarray(rgb), layout)
        errors = {q: sampler.block_errors(q, subsampling) for q in qualities}
        # Flat blocks carry no information at any quality, nor do blocks with clipped
        # pixels; one set for all qualities.
        informative = sampler.sampled & (sampler.clipped_share() <= MAX_CLIPPED_SHARE)
        for _, shifted in errors.values():
            informative &= shifted > MIN_BLOCK_ERROR
        analysed = int(sampler.sampled.sum())
        details.update(
            qualities=list(qualities),
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

        regions = {}
        for q, (aligned, shifted) in errors.items():
            ratio = np.log((aligned + 1.0) / (shifted + 1.0))
            test = standardised(_detrend(ratio, np.log(shifted + 1.0), informative), informative)
            regions[q] = strongest_region(test, analysed)
        q_best = max(regions, key=lambda q: regions[q].raw)
        best = regions[q_best]
        score = float(1.0 / (1.0 + math.exp(-(best.raw - RAW_AT_HALF) / RAW_WIDTH)))

        aligned, shifted = errors[q_best]
        plain = standardised(np.log((aligned + 1.0) / (shifted + 1.0)), informative)
        heat_blocks = np.clip((plain if best.side == "higher" else -plain) / (2 * Z_ANOMALOUS), 0.0, 1.0)
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


def _own_compression(item: MediaItem) -> tuple[QualityEstimate | None, int]:
    """(estimated last JPEG quality or None, Pillow subsampling code to re-save with)."""
    if item.media_type.format != "jpeg" or item.image is None:
        return None, 2  # 4:2:0, the common default
    sampling = JpegImagePlugin.get_sampling(item.image)
    return estimate_quality(getattr(item.image, "quantization", None)), sampling if sampling in (0, 1, 2) else 2


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
