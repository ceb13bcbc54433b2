"""Real media and made-up bad files, generated at run time (nothing third-party is committed).

Photos come from scikit-image's bundled data (public-domain or permissively licensed
images that ship inside the package). Manipulations and broken files are made here,
deterministically, so tests and the sample archive have ground truth by construction.
"""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction
from functools import lru_cache

import numpy as np
from PIL import Image

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "camera")


def photo(name: str) -> np.ndarray:
    """A real photograph shipped inside scikit-image, as an HxWx3 (or HxW) uint8 array."""
    try:
        import skimage.data
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("sample media need scikit-image: pip install 'deeptrawl[samples]'") from exc
    return np.asarray(getattr(skimage.data, name)())


@lru_cache(maxsize=None)
def rgb_photo(name: str) -> np.ndarray:
    """``photo(name)`` as a read-only HxWx3 array (grey expanded, alpha dropped), cached.

    Also knows ``"motorcycle"``: the left view of scikit-image's stereo pair.
    """
    if name == "motorcycle":
        import skimage.data

        image = np.asarray(skimage.data.stereo_motorcycle()[0])
    else:
        image = photo(name)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    image = np.ascontiguousarray(image[:, :, :3])
    image.setflags(write=False)
    return image


def encode(array: np.ndarray | Image.Image, fmt: str = "JPEG", **params) -> bytes:
    image = array if isinstance(array, Image.Image) else Image.fromarray(array)
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def splice(background: np.ndarray, donor: np.ndarray, *, seed: int = 0, fraction: float = 1 / 3,
           background_quality: int = 70, final_quality: int = 95) -> tuple[bytes, np.ndarray]:
    """Paste a rectangle of an uncompressed ``donor`` into a JPEG-compressed ``background``
    and save once more: the classic splice with two compression histories.

    Returns the JPEG bytes and the boolean mask of the pasted region.
    """
    rng = np.random.default_rng(seed)
    base = decode(encode(background, quality=background_quality)).copy()
    h, w = base.shape[:2]
    dh, dw = donor.shape[:2]
    ph, pw = min(int(h * fraction), dh), min(int(w * fraction), dw)
    y, x = int(rng.integers(0, h - ph)), int(rng.integers(0, w - pw))
    sy, sx = int(rng.integers(0, max(dh - ph, 1))), int(rng.integers(0, max(dw - pw, 1)))
    base[y : y + ph, x : x + pw] = donor[sy : sy + ph, sx : sx + pw]
    mask = np.zeros((h, w), bool)
    mask[y : y + ph, x : x + pw] = True
    return encode(base, quality=final_quality), mask


def copy_move(image: np.ndarray, *, seed: int = 0, fraction: float = 0.18) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copy a square region of ``image`` to another place in the same image (a clone).

    Returns the edited image and the boolean masks of the source and the target region.
    """
    rng = np.random.default_rng(seed)
    out = image.copy()
    h, w = image.shape[:2]
    side = int(min(h, w) * fraction)
    while True:
        sy, sx, ty, tx = (int(v) for v in rng.integers(0, [h - side, w - side, h - side, w - side]))
        if abs(sy - ty) > side or abs(sx - tx) > side:  # no overlap
            break
    out[ty : ty + side, tx : tx + side] = image[sy : sy + side, sx : sx + side]
    source, target = np.zeros((h, w), bool), np.zeros((h, w), bool)
    source[sy : sy + side, sx : sx + side] = True
    target[ty : ty + side, tx : tx + side] = True
    return out, source, target


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: max(1, int(len(data) * keep))]


def random_bytes(n: int = 4096, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def html_page() -> bytes:
    return b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not found</body></html>\n"


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height``: a decompression-bomb shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def mp4_clip(frames: int = 24, size: tuple[int, int] = (160, 120), fps: int = 12, seed: int = 0) -> bytes:
    """A short H.264 MP4 panning across a real photo."""
    import av

    width, height = size
    src = photo("astronaut")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for i in range(frames):
            y, x = 40 + i * 4, 60 + i * 3
            frame = np.ascontiguousarray(src[y : y + height, x : x + width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def wav_tone(seconds: float = 0.5, rate: int = 16000) -> bytes:
    import wave

    t = np.arange(int(seconds * rate)) / rate
    samples = (np.sin(2 * np.pi * 440 * t) * 12000).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()
