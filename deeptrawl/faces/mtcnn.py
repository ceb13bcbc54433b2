"""MTCNN face detection (Zhang et al., "Joint Face Detection and Alignment using Multi-task
Cascaded Convolutional Networks", IEEE SPL 2016), run on the weights facenet-pytorch ships.

Why MTCNN: it is small (three nets, under 2 MB of weights), runs on the CPU in a fraction of
a second per photo, and gives the five landmarks that face alignment, face swaps and
self-blended images need. Why these weights: facenet-pytorch (MIT licence) ships them as
plain state dicts inside its wheel, so nothing is downloaded at run time (it converted them
from davidsandberg/facenet's TensorFlow port of the authors' Caffe models). Its package cannot
be imported here (it imports torchvision, absent and incompatible with our torch), so the
nets are redefined below with the same parameter names and only the data files are read.

The cascade:

1. P-Net, fully convolutional, slides a 12x12 window over an image pyramid (each level
   0.709 times the previous, the first scaled so that ``min_face_size`` becomes 12 px);
   windows scoring over ``thresholds[0]`` become candidates, refined by their regression
   and merged by non-maximum suppression.
2. R-Net re-scores 24x24 crops of the (squared) candidates and refines them again.
3. O-Net re-scores 48x48 crops, refines the box a last time and predicts five landmarks.

Crops reaching past the image are zero-padded, as in the original implementation, rather
than clipped and stretched. The flattening before the dense layers is transposed to
(width, height, channel) order because the weights were converted from a Caffe/TensorFlow
port that flattened that way.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

PYRAMID_FACTOR = 0.709
MIN_FACE_SIZE = 20
THRESHOLDS = (0.6, 0.7, 0.7)
INSTALL_HINT = "pip install --no-deps facenet-pytorch==2.6.0"


class PNet(nn.Module):
    """Proposal net: 12x12 receptive field, stride 2; outputs box regression and face probability."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)[:, 1]


class RNet(nn.Module):
    """Refinement net on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).flatten(1)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """Output net on 48x48 crops: box regression, five landmarks, face probability."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).flatten(1)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


def weights_dir() -> Path:
    """The folder of facenet-pytorch's shipped weight files, found without importing it."""
    spec = importlib.util.find_spec("facenet_pytorch")
    folder = Path(spec.submodule_search_locations[0], "data") if spec and spec.submodule_search_locations else None
    if folder is None or not all((folder / f"{name}.pt").is_file() for name in ("pnet", "rnet", "onet")):
        raise RuntimeError(f"MTCNN weight files not found; install them with: {INSTALL_HINT}")
    return folder


@lru_cache(maxsize=1)
def nets() -> tuple[PNet, RNet, ONet]:
    """The three nets with their weights, loaded once per process, in eval mode."""
    folder = weights_dir()
    pnet, rnet, onet = PNet(), RNet(), ONet()
    for name, net in (("pnet", pnet), ("rnet", rnet), ("onet", onet)):
        net.load_state_dict(torch.load(folder / f"{name}.pt", map_location="cpu", weights_only=True))
        net.eval().requires_grad_(False)
    return pnet, rnet, onet


def _normalise(batch: np.ndarray) -> torch.Tensor:
    """NxHxWx3 uint8 -> Nx3xHxW float in [-1, 1), the range the nets were trained on."""
    return (torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float() - 127.5) * 0.0078125


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best first.

    ``by_min`` divides the overlap by the smaller area instead of the union: the final stage
    uses it so that a box nested inside a bigger detection of the same face is dropped.
    """
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = w * h
        denom = np.minimum(areas[i], areas[rest]) if by_min else areas[i] + areas[rest] - inter
        order = rest[inter / np.maximum(denom, 1e-9) <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
    return boxes + offsets * size


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square about its centre: the nets' inputs are square."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = np.max(boxes[:, 2:] - boxes[:, :2], axis=1, keepdims=True) / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def _crops(rgb: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Each box cut out of the image (zero outside it) and resized to size x size."""
    h, w = rgb.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    for k, (x0, y0, x1, y1) in enumerate(np.round(boxes).astype(np.int64)):
        bw, bh = max(x1 - x0, 1), max(y1 - y0, 1)
        patch = np.zeros((bh, bw, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + bw, w), min(y0 + bh, h)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


def _propose(rgb: np.ndarray, pnet: PNet, min_face_size: float, threshold: float) -> np.ndarray:
    """Stage 1 over the pyramid: Nx5 (box, score) candidates, squared."""
    h, w = rgb.shape[:2]
    scale = 12.0 / min_face_size
    found = []
    while min(h, w) * scale >= 12:
        level = cv2.resize(rgb, (int(np.ceil(w * scale)), int(np.ceil(h * scale))), interpolation=cv2.INTER_AREA)
        reg, prob = pnet(_normalise(level[None]))
        prob, reg = prob[0].numpy(), reg[0].numpy()
        ys, xs = np.nonzero(prob >= threshold)
        if ys.size:
            # Output cell (y, x) saw the 12x12 window at (2x, 2y) of this pyramid level.
            corner = np.stack([xs, ys], axis=1) * 2.0
            boxes = np.concatenate([corner, corner + 12.0], axis=1) / scale
            scores = prob[ys, xs]
            boxes = _regress(boxes, reg[:, ys, xs].T)
            keep = nms(boxes, scores, 0.5)
            found.append(np.concatenate([boxes[keep], scores[keep, None]], axis=1))
        scale *= PYRAMID_FACTOR
    if not found:
        return np.zeros((0, 5), np.float32)
    cands = np.concatenate(found)
    cands = cands[nms(cands[:, :4], cands[:, 4], 0.7)]
    return np.concatenate([_square(cands[:, :4]), cands[:, 4:]], axis=1)


@torch.inference_mode()
def detect(
    rgb: np.ndarray,
    *,
    min_face_size: float = MIN_FACE_SIZE,
    thresholds: tuple[float, float, float] = THRESHOLDS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces in an HxWx3 uint8 RGB image: boxes Nx4 (x0, y0, x1, y1), scores N, landmarks Nx5x2.

    Landmarks are (x, y) in image coordinates, in the order left eye, right eye, nose, left
    mouth corner, right mouth corner, left and right as seen in the image. Sorted by score.
    """
    pnet, rnet, onet = nets()
    empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
    cands = _propose(rgb, pnet, min_face_size, thresholds[0])
    if not len(cands):
        return empty

    reg, prob = rnet(_normalise(_crops(rgb, cands[:, :4], 24)))
    ok = prob.numpy() > thresholds[1]
    boxes, scores, reg = cands[ok, :4], prob.numpy()[ok], reg.numpy()[ok]
    if not len(boxes):
        return empty
    keep = nms(boxes, scores, 0.7)
    boxes = _square(_regress(boxes[keep], reg[keep]))

    reg, points, prob = onet(_normalise(_crops(rgb, boxes, 48)))
    ok = prob.numpy() > thresholds[2]
    boxes, scores, reg, points = boxes[ok], prob.numpy()[ok], reg.numpy()[ok], points.numpy()[ok]
    if not len(boxes):
        return empty
    # Landmarks come as five x then five y, as fractions of the O-Net input box.
    size = boxes[:, 2:] - boxes[:, :2]
    marks = np.stack([points[:, :5], points[:, 5:]], axis=2) * size[:, None, :] + boxes[:, None, :2]
    boxes = _regress(boxes, reg)
    keep = nms(boxes, scores, 0.7, by_min=True)
    return boxes[keep].astype(np.float32), scores[keep].astype(np.float32), marks[keep].astype(np.float32)
