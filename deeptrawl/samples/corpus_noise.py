"""Ground truth for the noise-inconsistency detector, made by construction.

Real cases: a shipped scikit-image photo, randomly cropped (60-100% of each side, at any
offset, so the old JPEG grid of JPEG-born photos lands anywhere), saved once as JPEG at
quality 60-95 or as PNG. Nothing is pasted; these must not be flagged.

Splice cases: a region (rectangle or ellipse, 5-25% of the image, anywhere) of a host
photo is replaced by the same-shaped region of a *different* photo whose noise was
changed before pasting, then the result is saved as JPEG 75-95 or PNG:

* ``splice_noise``: Gaussian noise with sigma 2-8 (per RGB channel) added to the donor;
* ``splice_blur``: donor blurred (Gaussian sigma 0.8-1.6), as from a softer lens or an
  upscaled image;
* ``splice_denoise``: donor denoised with an edge-preserving bilateral filter;
* ``splice_jpeg``: donor with another JPEG history (saved at quality 15-45 first).

A donor taken from another photo and then processed does not always end up with a
different noise level from the host (a noisy donor, denoised, can match a noisy host).
The label "different noise level" is therefore checked, not assumed: after the final
save, a standard global estimate of noise (Immerkaer's Laplacian-difference estimator,
over the flatter half of the pixels, by Sobel magnitude) is taken inside and outside the
mask, and the case is kept only when they differ by at least ``MIN_RATIO`` in either
direction; otherwise the next draw is tried. The ratio is part of the case name. This
estimator is global and independent of the detector's local map.

Greyscale hosts (``camera``) receive greyscale donors, and the greyscale photo is never
a donor for a colour host: a grey patch in a colour photo would be a trivial colour
anomaly, not a noise one. Deterministic for a given ``(n, seed)``.
"""

from __future__ import annotations

import functools
import io

import cv2
import numpy as np
from PIL import Image

from deeptrawl.samples.cases import Case

#: Shipped photographs used as hosts and donors.
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "immunohistochemistry",
          "motorcycle", "camera")
GREY = frozenset({"camera"})
REAL_QUALITIES = (60, 65, 70, 75, 80, 85, 90, 95, None)  # None: PNG
SPLICE_QUALITIES = (75, 80, 85, 90, 95, None)
SPLICE_KINDS = ("splice_noise", "splice_blur", "splice_denoise", "splice_jpeg")
#: Inside/outside noise-level ratio a splice must reach to count as "a different noise level".
MIN_RATIO = 1.5
MAX_DRAWS = 30


def cases(n: int, seed: int = 0) -> list[Case]:
    """``n // 2`` real re-saves and ``n - n // 2`` splices (kinds in rotation), deterministic."""
    out = [real_case(seed, i) for i in range(n // 2)]
    out += [splice_case(seed, i, SPLICE_KINDS[i % len(SPLICE_KINDS)]) for i in range(n - n // 2)]
    return out


@functools.lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """An HxWx3 uint8 shipped photo (read-only, cached)."""
    import skimage.data

    if name == "motorcycle":
        array = skimage.data.stereo_motorcycle()[0]
    else:
        array = np.asarray(getattr(skimage.data, name)())
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    array.flags.writeable = False
    return array


def real_case(seed: int, index: int) -> Case:
    rng = np.random.default_rng([seed, index, 0])
    name = PHOTOS[int(rng.integers(len(PHOTOS)))]
    image = photo(name)
    h, w = image.shape[:2]
    ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    quality = REAL_QUALITIES[int(rng.integers(len(REAL_QUALITIES)))]
    data = _encode(image[y : y + ch, x : x + cw], quality)
    label = f"noise-real-{name}-{_format(quality)}-{cw}x{ch}-{index}"
    return Case(name=label, data=data, manipulated=False, kind="real")


def splice_case(seed: int, index: int, kind: str) -> Case:
    """A splice whose inside/outside noise ratio reaches MIN_RATIO (re-drawn until it does)."""
    for draw in range(MAX_DRAWS):
        rng = np.random.default_rng([seed, index, 1, draw])
        data, mask, label = _splice(rng, kind)
        ratio = noise_ratio(_decode(data), mask)
        if ratio >= MIN_RATIO:
            return Case(name=f"noise-{kind}-{label}-ratio{ratio:.1f}-{index}", data=data, manipulated=True,
                        kind=kind, mask=mask)
    raise RuntimeError(f"no {kind} splice with noise ratio >= {MIN_RATIO} in {MAX_DRAWS} draws ({seed=}, {index=})")


def _splice(rng: np.random.Generator, kind: str) -> tuple[bytes, np.ndarray, str]:
    host_name = PHOTOS[int(rng.integers(len(PHOTOS)))]
    donors = [p for p in PHOTOS if p != host_name and (host_name in GREY or p not in GREY)]
    donor_name = donors[int(rng.integers(len(donors)))]
    host = photo(host_name)
    h, w = host.shape[:2]
    mask = region_mask(h, w, rng)
    donor, how = _process(_donor_canvas(photo(donor_name), h, w, rng), kind, rng)
    if host_name in GREY:
        donor = np.repeat(cv2.cvtColor(donor, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    out = host.copy()
    out[mask] = donor[mask]
    quality = SPLICE_QUALITIES[int(rng.integers(len(SPLICE_QUALITIES)))]
    return _encode(out, quality), mask, f"{host_name}+{donor_name}-{how}-{_format(quality)}-area{mask.mean():.2f}"


def region_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A rectangle or ellipse covering 5-25% of an h x w image, at a random place."""
    area = rng.uniform(0.05, 0.25) * h * w
    aspect = rng.uniform(0.6, 1.6)
    ellipse = bool(rng.integers(2))
    # An ellipse covers pi/4 of its bounding box.
    box = area / (np.pi / 4) if ellipse else area
    rh = int(min(0.95 * h, np.sqrt(box / aspect)))
    rw = int(min(0.95 * w, box / max(rh, 1)))
    y, x = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
    mask = np.zeros((h, w), bool)
    if ellipse:
        yy, xx = np.ogrid[:h, :w]
        mask[((yy - y - rh / 2) / (rh / 2)) ** 2 + ((xx - x - rw / 2) / (rw / 2)) ** 2 <= 1.0] = True
    else:
        mask[y : y + rh, x : x + rw] = True
    return mask


def _donor_canvas(donor: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """An h x w canvas of donor pixels (mirror-tiled when the donor is smaller, no resampling)."""
    reps = (-(-h // donor.shape[0]) + 1, -(-w // donor.shape[1]) + 1)
    canvas = np.pad(donor, ((0, donor.shape[0] * (reps[0] - 1)), (0, donor.shape[1] * (reps[1] - 1)), (0, 0)),
                    mode="symmetric")
    y = int(rng.integers(0, canvas.shape[0] - h + 1))
    x = int(rng.integers(0, canvas.shape[1] - w + 1))
    return np.ascontiguousarray(canvas[y : y + h, x : x + w])


def _process(donor: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    if kind == "splice_noise":
        sigma = rng.uniform(2.0, 8.0)
        noisy = donor.astype(np.float32) + rng.normal(0.0, sigma, donor.shape).astype(np.float32)
        return np.clip(np.round(noisy), 0, 255).astype(np.uint8), f"noise{sigma:.1f}"
    if kind == "splice_blur":
        sigma = rng.uniform(0.8, 1.6)
        return cv2.GaussianBlur(donor, (0, 0), sigma), f"blur{sigma:.1f}"
    if kind == "splice_denoise":
        strength = rng.uniform(15.0, 40.0)
        return cv2.bilateralFilter(donor, 5, strength, 5), f"bilateral{strength:.0f}"
    if kind == "splice_jpeg":
        quality = int(rng.integers(15, 46))
        return _decode(_encode(donor, quality)), f"jpeg{quality}"
    raise ValueError(f"unknown splice kind {kind!r}")


def noise_ratio(rgb: np.ndarray, mask: np.ndarray) -> float:
    """max/min of the reference noise estimate inside and outside ``mask`` (edges eroded away)."""
    kernel = np.ones((9, 9), np.uint8)
    inside = cv2.erode(mask.astype(np.uint8), kernel).astype(bool)
    outside = cv2.erode((~mask).astype(np.uint8), kernel).astype(bool)
    a, b = reference_sigma(rgb, inside), reference_sigma(rgb, outside)
    return max(a, b) / max(min(a, b), 1e-3)


def reference_sigma(rgb: np.ndarray, where: np.ndarray) -> float:
    """Immerkaer's fast noise estimate of the luma, over the flatter half of the pixels in ``where``."""
    y = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    laplace_diff = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = np.abs(cv2.filter2D(y, -1, laplace_diff))
    gradient = np.abs(cv2.Sobel(y, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(y, cv2.CV_32F, 0, 1))
    where = where.copy()
    where[:2] = where[-2:] = False
    where[:, :2] = where[:, -2:] = False
    if not where.any():
        return 0.0
    flat = where & (gradient <= np.median(gradient[where]))
    return float(np.sqrt(np.pi / 2.0) * response[flat].mean() / 6.0)


def _encode(array: np.ndarray, quality: int | None) -> bytes:
    buf = io.BytesIO()
    if quality is None:
        Image.fromarray(array).save(buf, "PNG", compress_level=1)
    else:
        Image.fromarray(array).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _format(quality: int | None) -> str:
    return "png" if quality is None else f"q{quality}"
