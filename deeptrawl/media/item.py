"""What a detector receives: one object's bytes, its identified type, and decoded pixels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from deeptrawl.media.sniff import MediaType


@dataclass(frozen=True)
class MediaInfo:
    """Facts read from headers/containers. ``None`` where not applicable."""

    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    codec: str | None = None
    #: Pillow mode of the stored image ("RGB", "L", "I;16", "CMYK", ...), before conversion.
    mode: str | None = None
    frames: int | None = None
    sample_rate: int | None = None
    channels: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class MediaItem:
    """One object ready for detectors.

    ``image`` holds the decoded picture for image kinds (the original, with metadata, as
    Pillow opened it); ``rgb`` is its pixels as an HxWx3 uint8 array, made once and shared
    by every detector.
    """

    uri: str
    data: bytes
    media_type: MediaType
    info: MediaInfo
    image: Image.Image | None = None
    _rgb: np.ndarray | None = field(default=None, repr=False)

    @property
    def rgb(self) -> np.ndarray:
        if self.image is None:
            raise TypeError(f"{self.uri} is {self.media_type.kind.value}, not an image")
        if self._rgb is None:
            self._rgb = np.asarray(to_rgb(self.image))
        return self._rgb


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (16-bit and float images are rescaled, not clipped)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) * (255.0 / (hi - lo))
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite on white: transparent pixels have arbitrary colour values otherwise.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
