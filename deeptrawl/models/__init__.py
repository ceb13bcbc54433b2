"""Learned models: the spatial CNN (whole image and face crops) and the frequency model.

``spatial(name)`` and ``frequency()`` return the trained networks in eval mode, built once
per process, with their committed weights checked against ``weights/SHA256SUMS``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from deeptrawl.models import weights
from deeptrawl.models.frequency import FrequencyNet
from deeptrawl.models.spatial import SpatialNet

#: Model name -> weights file. The names are also the Triton model names.
FILES = {"cnn": "cnn.pt", "face_cnn": "face_cnn.pt", "frequency": "frequency.pt"}


@lru_cache(maxsize=None)
def spatial(name: str, directory: Path = weights.WEIGHTS_DIR) -> SpatialNet:
    net = SpatialNet()
    net.load_trained_state(weights.load_state(FILES[name], directory))
    return net.eval()


@lru_cache(maxsize=None)
def frequency(directory: Path = weights.WEIGHTS_DIR) -> FrequencyNet:
    net = FrequencyNet()
    net.load_state_dict(weights.load_state(FILES["frequency"], directory))
    return net.eval()


def version(name: str) -> str:
    """Short weights id for reports: the first 12 hex digits of the file's sha256."""
    return weights.digest(FILES[name])[:12]
