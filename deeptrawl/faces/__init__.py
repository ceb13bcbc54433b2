"""Faces: detection with five landmarks, crops, alignment and landmark-based face regions.

Face-manipulation detectors look at faces, not whole photos, and the face-manipulation
generators of the training corpus (face swap, self-blended images) need to know where the
eyes, nose and mouth are. Detection is MTCNN on shipped weights (``deeptrawl.faces.mtcnn``);
everything else here is geometry on its five landmarks, so another detector giving the same
five points could replace it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from deeptrawl.faces import mtcnn

# Five-point template of a 112x112 aligned face (eyes, nose, mouth corners) used by the
# ArcFace/InsightFace family: a widely shared canonical face frame.
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


# eq=False: the landmarks are an array, and dataclass equality on arrays raises.
@dataclass(frozen=True, eq=False)
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    score: float                             # face probability from the last MTCNN stage
    # 5x2 float32 (x, y): left eye, right eye, nose, left and right mouth corner, as seen in the image
    landmarks: np.ndarray

    @property
    def eye_distance(self) -> float:
        """Distance between the eye centres: the face's scale, robust to how the box is cut."""
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))


def as_rgb(image: np.ndarray) -> np.ndarray:
    """HxW or HxWx3 uint8 -> HxWx3 uint8; anything else is a programming error."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected an HxW or HxWx3 uint8 image, got {image.dtype} {image.shape}")
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


def detect_faces(
    rgb: np.ndarray,
    *,
    min_face_size: float = mtcnn.MIN_FACE_SIZE,
    thresholds: tuple[float, float, float] = mtcnn.THRESHOLDS,
    max_side: int | None = None,
) -> list[Face]:
    """Faces in an HxWx3 (or HxW grey) uint8 RGB image, most confident first.

    With ``max_side``, a larger image is searched at that working resolution (the MTCNN
    pyramid over a 12 MP photo costs seconds; faces under ``min_face_size`` pixels there
    are missed) and the coordinates are mapped back to the full image.
    """
    rgb = as_rgb(rgb)
    scale = 1.0
    if max_side is not None and max(rgb.shape[:2]) > max_side:
        scale = max_side / max(rgb.shape[:2])
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    boxes, scores, marks = mtcnn.detect(rgb, min_face_size=min_face_size, thresholds=thresholds)
    faces = []
    for box, score, points in zip(boxes, scores, marks):
        points = (points / scale).astype(np.float32)
        points.setflags(write=False)
        faces.append(Face(box=tuple(float(v) / scale for v in box), score=float(score), landmarks=points))
    return faces


def crop_box(face: Face, margin: float = 0.3) -> tuple[int, int, int, int]:
    """The square (y0, x0, y1, x1) around the face box, grown by ``margin`` of its side.
    It may reach past the image; ``crop_face`` pads there."""
    x0, y0, x1, y1 = face.box
    side = max(x1 - x0, y1 - y0) * (1 + margin)
    left, top = int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2))
    side = max(int(round(side)), 1)
    return top, left, top + side, left + side


def crop_face(rgb: np.ndarray, face: Face, size: int = 224, margin: float = 0.3) -> np.ndarray:
    """A size x size crop of ``crop_box(face, margin)``.

    Parts of the square beyond the image repeat the edge pixels, so a face at the border
    still gives a full crop with the face centred.
    """
    rgb = as_rgb(rgb)
    top, left, bottom, right = crop_box(face, margin)
    side = bottom - top
    h, w = rgb.shape[:2]
    pad = [max(-top, 0), max(bottom - h, 0), max(-left, 0), max(right - w, 0)]
    padded = cv2.copyMakeBorder(rgb, *pad, cv2.BORDER_REPLICATE)
    square = padded[top + pad[0] : top + pad[0] + side, left + pad[2] : left + pad[2] + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform (rotation, uniform scale, shift) taking points src to dst.

    A least-squares fit over all points: the RANSAC threshold is set so high that every
    point is an inlier, because five landmarks have no outliers to reject, and dropping one
    would tilt the fit towards the others.
    """
    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(src, np.float32), np.asarray(dst, np.float32), method=cv2.RANSAC, ransacReprojThreshold=1e6
    )
    if matrix is None:
        raise ValueError("degenerate landmarks: no similarity transform")
    return matrix


def align_to_template(rgb: np.ndarray, face: Face, size: int = 112) -> np.ndarray:
    """The face warped so that its landmarks sit on ``TEMPLATE_112`` scaled to size x size."""
    matrix = similarity(face.landmarks, TEMPLATE_112 * (size / 112))
    return cv2.warpAffine(as_rgb(rgb), matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def face_region(shape: tuple[int, ...], face: Face, scale: float = 1.0) -> np.ndarray:
    """HxW uint8 mask (255 inside) of an ellipse over brows, eyes, nose, cheeks, mouth and chin.

    Five landmarks give no face contour, so the region is an ellipse in the face's own frame
    (tilted with the eye line), sized from the eye distance and the eye-to-mouth distance:
    from about 0.45 eye distances above the eyes (the brows) to about half the eye-to-mouth
    distance below the mouth (the chin), and 0.95 eye distances to each side of the centre
    (the cheeks). ``scale`` grows or shrinks it about its centre.
    """
    eyes = face.landmarks[:2].mean(axis=0)
    mouth = face.landmarks[3:].mean(axis=0)
    across = face.landmarks[1] - face.landmarks[0]
    eye_distance = float(np.linalg.norm(across))
    down = np.array([-across[1], across[0]]) / max(eye_distance, 1e-6)
    eye_to_mouth = float(np.dot(mouth - eyes, down))
    top, bottom = -0.45 * eye_distance, eye_to_mouth * 1.5
    centre = eyes + down * (top + bottom) / 2
    axes = (0.95 * eye_distance * scale, (bottom - top) / 2 * scale)
    angle = float(np.degrees(np.arctan2(across[1], across[0])))
    mask = np.zeros(shape[:2], np.uint8)
    # Drawn at 4x sub-pixel precision (shift=2) so small faces keep their shape.
    cv2.ellipse(
        mask,
        (int(round(centre[0] * 4)), int(round(centre[1] * 4))),
        (max(int(round(axes[0] * 4)), 1), max(int(round(axes[1] * 4)), 1)),
        angle, 0, 360, 255, thickness=-1, lineType=cv2.LINE_8, shift=2,
    )
    return mask
