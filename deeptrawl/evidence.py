"""Turn detector evidence into pictures a person can look at (PNG bytes).

Evidence is rendered for every object a scan analyses, so it must cost little next to a
decode. A heatmap overlay is drawn as a *palette* PNG: each pixel is one of
``GREY_LEVELS`` dimmed grey levels of the photo blended with one of ``HEAT_LEVELS``
heat colours, so the picture is one byte per pixel, found by table lookup (no float
blending per pixel) and deflated three times faster than RGB. Everything is shrunk to
at most ``MAX_SIDE`` *before* it is combined: blending a 12 MP heatmap and shrinking
after cost seconds per image (bench/RESULTS.md).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from deeptrawl.detectors.base import Evidence
from deeptrawl.media.item import MediaItem

#: Longest side of stored evidence pictures: enough to see a region, small to store.
MAX_SIDE = 1024
#: Palette of an overlay: grey levels of the background x heat levels (<= 256 in all).
GREY_LEVELS, HEAT_LEVELS = 16, 16
#: Strongest evidence covers the photo to this opacity.
ALPHA = 0.65

# Anchor colours of a perceptually ordered dark->bright map (black, purple, red, yellow),
# expanded once into a 256-entry lookup table.
_ANCHORS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32)
_POS = np.linspace(0, len(_ANCHORS) - 1, 256)
_LUT = np.stack([np.interp(_POS, np.arange(len(_ANCHORS)), _ANCHORS[:, c]) for c in range(3)], axis=1).astype(np.uint8)


def colormap(values: np.ndarray) -> np.ndarray:
    """Map [0, 1] floats to HxWx3 uint8 colours."""
    return _LUT[_levels(values, 256)]


def _levels(values: np.ndarray, n: int) -> np.ndarray:
    """[0, 1] floats -> integer levels 0..n-1 (uint8)."""
    return (np.clip(values, 0.0, 1.0) * (n - 1) + 0.5).astype(np.uint8)


def _overlay_palette() -> np.ndarray:
    """(GREY_LEVELS * HEAT_LEVELS) x 3 colours: a dimmed grey blended with a heat colour,
    index ``grey_level * HEAT_LEVELS + heat_level``."""
    grey = np.linspace(0, 255, GREY_LEVELS, dtype=np.float32)[:, None, None] * 0.6
    heat = np.linspace(0, 1, HEAT_LEVELS, dtype=np.float32)
    colour = colormap(heat).astype(np.float32)[None]
    weight = (heat * ALPHA)[None, :, None]
    return (grey * (1 - weight) + colour * weight + 0.5).astype(np.uint8).reshape(-1, 3)


_OVERLAY_PALETTE = _overlay_palette()


#: Grey value -> the first palette index of its grey level (a table lookup per pixel).
_GREY_INDEX = (np.arange(256) * GREY_LEVELS // 256 * HEAT_LEVELS).astype(np.uint8)


def _overlay_index(grey: np.ndarray, heat: np.ndarray) -> np.ndarray:
    # OpenCV's threshold, saturating scale and table lookup are several times faster than
    # the numpy expressions (clipping alone took 2 ms at 1024x768).
    clipped = cv2.threshold(np.ascontiguousarray(heat, dtype=np.float32), 0.0, 0.0, cv2.THRESH_TOZERO)[1]
    levels = cv2.min(cv2.convertScaleAbs(clipped, alpha=HEAT_LEVELS - 1), HEAT_LEVELS - 1)
    return cv2.add(cv2.LUT(np.ascontiguousarray(grey), _GREY_INDEX), levels)


def _fit(size: tuple[int, int]) -> tuple[int, int]:
    w, h = size
    scale = min(1.0, MAX_SIDE / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def _resize(array: np.ndarray, size: tuple[int, int], smooth: bool) -> np.ndarray:
    """To ``size`` (w, h). Photos are area-averaged (no aliasing); heatmaps are smooth or
    blockwise constant, so bilinear sampling is enough and ten times cheaper."""
    if (array.shape[1], array.shape[0]) == size:
        return array
    if not smooth:
        return cv2.resize(array, size, interpolation=cv2.INTER_LINEAR)
    # Halving first: OpenCV averages 2x2 blocks on a fast path, a 12 MP photo shrinks in
    # a third of the time of one area resize, and the result differs by under a grey level
    # on average.
    while array.shape[1] >= 2 * size[0] and array.shape[0] >= 2 * size[1]:
        array = cv2.resize(array, (array.shape[1] // 2, array.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(array, size, interpolation=cv2.INTER_AREA)


def _heat_at(evidence: Evidence) -> np.ndarray:
    """The heatmap at display size, without ever expanding a block map to full size."""
    heat = np.asarray(evidence.array, dtype=np.float32)
    if evidence.cell == 1:
        return _resize(heat, _fit((heat.shape[1], heat.shape[0])), smooth=False)
    h, w = evidence.size
    fw, fh = _fit((w, h))
    scale = fw / w
    rows, cols = heat.shape
    # The block grid overhangs the image by part of a block: scale the whole grid, then crop.
    covered = (max(fw, round(cols * evidence.cell * scale)), max(fh, round(rows * evidence.cell * scale)))
    return cv2.resize(heat, covered, interpolation=cv2.INTER_NEAREST)[:fh, :fw]


#: zlib's run-length strategy: on these few-colour pictures it is faster than the default
#: and the files come out smaller (measured: 5 vs 7 ms, 7% fewer bytes at 1024x768).
_Z_RLE = 3


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    # Fast zlib level: evidence is written for every object; time matters more than bytes.
    image.save(buf, "PNG", compress_level=1, compress_type=_Z_RLE)
    return buf.getvalue()


class EvidenceRenderer:
    """Renders one object's evidence; the shrunken grey background is made once and shared.

    ``image``: the picture under the heatmaps, as an RGB array or a media item (whose
    ``luma`` is read only if a heatmap is drawn); ``None`` draws heatmaps alone.
    """

    def __init__(self, image: np.ndarray | MediaItem | None) -> None:
        self._image = image
        self._grey: dict[tuple[int, int], np.ndarray] = {}

    def _grey_at(self, size: tuple[int, int]) -> np.ndarray:
        if size not in self._grey:
            image = self._image
            grey = image.luma if isinstance(image, MediaItem) else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
            self._grey[size] = _resize(grey, size, smooth=True)
        return self._grey[size]

    def png(self, evidence: Evidence) -> bytes:
        if evidence.kind == "heatmap":
            small = _heat_at(evidence)
            size = (small.shape[1], small.shape[0])
            if self._image is None:
                image = Image.fromarray(_levels(small, 256), mode="L")
                image.putpalette(_LUT.tobytes())
            else:
                image = Image.fromarray(_overlay_index(self._grey_at(size), small), mode="L")
                image.putpalette(_OVERLAY_PALETTE.tobytes())
            return _png(image)
        picture = np.asarray(evidence.array)
        return _png(Image.fromarray(_resize(picture, _fit((picture.shape[1], picture.shape[0])), smooth=True)))


def render_png(evidence: Evidence, rgb: np.ndarray | None) -> bytes:
    """One evidence picture (see ``EvidenceRenderer`` to render several for one image)."""
    return EvidenceRenderer(rgb).png(evidence)
