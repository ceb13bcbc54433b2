"""The frequency model: a small MLP on the forensics suite's spectral feature vector.

Input: ``deeptrawl.detectors.spectrum.spectral_features`` (``FEATURE_NAMES``, 62 values:
spectral correlation, radial power profile, peak strengths, block-DCT statistics), float32,
N x 62. The standardisation is inside the network (buffers), so an exported model takes
the raw features. Output: one logit per image.
"""

from __future__ import annotations

import torch
from torch import nn

HIDDEN = 32


class FrequencyNet(nn.Module):
    def __init__(self, n_features: int | None = None) -> None:
        super().__init__()
        if n_features is None:
            # Imported here: the detectors package imports this module (a cycle otherwise).
            from deeptrawl.detectors.spectrum import FEATURE_NAMES

            n_features = len(FEATURE_NAMES)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.mlp = nn.Sequential(nn.Linear(n_features, HIDDEN), nn.ReLU(), nn.Dropout(0.1), nn.Linear(HIDDEN, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp((x - self.mean) / self.std).squeeze(1)
