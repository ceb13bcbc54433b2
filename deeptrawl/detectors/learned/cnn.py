"""Spatial CNN detectors: EfficientNet-Lite0 fine-tuned on the corpus (``deeptrawl train``).

``cnn`` scores the whole image from native-resolution tiles (``deeptrawl.models.tiles``);
``face_cnn`` scores the most confident face, cropped by the MTCNN face detector, and
abstains when there is no face. Both explain themselves with a Grad-CAM heatmap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import cv2
import numpy as np

from deeptrawl import models
from deeptrawl.detectors.base import Detector, DetectorResult, Evidence, Finding
from deeptrawl.detectors.learned.common import sigmoid, weights_version
from deeptrawl.detectors.registry import register
from deeptrawl.errors import DetectorFailed
from deeptrawl.media.item import MediaItem
from deeptrawl.media.sniff import MediaKind
from deeptrawl.models import tiles, weights

FLAG = 0.5
FACE_MARGIN = 0.3
#: Faces are searched at most at this resolution (the corpus images are smaller, so training
#: and inference see the same detections there).
FACE_SEARCH_SIDE = 1024
MIN_FACE_SCORE = 0.95
#: Tiles per image side (so at most this squared per image): the cost/coverage trade-off.
MAX_PER_SIDE = 2


@dataclass(frozen=True)
class _Job:
    item: MediaItem
    tiles: np.ndarray  # N x 3 x 224 x 224 uint8
    placement: Any     # where the tiles came from, for the heatmap


class _SpatialDetector(Detector):
    media_kinds = frozenset({MediaKind.IMAGE})
    batched = True
    model_name: ClassVar[str]

    def __init__(self, weights_dir: Path = weights.WEIGHTS_DIR) -> None:
        self.weights_dir = weights_dir  # another folder: while training, before installing

    def setup(self) -> None:
        # torch is imported here, when a worker loads the model, not when detectors register.
        from deeptrawl.models.trunk import trunk

        self.model = models.load_spatial(self.model_name, self.weights_dir)
        self.trunk = trunk()

    def analyze(self, batch: Sequence[MediaItem]) -> list[DetectorResult]:
        if not hasattr(self, "model"):
            self.setup()
        prepared: list[_Job | DetectorResult] = []
        for item in batch:
            try:
                prepared.append(self.prepare(item))
            except Exception as exc:  # one bad input must not lose the batch
                prepared.append(DetectorResult.failed(DetectorFailed(f"{self.name}: {type(exc).__name__}: {exc}")))
        jobs = [p for p in prepared if isinstance(p, _Job)]
        if not jobs:
            return prepared  # type: ignore[return-value]
        # One forward (and Grad-CAM backward) pass for every tile of the batch.
        import torch

        from deeptrawl.models.spatial import grad_cam

        try:
            logits, cams = grad_cam(self.model, torch.from_numpy(np.concatenate([j.tiles for j in jobs])), self.trunk)
        except Exception as exc:  # e.g. out of memory: every input of the batch gets the reason
            failed = DetectorResult.failed(DetectorFailed(f"{self.name}: {type(exc).__name__}: {exc}"))
            return [p if isinstance(p, DetectorResult) else failed for p in prepared]
        bounds = np.cumsum([0] + [len(j.tiles) for j in jobs])
        outputs = {id(j): (logits[a:b].numpy(), cams[a:b].numpy()) for j, a, b in zip(jobs, bounds, bounds[1:])}
        return [p if isinstance(p, DetectorResult) else self.result(p, *outputs[id(p)]) for p in prepared]

    def prepare(self, item: MediaItem) -> _Job | DetectorResult:
        raise NotImplementedError

    def result(self, job: _Job, logits: np.ndarray, cams: np.ndarray) -> DetectorResult:
        raise NotImplementedError


def _paste(heat: np.ndarray, cam: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """Resize a network map to the square crop ``box`` (y0, x0, y1, x1; it may reach past the
    image, where the crop was padded) and keep the maximum where it lands on the image."""
    y0, x0, y1, x1 = box
    h, w = heat.shape
    up = cv2.resize(cam.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    iy0, ix0, iy1, ix1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
    if iy1 > iy0 and ix1 > ix0:
        view = heat[iy0:iy1, ix0:ix1]
        np.maximum(view, up[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0], out=view)


@register
class CnnDetector(_SpatialDetector):
    """EfficientNet-Lite0 fine-tuned on whole-image tiles."""

    name = "cnn"
    version = weights_version("1.0.0", "cnn")
    model_name = "cnn"

    def prepare(self, item: MediaItem) -> _Job:
        rgb = item.rgb
        corners = tiles.positions(*rgb.shape[:2], max_per_side=MAX_PER_SIDE)
        return _Job(item, tiles.extract(rgb, corners), corners)

    def result(self, job: _Job, logits: np.ndarray, cams: np.ndarray) -> DetectorResult:
        corners = job.placement
        h, w = job.item.rgb.shape[:2]
        score = sigmoid(tiles.pool_logits(logits))
        # A tile scored 0.9 lights its Grad-CAM at full strength, one scored 0.1 barely
        # shows: weighting by the tile's score keeps the map honest about doubt.
        heat = np.zeros((h, w), np.float32)
        for cam, logit, (y, x) in zip(cams, logits, corners):
            _paste(heat, cam * sigmoid(float(logit)), (y, x, y + tiles.TILE, x + tiles.TILE))
        findings = ()
        if score >= FLAG:
            findings = (Finding("cnn_synthetic", f"the image CNN finds manipulation or synthesis traces (score {score:.2f})", score),)
        details = {"tile_logits": [round(float(v), 4) for v in logits], "tiles": len(corners), "weights": self.version}
        return DetectorResult(score=score, findings=findings, details=details,
                              evidence=(Evidence("gradcam", "heatmap", heat, "Grad-CAM of the image CNN"),))


@register
class FaceCnnDetector(_SpatialDetector):
    """EfficientNet-Lite0 fine-tuned on MTCNN face crops (face swaps, blended faces)."""

    name = "face_cnn"
    version = weights_version("1.0.0", "face_cnn")
    model_name = "face_cnn"

    def prepare(self, item: MediaItem) -> _Job | DetectorResult:
        from deeptrawl.faces import crop_face, detect_faces

        rgb = item.rgb
        faces = [f for f in detect_faces(rgb, max_side=FACE_SEARCH_SIDE) if f.score >= MIN_FACE_SCORE]
        if not faces:
            return DetectorResult.abstain("no face found")
        face = faces[0]
        crop = crop_face(rgb, face, size=tiles.TILE, margin=FACE_MARGIN)
        return _Job(item, np.ascontiguousarray(crop.transpose(2, 0, 1)[None]), (face, len(faces)))

    def result(self, job: _Job, logits: np.ndarray, cams: np.ndarray) -> DetectorResult:
        from deeptrawl.faces import crop_box

        face, n_faces = job.placement
        score = sigmoid(float(logits[0]))
        heat = np.zeros(job.item.rgb.shape[:2], np.float32)
        _paste(heat, cams[0] * score, crop_box(face, FACE_MARGIN))
        findings = ()
        if score >= FLAG:
            findings = (Finding("face_manipulated", f"the face CNN finds a swapped or blended face (score {score:.2f})", score),)
        details = {"faces": n_faces, "face_box": [round(float(v), 1) for v in face.box], "face_score": round(float(face.score), 3),
                   "weights": self.version}
        return DetectorResult(score=score, findings=findings, details=details,
                              evidence=(Evidence("gradcam", "heatmap", heat, "Grad-CAM of the face CNN"),))

