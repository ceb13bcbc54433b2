"""The life of an upload: what happens to a picture between its maker and an archive.

Every corpus picture, real or fake, goes through ``upload`` with the same random
distribution, so that format, compression and size never tell the label: a detector
must find the manipulation, not the file type.

1. Crop: each side keeps a uniform 60-100% of its length. When the picture has a partial
   mask (a splice, a clone, a swapped face) the window is placed so that it keeps at
   least half of the manipulated pixels where it can (position only: the size draw is the
   same as for real pictures).
2. Resize: 40% keep their size (many uploads do); the rest are scaled by a uniform
   0.5-1.0 with OpenCV's area, bilinear or bicubic filter, never below ``MIN_SIDE``
   pixels on the short side. A downscale weakens or erases resampling traces, as it does
   in the wild; ``scale`` in the manifest says which pictures were resized.
3. Encode: JPEG at a uniform quality 50-100 (70%), PNG (15%) or lossy WebP at quality
   70-100 (15%).

The mask is cropped and resized with the pixels so it stays aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from deeptrawl.samples import media

MIN_KEEP = 0.6
KEEP_SIZE_SHARE = 0.4
MIN_SCALE = 0.5
MIN_SIDE = 64
INTERPOLATIONS = (cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC)
#: (format, share, quality range or None)
FORMATS = (("jpeg", 0.70, (50, 100)), ("png", 0.15, None), ("webp", 0.15, (70, 100)))
#: Resolution buckets by megapixels: (upper bound, name); the last is open-ended.
#: The corpus's pictures are at most 384x384 before the upload (0.15 MP, see
#: ``deeptrawl.corpus.build.MAX_SIDE``); these bounds split a default build in near thirds.
RESOLUTIONS = ((0.02, "<0.02MP"), (0.06, "0.02-0.06MP"), (float("inf"), ">0.06MP"))
_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_EXTENSION = {"jpeg": "jpg", "png": "png", "webp": "webp"}


@dataclass(frozen=True, kw_only=True)
class Upload:
    data: bytes
    extension: str            # "jpg", "png" or "webp"
    compression: str          # "png", "webp", "jpeg_hi" (q >= 90), "jpeg_mid" (70-89), "jpeg_lo" (< 70)
    quality: int | None       # JPEG or WebP quality; None for PNG
    resolution: str           # a RESOLUTIONS bucket
    scale: float              # resize factor (1.0: not resized)
    width: int
    height: int
    mask: np.ndarray | None   # the input mask, cropped and resized like the pixels


def upload(rgb: np.ndarray, rng: np.random.Generator, mask: np.ndarray | None = None) -> Upload:
    """Crop, resize and encode ``rgb`` (HxWx3 uint8) as an upload would; ``mask`` follows."""
    rgb, mask = _crop(rgb, mask, rng)
    rgb, mask, scale = _resize(rgb, mask, rng)
    fmt, quality = _format(rng)
    params = {} if quality is None else {"quality": quality}
    data = media.encode(np.ascontiguousarray(rgb), _PIL_FORMAT[fmt], **params)
    h, w = rgb.shape[:2]
    return Upload(data=data, extension=_EXTENSION[fmt], compression=compression_bucket(fmt, quality), quality=quality,
                  resolution=resolution_bucket(w, h), scale=scale, width=w, height=h, mask=mask)  # fmt: skip


def compression_bucket(fmt: str, quality: int | None) -> str:
    if fmt != "jpeg":
        return fmt
    return "jpeg_hi" if quality >= 90 else "jpeg_mid" if quality >= 70 else "jpeg_lo"


def resolution_bucket(width: int, height: int) -> str:
    megapixels = width * height / 1e6
    return next(name for bound, name in RESOLUTIONS if megapixels < bound)


def _crop(rgb: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator):
    h, w = rgb.shape[:2]
    ch, cw = max(1, int(h * rng.uniform(MIN_KEEP, 1.0))), max(1, int(w * rng.uniform(MIN_KEEP, 1.0)))
    partial = mask is not None and not mask.all()
    total = int(mask.sum()) if partial else 0
    best = None
    for _ in range(8 if partial else 1):
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        kept = int(mask[y : y + ch, x : x + cw].sum()) if partial else 0
        if best is None or kept > best[0]:
            best = (kept, y, x)
        if not partial or kept >= total / 2:
            break
    _, y, x = best
    window = (slice(y, y + ch), slice(x, x + cw))
    return rgb[window], None if mask is None else mask[window]


def _resize(rgb: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator):
    h, w = rgb.shape[:2]
    scale = 1.0 if rng.random() < KEEP_SIZE_SHARE else float(rng.uniform(MIN_SCALE, 1.0))
    interpolation = INTERPOLATIONS[int(rng.integers(len(INTERPOLATIONS)))]
    scale = min(1.0, max(scale, MIN_SIDE / min(h, w)))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == (w, h):
        return rgb, mask, 1.0
    rgb = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=interpolation)
    if mask is not None:
        mask = cv2.resize(mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA) >= 128
    return rgb, mask, round(scale, 4)


def _format(rng: np.random.Generator) -> tuple[str, int | None]:
    fmt, _, qualities = FORMATS[int(rng.choice(len(FORMATS), p=[share for _, share, _ in FORMATS]))]
    return fmt, None if qualities is None else int(rng.integers(qualities[0], qualities[1] + 1))
