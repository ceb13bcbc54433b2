"""Copy-move (clone) ground truth made by construction from shipped real photos.

Real cases: random crops of scikit-image photos saved as PNG or JPEG (q 70-95), no edit.
The list deliberately includes pictures full of naturally repeated structure (the
brick wall, the cat's fur, the saucer rim in ``coffee``, the galaxies of the Hubble deep
field, the coins), which are where clone detectors raise false alarms. scikit-image's
``grass`` and ``gravel`` textures are left out on purpose: they contain genuine cloned
patches (made tileable with a clone brush; e.g. ``grass`` repeats a ~180x130 patch from
its top-left corner at an offset of (182, 346) px), so they are not clone-free photos.

Manipulated cases: one region of a photo copied elsewhere in the same photo. The region
is a rectangle, an ellipse or a random star-shaped polygon covering ~1.5-6% of the image
(the copy's own area changes with its scale); the copy is placed so that it does not
overlap the source. ``kind`` names the transform:

* ``copy_move_translate``: a plain shift by whole pixels (an exact copy);
* ``copy_move_rotate``: rotated by 10-90 degrees (either sense), scale 1;
* ``copy_move_scale``: scaled by 0.7-1.4 (at least 8% away from 1), no rotation;
* ``copy_move_rotate_scale``: both;
* ``copy_move_flat`` (one case in nine): a shift of a *low-texture* region (sky, wall,
  table top) of a photo that has some, the case keypoint matching misses and block
  matching is for.

For every kind except ``flat`` the source is drawn from the most textured third of 16
random places (a clone of nothing is not findable by any method and not a meaningful
test), and ``cell`` (a microscope field flat almost everywhere) is not used as a source;
flat copies come from the least textured third (but not a constant patch). Rotations
and scalings are resampled bilinearly or bicubically. About 45% of the cases, real and
manipulated alike, are saved as JPEG after the edit (real q70-95, copies q75-95, flat
copies q85-95), so compression cannot separate the classes; the case name says which
(``...-png`` / ``...-q85``).

``mask`` is the pasted copy (target), ``source_mask`` the region it was copied from.
"""

from __future__ import annotations


import cv2
import numpy as np

from deeptrawl.samples import media
from deeptrawl.samples.cases import Case

#: Photos used for both classes; the texture-heavy ones are there for the false-positive rate.
PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "camera",
    "immunohistochemistry", "motorcycle", "coins", "brick", "moon", "clock", "cell",
)  # fmt: skip
#: The manipulated kinds, cycled in this order (flat copies are "a few": one in nine).
KINDS = ("translate", "rotate", "scale", "rotate_scale") * 2 + ("flat",)
#: Sources of textured copies: all but ``cell`` (a microscope field that is flat almost
#: everywhere: a "textured" region of it is a faint ripple no method can find once
#: JPEG-compressed; it stays among the real photos).
CLONE_PHOTOS = tuple(p for p in PHOTOS if p != "cell")
#: Photos with low-texture areas (sky, wall, table, background) for the flat copies.
FLAT_PHOTOS = ("astronaut", "coffee", "rocket", "camera", "chelsea", "motorcycle", "immunohistochemistry", "moon")
JPEG_SHARE = 0.45
MIN_SIDE = 256


def cases(n: int, seed: int = 0) -> list[Case]:
    """``n`` cases, alternating real (even index) and copy-moved (odd index).

    Case ``i`` depends only on ``(seed, i)``, so a longer list extends a shorter one.
    """
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        j = i // 2
        if i % 2 == 0:
            out.append(_real_case(rng, PHOTOS[(j + seed) % len(PHOTOS)], i))
        else:
            # Step through the photos at another pace than the real cases so that each photo
            # meets every kind as n grows.
            kind = KINDS[j % len(KINDS)]
            if kind == "flat":
                name = FLAT_PHOTOS[(j // len(KINDS) + seed) % len(FLAT_PHOTOS)]
            else:
                name = CLONE_PHOTOS[(3 * j + seed + 1) % len(CLONE_PHOTOS)]
            out.append(_clone_case(rng, name, kind, i))
    return out


def _crop(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    ch = max(min(h, MIN_SIDE), int(h * rng.uniform(0.65, 1.0)))
    cw = max(min(w, MIN_SIDE), int(w * rng.uniform(0.65, 1.0)))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return np.ascontiguousarray(image[y : y + ch, x : x + cw])


def _save(rng: np.random.Generator, image: np.ndarray, qualities=(70, 75, 80, 85, 90, 95)) -> tuple[bytes, str]:
    if rng.random() < JPEG_SHARE:
        q = int(rng.choice(qualities))
        return media.encode(image, "JPEG", quality=q), f"q{q}"
    return media.encode(image, "PNG"), "png"


def _real_case(rng: np.random.Generator, name: str, i: int) -> Case:
    image = _crop(rng, media.rgb_photo(name))
    data, how = _save(rng, image)
    return Case(name=f"copymove-{i:04d}-real-{name}-{how}", data=data, manipulated=False, kind="real")


def clone(image: np.ndarray, rng: np.random.Generator, kind: str,
          attempts: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Copy one region of ``image`` elsewhere in it, moved as ``kind`` says ("translate",
    "flat", "rotate", "scale", "rotate_scale"): (edited image, target mask, source mask),
    or None when no copy fits."""
    h, w = image.shape[:2]
    angle = float(rng.uniform(10, 90) * rng.choice([-1, 1])) if "rotate" in kind else 0.0
    scale = float(rng.uniform(0.7, 1.4)) if "scale" in kind else 1.0
    if "scale" in kind and abs(scale - 1.0) < 0.08:  # a 3% scaling is a translation in disguise
        scale = 1.0 + 0.08 * np.sign(scale - 1.0 or 1.0)
    area = rng.uniform(0.015, 0.06)
    for _ in range(attempts):
        placed = _place(rng, image, kind, area, angle, scale)
        if placed is not None:
            break
        area *= 0.85  # no room for a copy this size: try a smaller one
    else:
        return None
    source, matrix = placed
    if kind in ("translate", "flat"):
        interp = cv2.INTER_NEAREST  # a whole-pixel shift: an exact copy
    else:
        interp = int(rng.choice([cv2.INTER_LINEAR, cv2.INTER_CUBIC]))
    warped = cv2.warpAffine(image, matrix, (w, h), flags=interp, borderMode=cv2.BORDER_REFLECT)
    target = cv2.warpAffine(source.astype(np.float32), matrix, (w, h), flags=cv2.INTER_LINEAR) > 0.5
    edited = image.copy()
    edited[target] = warped[target]
    return edited, target, source


def _clone_case(rng: np.random.Generator, name: str, kind: str, i: int) -> Case:
    image = _crop(rng, media.rgb_photo(name))
    cloned = clone(image, rng, kind)
    if cloned is None:  # pragma: no cover - only for absurdly small images
        raise ValueError(f"could not place a copy in {name} {image.shape[1]}x{image.shape[0]}")
    edited, target, source = cloned
    quality = (85, 90, 95) if kind == "flat" else (75, 80, 85, 90, 95)
    data, how = _save(rng, edited, quality)
    return Case(
        name=f"copymove-{i:04d}-{kind}-{name}-{how}",
        data=data,
        manipulated=True,
        kind=f"copy_move_{kind}",
        mask=target,
        source_mask=source & ~target,
    )


def region_shape(rng: np.random.Generator) -> np.ndarray:
    """A filled region in a 128x128 frame: rectangle, ellipse or random star-shaped polygon."""
    size = 128
    mask = np.zeros((size, size), np.uint8)
    form = rng.integers(0, 3)
    if form == 0:
        mask[:] = 1
    elif form == 1:
        cv2.ellipse(mask, (size // 2, size // 2), (size // 2, size // 2), 0, 0, 360, 1, -1)
    else:
        k = int(rng.integers(6, 11))
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
        radii = rng.uniform(0.6, 1.0, k)
        pts = np.stack([1 + radii * np.cos(angles), 1 + radii * np.sin(angles)], 1) * (size - 1) / 2
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask


def _texture(image: np.ndarray) -> np.ndarray:
    """Integral image of |gradient| of the luma, for fast box sums."""
    y = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grad = np.abs(cv2.Sobel(y, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(y, cv2.CV_32F, 0, 1))
    return cv2.integral(grad)


def _box_mean(integral: np.ndarray, y: int, x: int, rh: int, rw: int) -> float:
    s = integral[y + rh, x + rw] - integral[y, x + rw] - integral[y + rh, x] + integral[y, x]
    return float(s) / (rh * rw)


def _place(rng, image, kind, area, angle, scale):
    """Choose source region and transform; None when the copy does not fit."""
    h, w = image.shape[:2]
    aspect = rng.uniform(0.6, 1.6)
    shape = region_shape(rng)
    box_area = area / shape.mean()  # so that the region itself, not its box, covers ``area``
    rh = int(np.sqrt(box_area * h * w * aspect))
    rw = int(np.sqrt(box_area * h * w / aspect))
    if rh < 16 or rw < 16 or rh >= h // 2 or rw >= w // 2:
        return None
    integral = _texture(image)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    candidates = []
    for _ in range(16):
        y, x = int(rng.integers(0, h - rh)), int(rng.integers(0, w - rw))
        patch = gray[y : y + rh, x : x + rw]
        if patch.std() < 3.0:  # a truly constant patch (saturated sky, black border): not a clone test
            continue
        candidates.append((_box_mean(integral, y, x, rh, rw), y, x))
    if len(candidates) < 3:
        return None
    candidates.sort()
    third = max(1, len(candidates) // 3)
    pool = candidates[:third] if kind == "flat" else candidates[-third:]
    _, sy, sx = pool[int(rng.integers(0, len(pool)))]
    source = np.zeros((h, w), bool)
    source[sy : sy + rh, sx : sx + rw] = cv2.resize(shape, (rw, rh), interpolation=cv2.INTER_NEAREST) > 0

    a = scale * np.array([[np.cos(np.radians(angle)), -np.sin(np.radians(angle))],
                          [np.sin(np.radians(angle)), np.cos(np.radians(angle))]])  # fmt: skip
    centre = np.array([sx + (rw - 1) / 2, sy + (rh - 1) / 2])
    corners = np.array([[0, 0], [rw, 0], [0, rh], [rw, rh]], float) - np.array([rw, rh]) / 2
    extent = np.abs(corners @ a.T).max(axis=0)  # half-size of the copy's bounding box
    margin = 4
    for _ in range(200):
        tx = rng.uniform(extent[0] + 1, w - extent[0] - 2)
        ty = rng.uniform(extent[1] + 1, h - extent[1] - 2)
        if kind in ("translate", "flat"):  # a clone tool copies by whole pixels
            tx, ty = centre[0] + round(tx - centre[0]), centre[1] + round(ty - centre[1])
        apart_x = abs(tx - centre[0]) > extent[0] + rw / 2 + margin
        apart_y = abs(ty - centre[1]) > extent[1] + rh / 2 + margin
        if apart_x or apart_y:
            matrix = np.hstack([a, (np.array([tx, ty]) - a @ centre)[:, None]])
            return source, matrix.astype(np.float64)
    return None
