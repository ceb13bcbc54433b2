"""Face swap: the inner face of one photo (the donor) pasted onto the face in another (the target).

This is the classic landmark-based swap behind the first deepfake datasets (FaceForensics++'s
FaceSwap method: fit the donor face to the target's landmarks, colour-correct, blend), minus
the 3D model: with five MTCNN landmarks the fit is a similarity transform, and the region is
an ellipse over brows, eyes, nose, cheeks, mouth and chin (``deeptrawl.faces.face_region``).

It leaves the traces face-swap detectors learn from: a blending boundary, a colour and
sharpness mismatch between the inner face and its surroundings, resampling from the warp,
and identity cues that disagree with the rest of the head.

Steps: most confident face in each image; donor warped onto the target with the similarity
between their landmarks; Reinhard colour transfer (Reinhard et al., "Color Transfer between
Images", 2001: match the per-channel mean and standard deviation in a decorrelated colour
space; OpenCV's CIELAB stands in for the paper's lab space) from the target face to the
warped donor face; then, chosen at random, Poisson blending (``cv2.seamlessClone``, Pérez et
al. 2003) or alpha blending with a Gaussian-feathered mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from deeptrawl.corpus.fakes import Fake
from deeptrawl.faces import Face, as_rgb, detect_faces, face_region, similarity

KIND = "faceswap"
REGION_SCALE = (0.85, 1.05)      # random size of the swapped ellipse, relative to face_region's
FEATHER = (0.05, 0.15)           # alpha-blend feather sigma, in eye distances
POISSON_PROBABILITY = 0.5
# seamlessClone needs the mask clear of the image edge (its solver reads one pixel around it).
EDGE = 2


def reinhard(source: np.ndarray, target: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``source`` recoloured so that, over the pixels ``where``, its CIELAB mean and standard
    deviation per channel match ``target``'s."""
    src = cv2.cvtColor(source.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
    dst = cv2.cvtColor(target.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
    s, d = src[where], dst[where]
    src = (src - s.mean(axis=0)) * (d.std(axis=0) / np.maximum(s.std(axis=0), 1e-3)) + d.mean(axis=0)
    rgb = cv2.cvtColor(src.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


def _best_face(rgb: np.ndarray) -> Face | None:
    faces = detect_faces(rgb)
    return faces[0] if faces else None


def make(
    target: np.ndarray,
    donor: np.ndarray,
    rng: np.random.Generator,
    *,
    target_face: Face | None = None,
    donor_face: Face | None = None,
) -> Fake | None:
    """The target photo with the donor's face swapped in; None if either has no face.

    Faces not given are detected (the most confident one); a corpus builder that pairs one
    photo with many others passes them to detect each photo once.
    """
    target, donor = as_rgb(target), as_rgb(donor)
    face = target_face if target_face is not None else _best_face(target)
    donor_face = donor_face if donor_face is not None else _best_face(donor)
    if face is None or donor_face is None:
        return None
    h, w = target.shape[:2]

    warped = cv2.warpAffine(
        donor, similarity(donor_face.landmarks, face.landmarks), (w, h),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101,
    )
    region = face_region(target.shape, face, scale=rng.uniform(*REGION_SCALE))
    region[:EDGE], region[-EDGE:], region[:, :EDGE], region[:, -EDGE:] = 0, 0, 0, 0
    inside = region > 0
    if inside.sum() < 16:  # a face almost entirely off the image: nothing to swap
        return None
    warped = reinhard(warped, target, inside)

    if rng.random() < POISSON_PROBABILITY:
        x, y, bw, bh = cv2.boundingRect(region)
        # seamlessClone writes into its mask argument, hence the copy; the centre is where
        # the mask's bounding box centre lands, so this keeps the donor where it was warped.
        cloned = cv2.seamlessClone(warped, target, region.copy(), (x + bw // 2, y + bh // 2), cv2.NORMAL_CLONE)
        # The solver also changes a band a few pixels wide just outside the mask (by up to
        # tens of levels where the images differ most); keeping only the inside makes the
        # mask exactly the changed region, and the Poisson solution already meets the
        # target at the mask's edge.
        out = np.where(inside[:, :, None], cloned, target)
        mask = inside
    else:
        sigma = rng.uniform(*FEATHER) * face.eye_distance
        alpha = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), sigmaX=max(sigma, 0.5))
        # Below half a grey level even a full-range difference would round away: make it exact.
        alpha[alpha < 0.5 / 255] = 0
        mask = alpha > 0
        blended = alpha[:, :, None] * warped + (1 - alpha[:, :, None]) * target
        out = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return Fake(rgb=out, mask=mask, kind=KIND)
