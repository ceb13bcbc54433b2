"""Turn detector evidence into pictures a person can look at (PNG bytes)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from deeptrawl.detectors.base import Evidence

#: Longest side of stored evidence pictures: enough to see a region, small to store.
MAX_SIDE = 1024

# Anchor colours of a perceptually ordered dark->bright map (black, purple, red, yellow).
_ANCHORS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32)


def colormap(values: np.ndarray) -> np.ndarray:
    """Map [0, 1] floats to HxWx3 uint8 colours."""
    v = np.clip(values, 0.0, 1.0) * (len(_ANCHORS) - 1)
    lo = np.floor(v).astype(int)
    hi = np.minimum(lo + 1, len(_ANCHORS) - 1)
    t = (v - lo)[..., None]
    return (_ANCHORS[lo] * (1 - t) + _ANCHORS[hi] * t).astype(np.uint8)


def overlay(rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.65) -> np.ndarray:
    """Heatmap over a dimmed grey copy of the image; strong evidence is opaque."""
    grey = rgb.astype(np.float32).mean(axis=2, keepdims=True) * 0.6
    weight = (np.clip(heat, 0.0, 1.0) * alpha)[..., None]
    return (grey * (1 - weight) + colormap(heat).astype(np.float32) * weight).astype(np.uint8)


def render_png(evidence: Evidence, rgb: np.ndarray | None) -> bytes:
    if evidence.kind == "heatmap":
        picture = overlay(rgb, evidence.array) if rgb is not None else colormap(evidence.array)
    else:
        picture = evidence.array
    image = Image.fromarray(picture)
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    buf = io.BytesIO()
    image.save(buf, "PNG", optimize=False)
    return buf.getvalue()
