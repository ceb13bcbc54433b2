"""Ground truth for error-level analysis: splices with another compression history, and
uniformly re-compressed real photos.

Real (``manipulated=False``):

* ``real_jpeg``: a random crop (60-100% of each side, at most 1024 px) of a shipped
  photo saved once more as JPEG at quality 60-95 (step 5). The photos themselves mostly
  came from JPEGs, and a random crop moves that old grid, as happens when real photos
  are cropped and re-shared.
* ``real_png``: the same, saved as PNG.

Manipulated (``manipulated=True``, ``mask`` = the pasted pixels):

* ``splice_raw_donor``: a rectangle or ellipse from another (uncompressed) photo pasted
  into a host that was a JPEG at quality 60-90, then saved as JPEG at a higher quality
  (80-100, at least 5 above the host's).
* ``splice_jpeg_donor``: the same with the donor first saved as JPEG at a quality at
  least 10 away from the host's (higher or lower), pasted at a random offset.
* ``splice_saved_png``: host JPEG 60-90, raw or JPEG donor, the result saved as PNG.

Pasted regions are 20-45% of the host's sides (3-22% of its area, median 9%), anywhere.
Everything is drawn from ``numpy.random.default_rng(seed)``; real photos cycle through
photos and saves so any ``n`` covers them evenly.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from deeptrawl.samples import media
from deeptrawl.samples.cases import Case

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "camera")
REAL_SAVES = (60, 65, 70, 75, 80, 85, 90, 95, "png")
HOST_QUALITIES = tuple(range(60, 95, 5))
DONOR_QUALITIES = tuple(range(60, 100, 5))
SPLICE_KINDS = ("splice_raw_donor", "splice_jpeg_donor", "splice_saved_png")


def _photo(name: str, cache: dict) -> np.ndarray:
    if name not in cache:
        a = media.photo(name)
        cache[name] = np.ascontiguousarray(np.stack([a] * 3, -1) if a.ndim == 2 else a[..., :3])
    return cache[name]


#: Longest crop side: keeps cases fast (the largest photo, retina, is 1411 px square).
MAX_SIDE = 1024


def _crop(a: np.ndarray, rng: np.random.Generator, smallest: float) -> np.ndarray:
    h, w = a.shape[:2]
    ch = min(MAX_SIDE, max(128, int(h * rng.uniform(smallest, 1.0))))
    cw = min(MAX_SIDE, max(128, int(w * rng.uniform(smallest, 1.0))))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return a[y : y + ch, x : x + cw]


def _region(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A rectangle or an ellipse, 20-45% of each side, anywhere in the image."""
    side = rng.uniform(0.2, 0.45)
    ph = min(h - 2, int(h * side * rng.uniform(0.8, 1.2)))
    pw = min(w - 2, int(w * side * rng.uniform(0.8, 1.2)))
    y, x = int(rng.integers(0, h - ph)), int(rng.integers(0, w - pw))
    if rng.random() < 0.5:
        mask = np.zeros((h, w), bool)
        mask[y : y + ph, x : x + pw] = True
        return mask
    yy, xx = np.ogrid[:h, :w]
    return ((yy - (y + ph / 2)) / (ph / 2)) ** 2 + ((xx - (x + pw / 2)) / (pw / 2)) ** 2 <= 1.0


def _real(i: int, rng: np.random.Generator, cache: dict) -> Case:
    # 7 photos x 9 saves: i mod 7 and i mod 9 run through all 63 pairs (coprime periods).
    name = PHOTOS[i % len(PHOTOS)]
    how = REAL_SAVES[i % len(REAL_SAVES)]
    crop = _crop(_photo(name, cache), rng, 0.6)
    if how == "png":
        return Case(f"ela-real-{i}-{name}-png", media.encode(crop, "PNG"), False, "real_png")
    return Case(f"ela-real-{i}-{name}-q{how}", media.encode(crop, quality=how), False, "real_jpeg")


def _splice(i: int, rng: np.random.Generator, cache: dict) -> Case:
    kind = SPLICE_KINDS[i % len(SPLICE_KINDS)]
    host_name, donor_name = (PHOTOS[k] for k in rng.choice(len(PHOTOS), 2, replace=False))
    host_q = int(rng.choice(HOST_QUALITIES))
    host = media.decode(media.encode(_crop(_photo(host_name, cache), rng, 0.7), quality=host_q)).copy()
    h, w = host.shape[:2]
    donor = _photo(donor_name, cache)
    if donor.shape[0] < h or donor.shape[1] < w:
        size = (max(w, donor.shape[1]), max(h, donor.shape[0]))
        donor = np.asarray(Image.fromarray(donor).resize(size, Image.LANCZOS))
    dy, dx = int(rng.integers(0, donor.shape[0] - h + 1)), int(rng.integers(0, donor.shape[1] - w + 1))
    donor = donor[dy : dy + h, dx : dx + w]
    jpeg_donor = kind == "splice_jpeg_donor" or (kind == "splice_saved_png" and rng.random() < 0.5)
    donor_q = None
    if jpeg_donor:
        donor_q = int(rng.choice([q for q in DONOR_QUALITIES if abs(q - host_q) >= 10]))
        donor = media.decode(media.encode(np.ascontiguousarray(donor), quality=donor_q))
    mask = _region(h, w, rng)
    host[mask] = donor[mask]
    donor_text = f"q{donor_q}" if donor_q else "raw"
    if kind == "splice_saved_png":
        data, final = media.encode(host, "PNG"), "png"
    else:
        final_q = int(rng.choice(range(max(host_q + 5, 80), 101, 5)))
        data, final = media.encode(host, quality=final_q), f"q{final_q}"
    name = f"ela-splice-{i}-{host_name}-q{host_q}+{donor_name}-{donor_text}-{final}"
    return Case(name, data, True, kind, mask=mask)


def cases(n: int, seed: int = 0) -> list[Case]:
    """``n`` cases, half real (rounded down) and half spliced, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    cache: dict = {}
    n_real = n // 2
    out = [_real(i, rng, cache) for i in range(n_real)]
    out += [_splice(i, rng, cache) for i in range(n - n_real)]
    return out
