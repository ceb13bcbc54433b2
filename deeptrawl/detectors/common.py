"""Small array helpers shared by the pixel-forensics detectors."""

from __future__ import annotations

import numpy as np
from PIL import Image

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """HxW float32 luminance (ITU-R BT.601, the weights JPEG uses) of an HxWx3 uint8 image."""
    return rgb.astype(np.float32) @ LUMA_WEIGHTS


def block_mean(values: np.ndarray, block: int) -> np.ndarray:
    """Mean over non-overlapping ``block`` x ``block`` tiles (edges that do not fill a tile are dropped)."""
    h, w = values.shape[0] // block * block, values.shape[1] // block * block
    v = values[:h, :w]
    return v.reshape(h // block, block, w // block, block).mean(axis=(1, 3))


def robust_z(values: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """(x - median) / (1.4826 * MAD), with the spread floored to avoid dividing by ~0."""
    median = float(np.median(values))
    spread = max(float(np.median(np.abs(values - median))) * 1.4826, floor)
    return (values - median) / spread


def upsample_map(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Stretch a coarse (per-block) map to ``shape`` (H, W) for evidence overlays."""
    h, w = shape
    image = Image.fromarray(np.asarray(small, dtype=np.float32), mode="F")
    return np.asarray(image.resize((w, h), Image.NEAREST), dtype=np.float32)


def working_resolution(rgb: np.ndarray, max_pixels: int) -> tuple[np.ndarray, float]:
    """Downscale (area filter) so the image has at most ``max_pixels``; returns (image, scale).

    Only for methods whose evidence survives resampling (noise level, spectra at low
    frequencies, keypoints); never for methods that read the JPEG 8x8 grid.
    """
    h, w = rgb.shape[:2]
    if h * w <= max_pixels:
        return rgb, 1.0
    scale = (max_pixels / (h * w)) ** 0.5
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BOX)), scale
