"""Local edits: splices (a region of another picture pasted in) and copy-moves (clones).

Splice: a region of a rectangle, an ellipse or a random star-shaped polygon, covering
3-15% of the picture, is cut from a donor picture (of the same split: the builder sees to
it), scaled by 0.75-1.33 and pasted with a hard edge or feathered (Gaussian-blurred
alpha, sigma 1-4 px), as a quick manual forgery would be. The donor's different camera,
noise and compression history is the trace.

Copy-move: one region of the picture copied elsewhere in the same picture, shifted by
whole pixels, rotated, scaled or both, exactly as ``deeptrawl.samples.corpus_copymove``
makes its ground truth (the region shapes, the textured-source choice and the
non-overlapping placement are that module's ``region_shape`` and ``clone``).

The mask is the pasted region (for copy-move: the copy, not its source).
"""

from __future__ import annotations

import cv2
import numpy as np

from deeptrawl.corpus.fakes import Fake
from deeptrawl.samples.corpus_copymove import clone, region_shape

SPLICE_METHODS = ("hard", "feather")
COPYMOVE_METHODS = ("translate", "rotate", "scale", "rotate_scale")


def splice(target: np.ndarray, donor: np.ndarray, rng: np.random.Generator, method: str | None = None) -> Fake | None:
    """A region of ``donor`` pasted into ``target``; None when the donor is too small."""
    method = method or SPLICE_METHODS[int(rng.integers(len(SPLICE_METHODS)))]
    h, w = target.shape[:2]
    area, aspect, scale = rng.uniform(0.03, 0.15), rng.uniform(0.6, 1.6), rng.uniform(0.75, 1.33)
    shape = region_shape(rng)
    box = area * h * w / shape.mean()  # so that the region itself, not its box, covers ``area``
    rh, rw = min(int(np.sqrt(box * aspect)), h - 2), min(int(np.sqrt(box / aspect)), w - 2)
    sh, sw = int(rh / scale), int(rw / scale)  # the region's size in the donor
    dh, dw = donor.shape[:2]
    if rh < 8 or rw < 8 or sh > dh or sw > dw:
        return None
    sy, sx = int(rng.integers(0, dh - sh + 1)), int(rng.integers(0, dw - sw + 1))
    ty, tx = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
    cut = np.ascontiguousarray(donor[sy : sy + sh, sx : sx + sw])
    patch = cv2.resize(cut, (rw, rh), interpolation=cv2.INTER_LINEAR)
    region = cv2.resize(shape, (rw, rh), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    alpha = np.zeros((h, w), np.float32)
    alpha[ty : ty + rh, tx : tx + rw] = region
    if method == "feather":
        alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(1.0, 4.0))
    pasted = target.astype(np.float32)
    pasted[ty : ty + rh, tx : tx + rw] = patch
    a = alpha[:, :, None]
    out = np.clip(np.rint(a * pasted + (1 - a) * target), 0, 255).astype(np.uint8)
    return Fake(rgb=out, mask=alpha >= 0.5, kind="splice")


def copymove(rgb: np.ndarray, rng: np.random.Generator, method: str | None = None) -> Fake | None:
    """One region of ``rgb`` cloned elsewhere in it; None when no copy fits."""
    method = method or COPYMOVE_METHODS[int(rng.integers(len(COPYMOVE_METHODS)))]
    cloned = clone(rgb, rng, method, attempts=8)
    if cloned is None:
        return None
    out, target, _ = cloned
    return Fake(rgb=out, mask=target, kind="copymove")
