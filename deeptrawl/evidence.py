"""Turn detector evidence into pictures a person can look at (PNG bytes)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from deeptrawl.detectors.base import Evidence

#: Longest side of stored evidence pictures: enough to see a region, small to store.
MAX_SIDE = 1024

# Anchor colours of a perceptually ordered dark->bright map (black, purple, red, yellow),
# expanded once into a 256-entry lookup table.
_ANCHORS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32)
_POS = np.linspace(0, len(_ANCHORS) - 1, 256)
_LUT = np.stack([np.interp(_POS, np.arange(len(_ANCHORS)), _ANCHORS[:, c]) for c in range(3)], axis=1).astype(np.uint8)


def colormap(values: np.ndarray) -> np.ndarray:
    """Map [0, 1] floats to HxWx3 uint8 colours."""
    return _LUT[(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)]


def overlay(rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.65) -> np.ndarray:
    """Heatmap over a dimmed grey copy of the image; strong evidence is opaque."""
    grey = rgb.astype(np.float32).mean(axis=2, keepdims=True) * 0.6
    weight = (np.clip(heat, 0.0, 1.0) * alpha)[..., None]
    return (grey * (1 - weight) + colormap(heat).astype(np.float32) * weight).astype(np.uint8)


def _fit(size: tuple[int, int]) -> tuple[int, int]:
    w, h = size
    scale = min(1.0, MAX_SIDE / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def _shrink(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Box-reduce by the integer part of the factor first (cheap), then resize exactly."""
    factor = int(min(image.width / size[0], image.height / size[1]))
    if factor >= 2:
        image = image.reduce(factor)
    return image.resize(size, Image.BILINEAR) if image.size != size else image


class EvidenceRenderer:
    """Renders one object's evidence; the shrunken base picture is made once and shared.

    Everything is shrunk to at most ``MAX_SIDE`` *before* blending: blending a 12 MP
    heatmap and shrinking after cost seconds per image (bench/RESULTS.md).
    """

    def __init__(self, rgb: np.ndarray | None) -> None:
        self._rgb = rgb
        self._base: dict[tuple[int, int], np.ndarray] = {}

    def _base_at(self, size: tuple[int, int]) -> np.ndarray:
        if size not in self._base:
            self._base[size] = np.asarray(_shrink(Image.fromarray(self._rgb), size))
        return self._base[size]

    def png(self, evidence: Evidence) -> bytes:
        if evidence.kind == "heatmap":
            heat = Image.fromarray(np.asarray(evidence.array, dtype=np.float32), mode="F")
            size = _fit(heat.size)
            small = np.asarray(_shrink(heat, size), dtype=np.float32)
            picture = overlay(self._base_at(size), small) if self._rgb is not None else colormap(small)
            image = Image.fromarray(picture)
        else:
            image = Image.fromarray(evidence.array)
            if max(image.size) > MAX_SIDE:
                image = image.resize(_fit(image.size), Image.BILINEAR)
        buf = io.BytesIO()
        # Fast zlib level: evidence is written for every object; time matters more than bytes.
        image.save(buf, "PNG", compress_level=1)
        return buf.getvalue()


def render_png(evidence: Evidence, rgb: np.ndarray | None) -> bytes:
    """One evidence picture (see ``EvidenceRenderer`` to render several for one image)."""
    return EvidenceRenderer(rgb).png(evidence)
