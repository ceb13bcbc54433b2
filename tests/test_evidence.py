"""Evidence pictures: block maps, full-size maps and plain pictures render to bounded PNGs."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from deeptrawl.detectors.base import Evidence
from deeptrawl.evidence import MAX_SIDE, EvidenceRenderer


def _decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def _photo(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 255 // w), (y * 255 // h), np.full((h, w), 128)], axis=2).astype(np.uint8)


def test_a_block_map_renders_like_its_full_size_expansion():
    h, w = 1500, 2100  # not multiples of the block: the grid overhangs the image
    grid = np.zeros((-(-h // 16), -(-w // 16)), np.float32)
    grid[20:40, 50:90] = 1.0
    coarse = Evidence.blocks("heatmap", grid, 16, (h, w))
    assert coarse.pixels().shape == (h, w) and coarse.pixels()[20 * 16 + 3, 50 * 16 + 3] == 1.0
    full = Evidence("heatmap", "heatmap", coarse.pixels())
    renderer = EvidenceRenderer(_photo(h, w))
    a, b = (np.asarray(_decoded(renderer.png(e)).convert("RGB")) for e in (coarse, full))
    assert a.shape == b.shape == (round(h * MAX_SIDE / w), MAX_SIDE, 3)
    # The same picture up to the placement of block edges (nearest vs bilinear sampling).
    assert np.mean(np.any(a != b, axis=2)) < 0.02


def test_overlay_is_a_palette_picture_that_shows_the_hot_region():
    h, w = 300, 400
    heat = np.zeros((h, w), np.float32)
    heat[100:200, 100:200] = 1.0
    picture = _decoded(EvidenceRenderer(_photo(h, w)).png(Evidence("heatmap", "heatmap", heat)))
    assert picture.mode == "P" and picture.size == (w, h)
    rgb = np.asarray(picture.convert("RGB")).astype(int)
    hot, cold = rgb[150, 150], rgb[20, 20]
    assert hot[0] > hot[2] + 40  # warm (yellow) where the map is hot
    assert abs(cold[0] - cold[1]) < 10 and abs(cold[1] - cold[2]) < 10  # dimmed grey elsewhere


def test_heatmap_without_a_photo_and_plain_pictures():
    heat = Evidence("heatmap", "heatmap", np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64))
    assert _decoded(EvidenceRenderer(None).png(heat)).size == (64, 64)
    big = Evidence("spectrum", "image", np.zeros((3000, 1500, 3), np.uint8))
    assert _decoded(EvidenceRenderer(None).png(big)).size == (MAX_SIDE // 2, MAX_SIDE)
