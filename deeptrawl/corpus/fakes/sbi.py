"""Self-blended images (SBI; Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended
Images", CVPR 2022).

A face blended with a slightly altered copy of itself. No second identity is involved, so
what a detector can learn from these fakes is only what every face swap has in common: a
blending boundary, and a mismatch of colour, sharpness and position between the inner face
and its surroundings. The paper shows detectors trained on such pseudo-fakes generalise to
unseen deepfake methods better than ones trained on the methods' own output.

Following the paper, from one real face:

* source = the photo with source-target augmentations (colour shift, brightness and
  contrast; then sharpening or blurring; sometimes a down-up resize), moved by a small
  random affine transform (a few % of the face size) about the face centre;
* blend mask = a face region, elastically deformed, eroded by a random amount and Gaussian
  blurred, scaled by a blend ratio drawn from {0.25, 0.5, 0.75, 1, 1, 1};
* fake = mask * source + (1 - mask) * target.

The paper's region is the convex hull of 68 landmarks; with MTCNN's five it is the ellipse of
``deeptrawl.faces.face_region``. Sizes here are in eye distances rather than the paper's
pixels of a fixed-size crop, so the same fake comes out of a small or a large face.
"""

from __future__ import annotations

import cv2
import numpy as np

from deeptrawl.corpus.fakes import Fake
from deeptrawl.faces import Face, as_rgb, detect_faces, face_region

KIND = "sbi"
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
SHIFT = 0.03                 # largest source shift, as a fraction of the face box size
SCALE = (0.95, 1 / 0.95)     # source scale range about the face centre
# Blend weights below this fraction of the mask's peak are dropped (the feather is remapped
# to start from zero there), so the boolean mask holds every pixel the blend changes.
MASK_FLOOR = 0.05


def _augment(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour, then sharpness, then sometimes resolution: the discrepancies SBI teaches."""
    image = rgb.astype(np.float32)
    image += rng.uniform(-20, 20, size=3).astype(np.float32)        # per-channel shift
    contrast, brightness = rng.uniform(0.9, 1.1), rng.uniform(-0.1, 0.1) * 255
    image = (image - image.mean()) * contrast + image.mean() + brightness
    if rng.random() < 0.5:
        blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=1.0)
        image += rng.uniform(0.5, 1.5) * (image - blurred)  # unsharp mask
    else:
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=rng.uniform(0.5, 1.5))
    if rng.random() < 0.5:
        h, w = image.shape[:2]
        factor = rng.uniform(0.5, 0.9)
        small = cv2.resize(image, (max(int(w * factor), 1), max(int(h * factor), 1)), interpolation=cv2.INTER_AREA)
        image = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def _move(rgb: np.ndarray, face: Face, rng: np.random.Generator) -> np.ndarray:
    """Shift and scale the image a little about the face centre."""
    x0, y0, x1, y1 = face.box
    size = max(x1 - x0, y1 - y0)
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    matrix = cv2.getRotationMatrix2D(centre, 0.0, rng.uniform(*SCALE))
    matrix[:, 2] += rng.uniform(-SHIFT, SHIFT, size=2) * size
    h, w = rgb.shape[:2]
    return cv2.warpAffine(rgb, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def _blend_mask(shape: tuple[int, ...], face: Face, rng: np.random.Generator) -> np.ndarray:
    """HxW float32 blend weights in [0, 1], zero outside the deformed, blurred face region."""
    d = face.eye_distance
    region = face_region(shape, face, scale=rng.uniform(0.9, 1.1)).astype(np.float32) / 255
    h, w = region.shape
    # Elastic deformation: a smooth random displacement field, interpolated from a coarse
    # grid of random vectors about half an eye distance apart.
    cell = max(d / 2, 4.0)
    grid = rng.uniform(-1, 1, size=(int(np.ceil(h / cell)) + 1, int(np.ceil(w / cell)) + 1, 2)).astype(np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) * np.float32(rng.uniform(0.03, 0.1) * d)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    region = cv2.remap(region, xs + field[:, :, 0], ys + field[:, :, 1], cv2.INTER_LINEAR, borderValue=0)
    radius = int(round(rng.uniform(0, 0.15) * d))
    if radius:
        region = cv2.erode(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
    blurred = cv2.GaussianBlur(region, (0, 0), sigmaX=max(rng.uniform(0.05, 0.25) * d, 0.5))
    peak = float(blurred.max())
    if peak <= 0:
        return blurred
    shape_weight = np.clip((blurred / peak - MASK_FLOOR) / (1 - MASK_FLOOR), 0, 1)
    return shape_weight * np.float32(BLEND_RATIOS[rng.integers(len(BLEND_RATIOS))])


def make(rgb: np.ndarray, rng: np.random.Generator, face: Face | None = None) -> Fake | None:
    """A self-blended fake of the photo's most confident face (or ``face``); None if no face."""
    target = as_rgb(rgb)
    if face is None:
        faces = detect_faces(target)
        if not faces:
            return None
        face = faces[0]
    source = _move(_augment(target, rng), face, rng)
    weight = _blend_mask(target.shape, face, rng)
    mask = weight > 0
    if not mask.any():  # the face region fell entirely off the image
        return None
    alpha = weight[:, :, None]
    out = np.clip(alpha * source + (1 - alpha) * target + 0.5, 0, 255).astype(np.uint8)
    return Fake(rgb=out, mask=mask, kind=KIND)
