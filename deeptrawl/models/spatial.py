"""The spatial CNN: EfficientNet-Lite0 (ImageNet) with a fine-tuned tail and a binary head.

Input: uint8 RGB tiles, N x 3 x 224 x 224. Output: one logit per tile (evidence of
manipulation or synthesis). The same network class serves the whole-image detector
(native-resolution tiles, ``deeptrawl.models.tiles``) and the face-crop detector (aligned
face crops); they differ only in their trained weights.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from deeptrawl.models.backbone import FEATURES, Tail, Trunk, efficientnet_lite0


class SpatialNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        net = efficientnet_lite0()
        self.trunk = Trunk(net)
        self.tail = Tail(net)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(FEATURES, 1)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tail(self.trunk(x)))

    def head(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.pool(fmap).flatten(1))).squeeze(1)

    def train(self, mode: bool = True) -> "SpatialNet":
        # Batch-norm statistics stay those of ImageNet: the fine-tuning batches are small and
        # all from one corpus, and re-estimating them would drift the frozen trunk's inputs.
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    # The committed file holds only what training changes (the tail and the head), in
    # float16: the trunk comes from the pinned ImageNet file.
    def trained_state(self) -> dict[str, torch.Tensor]:
        return {k: v.half() if v.is_floating_point() else v for k, v in self.state_dict().items() if not k.startswith("trunk.")}

    def load_trained_state(self, state: dict[str, torch.Tensor]) -> None:
        missing, unexpected = self.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=False)
        missing = [k for k in missing if not k.startswith("trunk.")]
        if missing or unexpected:
            raise RuntimeError(f"weights do not fit SpatialNet: missing {missing[:3]}, unexpected {unexpected[:3]}")


def grad_cam(
    model: SpatialNet, tiles: torch.Tensor, trunk: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and Grad-CAM maps (N x h x w, each scaled to [0, 1]) for a batch of tiles.

    Grad-CAM (Selvaraju et al., ICCV 2017) on the tail's final feature map: channel weights
    are the spatially averaged gradients of the logit, the map is the ReLU of the weighted
    sum. The tiles are independent (batch norm is in eval mode), so one backward pass of the
    summed logits gives every tile its own gradients. No gradient reaches the frozen trunk,
    so ``trunk`` may run it elsewhere (``deeptrawl.models.trunk``: ONNX Runtime).
    """
    with torch.no_grad():
        features = (trunk or model.trunk)(tiles)
    with torch.enable_grad():
        fmap = model.tail(features).detach().requires_grad_(True)
        logits = model.head(fmap)
        (grads,) = torch.autograd.grad(logits.sum(), fmap)
    cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * fmap).sum(1)).detach()
    peak = cam.flatten(1).max(1).values.clamp_min(1e-8)
    return logits.detach(), cam / peak[:, None, None]
