"""What a detector receives: one object's bytes, its identified type, and decoded pixels."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import cv2
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
    Pillow opened it). Detectors read its pixels through ``rgb`` (HxWx3 uint8) or ``luma``
    (HxW uint8), each made once and shared by every detector.

    ``luma_only``: the JPEG was decoded without its colour planes, because no detector of
    the set reads colour (``Detector.pixels``); ``image`` then holds the Y plane, and
    ``rgb`` decodes the file again in colour if anything asks for it after all.
    """

    uri: str
    data: bytes
    media_type: MediaType
    info: MediaInfo
    image: Image.Image | None = None
    luma_only: bool = False
    _rgb: np.ndarray | None = field(default=None, repr=False)
    _luma: np.ndarray | None = field(default=None, repr=False)

    @property
    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            image = self._image()
            if self.luma_only:
                image = Image.open(io.BytesIO(self.data))
            self._rgb = np.asarray(to_rgb(image))
        return self._rgb

    @property
    def luma(self) -> np.ndarray:
        """Brightness, HxW uint8. For a YCbCr or greyscale JPEG it is the file's own Y plane
        as libjpeg decodes it, never a round trip through RGB (which rounds and clips), so
        it keeps the exact traces of the file's quantisation that error-level analysis
        reads, whichever other detectors ran. Otherwise the BT.601 luma of ``rgb``."""
        if self._luma is None:
            image = self._image()
            if self.luma_only:
                self._luma = np.asarray(image)
            elif self.media_type.format == "jpeg" and can_decode_luma_only(image):
                self._luma = np.asarray(decode_luma(self.data))
            else:
                self._luma = cv2.cvtColor(np.ascontiguousarray(self.rgb), cv2.COLOR_RGB2GRAY)
        return self._luma

    def _image(self) -> Image.Image:
        if self.image is None:
            raise TypeError(f"{self.uri} is {self.media_type.kind.value}, not an image")
        return self.image


def can_decode_luma_only(image: Image.Image) -> bool:
    """libjpeg hands out the Y plane as is for YCbCr ("RGB" in Pillow) and greyscale JPEGs."""
    return image.mode in ("RGB", "L")


def decode_luma(data: bytes) -> Image.Image:
    """A JPEG decoded to its Y plane only: libjpeg skips the chroma planes' work."""
    image = Image.open(io.BytesIO(data))
    image.draft("L", image.size)
    image.load()
    return image


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
