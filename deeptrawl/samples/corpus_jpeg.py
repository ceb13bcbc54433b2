"""JPEG-history ground truth made by construction from shipped real photos.

Sources are scikit-image photos. ``rocket``, ``retina`` and ``hubble_deep_field`` ship as
JPEGs, i.e. they already carry an 8x8 compression grid; they are always downscaled first
(by 0.55-0.85, Lanczos), which resamples that grid away, so that "single compression"
below is really the first one. The PNG photos are downscaled (0.7-0.95) in 40% of the
cases for variety. Then a random crop of 224-448 px a side is taken; crops that are mostly
clipped black or white (retina's border, hubble's sky) are re-drawn.

Kinds (``Case.kind``):

* ``real``: the crop saved once as JPEG, quality 60-95. Not manipulated.
* ``double_jpeg_up``: saved at q1 in 50-90, decoded, saved again on the same grid at a
  higher q2 (q1 + 5 .. q1 + 40, at most 100).
* ``double_jpeg_down``: the same with q2 lower than q1 (q1 65-98, q2 = q1 - 40 .. q1 - 5).
  Known to be hard (the second, coarser quantisation erases most of the first).
* ``double_jpeg_shifted``: non-aligned double compression: the JPEG decoded after the
  first save (q1 50-90) is cropped by 1-7 px in x and/or y before the second save, so the
  two grids differ; q2 is q1 + 5 .. 98 or q1 - 5 .. 55 (both directions, about 2:1).
* ``splice_jpeg_history``: a rectangle or ellipse (5-20% of the image) from another photo
  pasted so that it has another compression history than the rest, then saved at a final
  quality q2 above the earlier ones (+5 or more). Three variants, cycled: an uncompressed
  donor into a JPEG background (q 50-85); a JPEG donor (q 50-85, pasted on the same grid)
  into an uncompressed background; JPEG donor and JPEG background at qualities at least
  15 apart.
* ``splice_shifted_grid``: a donor region from a JPEG (q 50-85) pasted at an offset that is
  not a multiple of 8 from where it sat in its own grid, into an uncompressed or JPEG
  background; final q2 at least 5 above.

Double-compression kinds are global (``mask`` None); splices carry the pasted mask.
Case ``i`` depends only on ``(seed, i)``; even indices are real, odd ones manipulated,
cycling through ``KINDS``.
"""

from __future__ import annotations


import numpy as np
from PIL import Image, ImageDraw

from deeptrawl.samples import media
from deeptrawl.samples.cases import Case

PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "motorcycle", "rocket", "retina", "hubble_deep_field")
#: Shipped as JPEG: always downscaled so that their original grid is gone.
JPEG_SOURCES = frozenset({"rocket", "retina", "hubble_deep_field"})
KINDS = (
    "double_jpeg_up",
    "splice_jpeg_history",
    "double_jpeg_down",
    "splice_shifted_grid",
    "double_jpeg_shifted",
    "splice_jpeg_history",
    "double_jpeg_up",
    "splice_shifted_grid",
)
MIN_SIDE, MAX_SIDE = 224, 448


def source(rng: np.random.Generator, name: str | None = None) -> np.ndarray:
    """A clean (never JPEG-compressed on its current pixel grid) random crop of a photo."""
    name = name or PHOTOS[int(rng.integers(len(PHOTOS)))]
    image = media.rgb_photo(name)
    f = 1.0
    if name in JPEG_SOURCES or rng.random() < 0.4:
        low, high = (0.55, 0.85) if name in JPEG_SOURCES else (0.7, 0.95)
        f = float(rng.uniform(low, high))
    # Crop size in output pixels; the crop is taken at 1/f of that size and downscaled
    # (cheaper than downscaling the whole photo, same effect on the old grid).
    h, w = int(image.shape[0] * f), int(image.shape[1] * f)
    ch = int(rng.integers(min(MIN_SIDE, h), min(MAX_SIDE, h) + 1))
    cw = int(rng.integers(min(MIN_SIDE, w), min(MAX_SIDE, w) + 1))
    sh, sw = min(image.shape[0], round(ch / f)), min(image.shape[1], round(cw / f))
    best = None
    for _ in range(10):
        y, x = int(rng.integers(0, image.shape[0] - sh + 1)), int(rng.integers(0, image.shape[1] - sw + 1))
        crop = image[y : y + sh, x : x + sw]
        clipped = float(((crop.min(axis=2) == 0) | (crop.max(axis=2) == 255)).mean())
        if best is None or clipped < best[0]:
            best = (clipped, crop)
        if clipped < 0.3:
            break
    crop = best[1]
    if f != 1.0:
        crop = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((cw, ch), Image.LANCZOS))
    return np.ascontiguousarray(crop)


def jpeg(pixels: np.ndarray, quality: int) -> bytes:
    return media.encode(pixels, "JPEG", quality=int(quality))


def resave(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Pixels after one JPEG save/load at ``quality`` (the grid starts at the top-left)."""
    return media.decode(jpeg(pixels, quality))


def single(rng: np.random.Generator, quality: int | None = None) -> tuple[bytes, dict]:
    q = int(quality if quality is not None else rng.integers(60, 96))
    return jpeg(source(rng), q), {"q": q}


def double(rng: np.random.Generator, q1: int, q2: int, shift: tuple[int, int] = (0, 0)) -> bytes:
    """Save at q1, crop ``shift`` = (dy, dx) pixels off the top/left, save at q2."""
    first = resave(source(rng), q1)
    dy, dx = shift
    return jpeg(first[dy:, dx:], q2)


def _region_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    area = float(rng.uniform(0.05, 0.20)) * h * w
    aspect = float(rng.uniform(0.6, 1.6))
    rh = int(np.clip(np.sqrt(area / aspect), 24, h - 16))
    rw = int(np.clip(area / rh, 24, w - 16))
    y, x = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    if rng.random() < 0.5:
        draw.rectangle([x, y, x + rw - 1, y + rh - 1], fill=255)
    else:
        draw.ellipse([x, y, x + rw - 1, y + rh - 1], fill=255)
    return np.asarray(canvas) > 0


def _donor_at(
    donor: np.ndarray, mask: np.ndarray, rng: np.random.Generator, misalign: bool
) -> tuple[np.ndarray, tuple[int, int]]:
    """The donor shifted so that its pixels cover ``mask``'s bounding box.

    The shift is a multiple of 8 both ways (the donor's own 8x8 grid then coincides with
    the final one) or, with ``misalign``, not a multiple of 8 in at least one direction.
    Returns the placed donor and the grid shift (dy, dx) mod 8: the donor's block
    boundaries fall after final rows/columns ``7 - d`` mod 8.
    """
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    y0, x0 = int(ys.min()), int(xs.min())
    rh, rw = int(ys.max()) + 1 - y0, int(xs.max()) + 1 - x0
    dh, dw = donor.shape[:2]
    while True:
        dy, dx = (int(rng.integers(0, 8)), int(rng.integers(0, 8))) if misalign else (0, 0)
        if (dy, dx) != (0, 0) or not misalign:
            break
    # Donor rows/cols s with (s - y0) % 8 == dy, where the region fits.
    rows = [s for s in range(0, dh - rh + 1) if (s - y0) % 8 == dy]
    cols = [s for s in range(0, dw - rw + 1) if (s - x0) % 8 == dx]
    sy, sx = rows[int(rng.integers(len(rows)))], cols[int(rng.integers(len(cols)))]
    out = np.zeros((h, w, 3), np.uint8)
    out[y0 : y0 + rh, x0 : x0 + rw] = donor[sy : sy + rh, sx : sx + rw]
    return out, (dy, dx)


def splice(rng: np.random.Generator, variant: str) -> tuple[bytes, np.ndarray, dict]:
    """A splice case; ``variant`` in raw_into_jpeg, jpeg_into_raw, jpeg_into_jpeg, shifted_grid."""
    background = source(rng)
    h, w = background.shape[:2]
    donor = source(rng)
    mask = _region_mask(rng, h, w)
    # The region must fit in the donor with room for an 8-px choice of offset.
    ys, xs = np.nonzero(mask)
    if ys.max() - ys.min() + 1 > donor.shape[0] - 8 or xs.max() - xs.min() + 1 > donor.shape[1] - 8:
        mask = np.zeros_like(mask)
        mh, mw = min(h, donor.shape[0]) // 2, min(w, donor.shape[1]) // 2
        mask[(h - mh) // 2 : (h - mh) // 2 + mh, (w - mw) // 2 : (w - mw) // 2 + mw] = True
    params: dict = {"variant": variant}
    if variant == "raw_into_jpeg":
        qb = int(rng.integers(50, 86))
        background, params["q_background"] = resave(background, qb), qb
        donor_q = None
    elif variant == "jpeg_into_raw":
        donor_q = int(rng.integers(50, 86))
    elif variant == "jpeg_into_jpeg":
        qb = int(rng.integers(50, 86))
        options = [q for q in range(50, 86) if abs(q - qb) >= 15]
        donor_q = int(options[int(rng.integers(len(options)))])
        background, params["q_background"] = resave(background, qb), qb
    elif variant == "shifted_grid":
        donor_q = int(rng.integers(50, 86))
        if rng.random() < 0.5:
            qb = int(rng.integers(50, 86))
            background, params["q_background"] = resave(background, qb), qb
    else:
        raise ValueError(f"unknown splice variant {variant!r}")
    if donor_q is not None:
        # The donor is compressed on its own grid, anchored at its own top-left.
        donor, params["q_donor"] = resave(donor, donor_q), donor_q
    placed, shift = _donor_at(donor, mask, rng, misalign=variant == "shifted_grid")
    if variant == "shifted_grid":
        params["grid_shift"] = list(shift)
    pixels = np.where(mask[:, :, None], placed, background)
    earlier = max(params.get("q_background", 0), params.get("q_donor", 0), 55)
    q2 = int(rng.integers(earlier + 5, 99)) if earlier + 5 < 99 else 98
    params["q"] = q2
    return jpeg(pixels, q2), mask, params


SPLICE_VARIANTS = ("raw_into_jpeg", "jpeg_into_raw", "jpeg_into_jpeg")


def _manipulated(rng: np.random.Generator, kind: str, j: int) -> tuple[bytes, np.ndarray | None, dict]:
    if kind == "double_jpeg_up":
        q1 = int(rng.integers(50, 91))
        q2 = int(rng.integers(q1 + 5, min(q1 + 40, 100) + 1))
        return double(rng, q1, q2), None, {"q1": q1, "q2": q2}
    if kind == "double_jpeg_down":
        q1 = int(rng.integers(65, 99))
        q2 = int(rng.integers(max(50, q1 - 40), q1 - 5 + 1))
        return double(rng, q1, q2), None, {"q1": q1, "q2": q2}
    if kind == "double_jpeg_shifted":
        q1 = int(rng.integers(50, 91))
        up = rng.random() < 2 / 3 or q1 < 60
        q2 = int(rng.integers(q1 + 5, 99)) if up and q1 + 5 < 99 else int(rng.integers(50, max(51, q1 - 4)))
        shift = (0, 0)
        while shift == (0, 0):
            shift = (int(rng.integers(0, 8)), int(rng.integers(0, 8)))
        return double(rng, q1, q2, shift), None, {"q1": q1, "q2": q2, "shift": list(shift)}
    if kind == "splice_jpeg_history":
        data, mask, params = splice(rng, SPLICE_VARIANTS[j % len(SPLICE_VARIANTS)])
        return data, mask, params
    if kind == "splice_shifted_grid":
        data, mask, params = splice(rng, "shifted_grid")
        return data, mask, params
    raise ValueError(f"unknown kind {kind!r}")


def _describe(params: dict) -> str:
    return "-".join(f"{k}={'x'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in params.items())


def cases(n: int, seed: int = 0) -> list[Case]:
    """``n`` cases, alternating real (even index) and manipulated (odd index, cycling KINDS)."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        if i % 2 == 0:
            data, params = single(rng)
            out.append(Case(f"jpeg-{seed}-{i}-real-{_describe(params)}", data, False, "real"))
            continue
        j = i // 2
        kind = KINDS[j % len(KINDS)]
        data, mask, params = _manipulated(rng, kind, j)
        out.append(Case(f"jpeg-{seed}-{i}-{kind}-{_describe(params)}", data, True, kind, mask=mask))
    return out
