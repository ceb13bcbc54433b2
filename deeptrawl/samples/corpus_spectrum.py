"""Ground truth for the spectral detector: original photo crops vs x2-upsampled ones.

Every case is a square picture of 256, 384 or 512 pixels (less where the photo is
smaller), the same for both labels, so size gives nothing away:

* ``real``: a crop of a shipped photo at its native resolution.
* ``real_downscaled``: a larger crop shrunk with an antialiasing filter, as
  web and archive copies usually are. Downscaling is not upsampling and must not be
  flagged; it also lowers the high-frequency energy.
* ``real_demosaiced``: a crop put through a simulated camera (``demosaiced``): colour
  matrix and white balance, Bayer mosaic, sensor noise, demosaicing (OpenCV bilinear,
  edge-aware or VNG). Demosaicing interpolates three of every four red and blue pixels
  and half the green ones, a 2-pixel structure close to x2 upsampling's: the hard
  negative for photos at their camera's native resolution.
* ``upsample_<method>``: a half-size picture (a native crop, or a full-size crop shrunk
  by half) enlarged x2 by ``nearest``, ``bilinear``, ``bicubic`` (Pillow's resize) or
  ``tconv``: a stride-2 transposed convolution with a seeded 4x4 kernel, the upsampling
  layer of GAN generators whose uneven overlap leaves the checkerboard pattern
  (Odena et al. 2016; Zhang et al. 2019, "Detecting and simulating artifacts in GAN fake
  images").

Each picture is then saved as PNG or as JPEG at quality 95, 90, 75 or 60, the same draw
for originals and upsampled pictures; a JPEG's kind ends in ``_q<quality>``
(``upsample_bilinear_q75``). Cases alternate real / upsampled (balanced) and cycle over
photos, variants, sizes, methods and storage, so any ``n`` that is a multiple of 360
covers every combination evenly. No masks: upsampling is global.

``python -m deeptrawl.samples.corpus_spectrum fit`` refits the detector's logistic
score model on this corpus (see ``deeptrawl.detectors.spectrum``).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from PIL import Image

from deeptrawl.samples import media
from deeptrawl.samples.cases import Case

#: Picture sides, cycled (capped by the photo's own size): the detector's features must
#: mean the same at every size, and larger pictures show weaker traces (e.g. a camera's
#: demosaicing) that noise hides in small ones.
SIZES = (256, 384, 512)
#: Shipped photos with at least 256 pixels on their short side (grey ones become RGB).
#: ``moon`` is left out: it is itself a x2 enlargement (the detector flags it, rightly).
PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "immunohistochemistry",
    "motorcycle_left", "motorcycle_right", "camera", "brick", "grass", "gravel", "coins", "clock",
)  # fmt: skip
METHODS = ("nearest", "bilinear", "bicubic", "tconv")
#: Storage draws, shared by originals and upsampled pictures: None = PNG, else JPEG quality.
STORAGE = (None, 95, 90, 75, 60)
CYCLE = len(METHODS) * len(STORAGE)
DEMOSAIC = ("bilinear", "edge_aware", "vng")
#: Crops flatter than this (grey-level standard deviation) are redrawn.
MIN_STD = 8.0

_RESAMPLE = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
_PHOTO_CACHE: dict[str, np.ndarray] = {}


def cases(n: int, seed: int = 0) -> list[Case]:
    """``n`` labelled cases (even indices real, odd upsampled), deterministic in ``seed``."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        # Pair j shares its photo, size and storage between its real and upsampled case.
        # Original variant (j % 3) and size (j // 3 % 3) cycle every 9 pairs, method and
        # storage every CYCLE pairs; the photo moves on by one more each CYCLE, so every
        # photo meets every combination.
        j = i // 2
        name = PHOTOS[(j + j // CYCLE + seed) % len(PHOTOS)]
        img = photo(name)
        size = min(SIZES[j // 3 % len(SIZES)], (min(img.shape[:2]) - 2) // 16 * 16)
        quality = STORAGE[(j // len(METHODS)) % len(STORAGE)]
        if i % 2 == 0:
            pixels, kind, how = _original(img, size, rng, variant=j % 3)
        else:
            method = METHODS[j % len(METHODS)]
            pixels, how = _upsampled(img, size, method, rng)
            kind = f"upsample_{method}"
        if quality is None:
            data = media.encode(pixels, "PNG")
        else:
            data = media.encode(pixels, "JPEG", quality=quality)
            kind += f"_q{quality}"
        out.append(Case(name=f"{name}-{size}-{how}-s{seed}-{i}", data=data, manipulated=i % 2 == 1, kind=kind))
    return out


def photo(name: str) -> np.ndarray:
    """A shipped photo by name (``PHOTOS`` or any ``media.photo`` name) as HxWx3 uint8
    (grey photos repeated over three channels); cached, so read-only."""
    if name not in _PHOTO_CACHE:
        if name.startswith("motorcycle_"):
            import skimage.data

            left, right, _ = skimage.data.stereo_motorcycle()
            arr = left if name.endswith("left") else right
        else:
            arr = media.photo(name)
        arr = np.asarray(arr)
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        arr = np.ascontiguousarray(arr[:, :, :3])
        arr.flags.writeable = False
        _PHOTO_CACHE[name] = arr
    return _PHOTO_CACHE[name]


def _crop(img: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A random ``size`` crop with some texture: flat crops (retina's black surround) carry
    no spectrum to judge, for either label, so a few more draws look for a textured one."""
    h, w = img.shape[:2]
    for _ in range(8):
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        crop = img[y : y + size, x : x + size]
        if crop.std() >= MIN_STD:
            break
    return crop, f"{x}x{y}"


def _original(img: np.ndarray, size: int, rng: np.random.Generator, variant: int) -> tuple[np.ndarray, str, str]:
    if variant == 0:
        crop, where = _crop(img, size, rng)
        return crop, "real", f"crop{where}"
    if variant == 1:
        # A larger crop shrunk by a non-integer factor (>= 1.15), as thumbnails and web
        # copies are; on a small photo the result is smaller than ``size``.
        size = min(size, int(min(img.shape[:2]) / 1.15) // 16 * 16)
        side = min(int(size * rng.uniform(1.15, 2.0)), *img.shape[:2])
        crop, where = _crop(img, side, rng)
        small = Image.fromarray(crop).resize((size, size), Image.LANCZOS)
        return np.asarray(small), "real_downscaled", f"down{side}at{where}"
    crop, where = _crop(img, size + 2, rng)
    method = DEMOSAIC[int(rng.integers(len(DEMOSAIC)))]
    return demosaiced(crop, rng, method)[:size, :size], "real_demosaiced", f"cfa-{method}-{where}"


#: A typical camera-to-sRGB colour matrix (rows sum to 1); each case jitters it.
_CAMERA_MATRIX = np.array([[1.7, -0.6, -0.1], [-0.2, 1.5, -0.3], [0.0, -0.5, 1.5]])


def demosaiced(
    rgb: np.ndarray, rng: np.random.Generator, method: str, noise: tuple[float, float] = (0.5, 3.0)
) -> np.ndarray:
    """A photo as a camera makes it at its native resolution, from an sRGB picture.

    Back to "raw" (undo gamma, a seeded jitter of a camera colour matrix, seeded white
    balance gains), keep one colour per pixel in a Bayer RGGB mosaic shifted by a seeded
    0/1 pixel in each direction, add sensor noise of a seeded level from ``noise``,
    interpolate the missing colours back with OpenCV's ``method`` (bilinear, edge-aware or
    VNG), then white balance, colour matrix and gamma again. The interpolation leaves a
    2-pixel structure close to x2 upsampling's; the colour matrix mixes the channels, so
    the red and blue traces no longer cancel in the luma. The detector must not take this
    for enlargement. The result is 0-1 pixel smaller than ``rgb`` on each side.
    """
    import cv2

    matrix = _CAMERA_MATRIX + rng.normal(0.0, 0.05, size=(3, 3))
    matrix /= matrix.sum(axis=1, keepdims=True)
    gains = np.array([rng.uniform(1.5, 2.5), 1.0, rng.uniform(1.2, 2.0)])
    dy, dx = (int(v) for v in rng.integers(0, 2, size=2))
    src = rgb[dy:, dx:]
    h, w = src.shape[0] // 2 * 2, src.shape[1] // 2 * 2
    linear = (src[:h, :w] / 255.0) ** 2.2
    raw = np.clip(linear @ np.linalg.inv(matrix).T / gains, 0.0, 1.0) ** (1 / 2.2) * 255.0
    mosaic = np.empty((h, w))
    mosaic[0::2, 0::2], mosaic[0::2, 1::2] = raw[0::2, 0::2, 0], raw[0::2, 1::2, 1]
    mosaic[1::2, 0::2], mosaic[1::2, 1::2] = raw[1::2, 0::2, 1], raw[1::2, 1::2, 2]
    mosaic += rng.normal(0.0, rng.uniform(*noise), size=mosaic.shape)
    code = {"bilinear": cv2.COLOR_BayerRGGB2RGB, "edge_aware": cv2.COLOR_BayerRGGB2RGB_EA,
            "vng": cv2.COLOR_BayerRGGB2RGB_VNG}[method]  # fmt: skip
    full = cv2.cvtColor(np.clip(np.rint(mosaic), 0, 255).astype(np.uint8), code) / 255.0
    out = np.clip((full**2.2 * gains) @ matrix.T, 0.0, 1.0) ** (1 / 2.2) * 255.0
    return np.rint(out).astype(np.uint8)


def _upsampled(img: np.ndarray, size: int, method: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    half = size // 2
    if rng.random() < 0.5:
        small, where = _crop(img, half, rng)
        how = f"native{where}"
    else:
        crop, where = _crop(img, size, rng)
        small = np.asarray(Image.fromarray(crop).resize((half, half), Image.LANCZOS))
        how = f"halved{where}"
    if method == "tconv":
        return transposed_conv2x(small, rng), f"{how}-{method}"
    return np.asarray(Image.fromarray(small).resize((size, size), _RESAMPLE[method])), f"{how}-{method}"


def transposed_conv2x(
    rgb: np.ndarray, rng: np.random.Generator, jitter: tuple[float, float] = (0.01, 0.04)
) -> np.ndarray:
    """x2 upsampling by a stride-2 transposed convolution with a 4x4 kernel per channel.

    The kernel is the bilinear one (outer product of [1, 3, 3, 1] / 4, whose four
    polyphase parts each sum to 1, so it would reproduce a flat area exactly) plus seeded
    Gaussian jitter of relative size drawn from ``jitter``: a learned kernel is never
    exactly balanced, so the four output phases get slightly different gains and a
    2-pixel checkerboard rides on the picture (Odena et al. 2016).
    """
    base = np.outer([0.25, 0.75, 0.75, 0.25], [0.25, 0.75, 0.75, 0.25])
    h, w = rgb.shape[:2]
    out = np.empty((2 * h, 2 * w, 3), np.float64)
    for c in range(3):
        kernel = base + rng.normal(0.0, rng.uniform(*jitter), size=(4, 4)) * base.mean()
        kernel *= 4.0 / kernel.sum()  # keep the average gain at 1 (the layer's bias would)
        out[:, :, c] = _tconv_channel(rgb[:, :, c].astype(np.float64), kernel)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _tconv_channel(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Stride-2 transposed convolution, padding 1 (PyTorch's ConvTranspose2d(4, 2, 1)):
    each input pixel adds ``kernel * value`` to a 4x4 output window; edges replicate."""
    h, w = x.shape
    padded = np.pad(x, 1, mode="edge")
    acc = np.zeros((2 * (h + 2) + 2, 2 * (w + 2) + 2))
    for i in range(4):
        for j in range(4):
            acc[i : i + 2 * (h + 2) : 2, j : j + 2 * (w + 2) : 2] += kernel[i, j] * padded
    # Input pixel (0, 0) sits at padded (1, 1) and covers acc rows 2..5; ConvTranspose2d's
    # padding=1 crops one more, so the output starts at row 3.
    return acc[3 : 3 + 2 * h, 3 : 3 + 2 * w]


# --- refitting the detector's score model ------------------------------------------------------


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    fit = sub.add_parser("fit", help="fit the logistic score model and print its coefficients")
    fit.add_argument("--n", type=int, default=360, help="training cases per seed")
    fit.add_argument("--n-test", type=int, default=360, help="held-out cases per seed")
    fit.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    fit.add_argument("--test-seeds", type=int, nargs="+", default=[100, 101, 102, 103])
    args = parser.parse_args(argv)
    from deeptrawl.detectors import spectrum

    return spectrum._fit_command(args.n, args.n_test, args.train_seeds, args.test_seeds)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
