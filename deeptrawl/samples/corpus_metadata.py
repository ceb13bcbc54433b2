"""Ground truth for the metadata detector's consistency checks, made by construction.

Every case starts as a camera-like JPEG written by ``deeptrawl.samples.metadata``: a
random crop of a photo shipped with scikit-image, complete EXIF (make, model, three
equal dates, exposure fields, pixel size) and an IFD1 thumbnail of the very picture.

Real kinds (nothing changed after "capture", or only what cameras and archives do):

* ``camera`` - as written; ``camera_letterbox`` - thumbnail with black bars (Canon);
* ``camera_resized`` - downscaled later with the EXIF block copied across unchanged;
* ``camera_recompressed`` - re-encoded at another quality, EXIF copied across.

Manipulated kinds (the picture changed after the metadata was written; the metadata
carries a trace of it):

* ``thumbnail_splice`` - a rectangle from another photo pasted in, EXIF (and its
  thumbnail of the original) kept; the mask marks the rectangle;
* ``exif_transplant`` - another photo wearing this photo's EXIF;
* ``crop`` - cropped to another shape, EXIF kept;
* ``pasted_camera_exif`` - a splice saved with hand-written camera EXIF (no exposure
  fields, no thumbnail);
* ``dates_backwards`` - a splice whose EXIF modification date precedes its capture.

Deterministic for a given ``(n, seed)``; about 20 ms per case.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from deeptrawl.samples import metadata as meta
from deeptrawl.samples.cases import Case
from deeptrawl.samples.media import PHOTOS, photo

REAL_KINDS = ("camera", "camera_letterbox", "camera_resized", "camera_recompressed")
FAKE_KINDS = ("thumbnail_splice", "exif_transplant", "crop", "pasted_camera_exif", "dates_backwards")
_CAMERAS = (("Canon", "Canon EOS 5D Mark IV"), ("NIKON CORPORATION", "NIKON D750"), ("SONY", "ILCE-7M3"),
            ("FUJIFILM", "X-T4"), ("Apple", "iPhone 13"))


def _rgb(name: str) -> np.ndarray:
    a = photo(name)
    return np.stack([a] * 3, axis=-1) if a.ndim == 2 else a[..., :3]


def _crop(a: np.ndarray, rng: np.random.Generator, max_side: int = 512) -> np.ndarray:
    """A random crop (60-100 % of each side), at most ``max_side`` on its long side."""
    h, w = a.shape[:2]
    ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    out = a[y:y + ch, x:x + cw]
    scale = max_side / max(ch, cw)
    if scale < 1:
        size = (max(16, round(cw * scale)), max(16, round(ch * scale)))
        out = np.asarray(Image.fromarray(out).resize(size, Image.BOX))
    return np.ascontiguousarray(out)


def _splice(a: np.ndarray, donor: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paste a rectangle (4-12 % of the area) of ``donor`` into ``a``; (picture, mask)."""
    h, w = a.shape[:2]
    frac = rng.uniform(0.04, 0.12)
    ph, pw = max(8, int(h * np.sqrt(frac))), max(8, int(w * np.sqrt(frac)))
    y, x = int(rng.integers(0, h - ph)), int(rng.integers(0, w - pw))
    patch = np.asarray(Image.fromarray(donor).resize((pw, ph), Image.BOX))
    out = a.copy()
    out[y:y + ph, x:x + pw] = patch
    mask = np.zeros((h, w), bool)
    mask[y:y + ph, x:x + pw] = True
    return out, mask


def _when(rng: np.random.Generator) -> str:
    return (f"{int(rng.integers(2005, 2024))}:{int(rng.integers(1, 13)):02d}:{int(rng.integers(1, 29)):02d} "
            f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}:{int(rng.integers(0, 60)):02d}")


def _case(kind: str, i: int, rng: np.random.Generator) -> Case:
    names = list(PHOTOS)
    a = _crop(_rgb(names[int(rng.integers(len(names)))]), rng)
    donor = _crop(_rgb(names[int(rng.integers(len(names)))]), rng)
    make, model = _CAMERAS[int(rng.integers(len(_CAMERAS)))]
    when = _when(rng)
    q = int(rng.integers(75, 97))
    camera = meta.camera_jpeg(a, make=make, model=model, when=when, quality=q,
                              letterbox=kind == "camera_letterbox")
    name = f"metadata/{kind}/{i:04d}.jpg"
    h, w = a.shape[:2]
    if kind in ("camera", "camera_letterbox"):
        return Case(name, camera, False, kind)
    if kind == "camera_resized":
        s = rng.uniform(0.4, 0.9)
        small = Image.fromarray(a).resize((max(16, round(w * s)), max(16, round(h * s))), Image.LANCZOS)
        return Case(name, meta.reencode_keeping_exif(camera, small, quality=q), False, kind)
    if kind == "camera_recompressed":
        return Case(name, meta.reencode_keeping_exif(camera, a, quality=int(rng.integers(60, 96))), False, kind)
    if kind == "thumbnail_splice":
        edited, mask = _splice(a, donor, rng)
        return Case(name, meta.reencode_keeping_exif(camera, edited, quality=q), True, kind, mask=mask)
    if kind == "exif_transplant":
        other = np.asarray(Image.fromarray(donor).resize((w, h), Image.BOX))
        return Case(name, meta.reencode_keeping_exif(camera, other, quality=q), True, kind)
    if kind == "crop":
        keep = rng.uniform(0.6, 0.85)
        cropped = a[: int(h * keep)] if rng.integers(2) else a[:, : int(w * keep)]
        return Case(name, meta.reencode_keeping_exif(camera, cropped, quality=q), True, kind)
    edited, mask = _splice(a, donor, rng)
    if kind == "pasted_camera_exif":
        data = meta.jpeg_with_exif(edited, make=make, model=model, datetime=when, quality=q, exposure=False)
        return Case(name, data, True, kind, mask=mask)
    if kind == "dates_backwards":
        year = int(when[:4])
        data = meta.camera_jpeg(edited, make=make, model=model, when=when, modified=f"{year - 1}{when[4:]}",
                                quality=q, thumbnail=False)
        return Case(name, data, True, kind, mask=mask)
    raise ValueError(f"unknown kind {kind!r}")


def cases(n: int, seed: int = 0) -> list[Case]:
    """``n`` cases, half real and half manipulated, kinds in rotation."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kinds = REAL_KINDS if i % 2 == 0 else FAKE_KINDS
        out.append(_case(kinds[(i // 2) % len(kinds)], i, rng))
    return out
