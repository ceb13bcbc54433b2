"""What the learned detectors share: versions tied to their weights, and the sigmoid."""

from __future__ import annotations

import math

from deeptrawl import models
from deeptrawl.models.weights import WeightsError


def weights_version(release: str, name: str) -> str:
    """``release+<sha256 prefix>``: retrained weights are a new detector version, so a
    rescan writes new rows instead of skipping objects scored by the old model."""
    try:
        return f"{release}+{models.version(name)[:8]}"
    except (WeightsError, KeyError):
        return f"{release}+untrained"


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
