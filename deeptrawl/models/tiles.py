"""Native-resolution tiles for the spatial CNN, and how their scores make one image score.

Why tiles and not a resize to 224x224: resampling, blending and generator artefacts live
in the highest frequencies, and shrinking a photo to the network's input size erases them
(or adds new ones). The CNN sees up to ``max_per_side``² crops of 224 px at the image's own
resolution, spread evenly; a picture smaller than a tile is mirror-padded.

Why a smooth maximum over tiles: a splice or a face swap touches one region, so one
confident tile should carry the image, but a single noisy tile should not dominate the
way a hard maximum would. ``logsumexp - log(n)`` is the mean for equal logits and tends
to the maximum when one tile stands out.
"""

from __future__ import annotations

import math

import numpy as np

TILE = 224


def positions(height: int, width: int, *, size: int = TILE, max_per_side: int = 2) -> list[tuple[int, int]]:
    """Top-left corners of an evenly spread grid of tiles covering as much as allowed."""

    def axis(length: int) -> list[int]:
        if length <= size:
            return [0]
        n = min(max_per_side, math.ceil(length / size))
        return [round(i * (length - size) / (n - 1)) for i in range(n)] if n > 1 else [(length - size) // 2]

    return [(y, x) for y in axis(height) for x in axis(width)]


def extract(rgb: np.ndarray, corners: list[tuple[int, int]], *, size: int = TILE) -> np.ndarray:
    """The tiles as an N x 3 x size x size uint8 array (NCHW, what the network takes)."""
    h, w = rgb.shape[:2]
    if h < size or w < size:
        rgb = np.pad(rgb, ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
    tiles = np.stack([rgb[y : y + size, x : x + size] for y, x in corners])
    return np.ascontiguousarray(tiles.transpose(0, 3, 1, 2))


def pool_logits(logits: np.ndarray) -> float:
    """Smooth maximum of tile logits (see the module docstring)."""
    logits = np.asarray(logits, dtype=np.float64)
    top = logits.max()
    return float(top + np.log(np.mean(np.exp(logits - top))))


def tile_labels(mask: np.ndarray, corners: list[tuple[int, int]], *, size: int = TILE, min_fraction: float = 0.05) -> np.ndarray:
    """Per-tile training labels from a manipulation mask: 1 where at least ``min_fraction``
    of the tile is manipulated, 0 where none is, -1 (ignore) for a sliver in between."""
    out = []
    for y, x in corners:
        frac = float(mask[y : y + size, x : x + size].mean()) if mask.size else 0.0
        out.append(1 if frac >= min_fraction else (0 if frac == 0 else -1))
    return np.asarray(out, dtype=np.int8)
