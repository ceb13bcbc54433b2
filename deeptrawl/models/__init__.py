"""Learned models: the spatial CNN (whole image and face crops) and the frequency model.

``load(name)`` (or ``load_spatial(name)``, ``load_frequency()``) returns a trained network
in eval mode, built once per process, with its committed weights checked against
``weights/SHA256SUMS``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from deeptrawl.models import weights

if TYPE_CHECKING:  # the networks import torch (~1 s, ~140 MiB): only when one is built
    from deeptrawl.models.frequency import FrequencyNet
    from deeptrawl.models.spatial import SpatialNet

#: Model name -> weights file. The names are also the Triton model names.
FILES = {"cnn": "cnn.pt", "face_cnn": "face_cnn.pt", "frequency": "frequency.pt"}


def load(name: str, directory: Path = weights.WEIGHTS_DIR) -> "SpatialNet | FrequencyNet":
    """The trained network ``name`` (a key of ``FILES``)."""
    return load_frequency(directory) if name == "frequency" else load_spatial(name, directory)


@lru_cache(maxsize=None)
def load_spatial(name: str, directory: Path = weights.WEIGHTS_DIR) -> "SpatialNet":
    from deeptrawl.models.spatial import SpatialNet

    net = SpatialNet()
    net.load_trained_state(weights.load_state(FILES[name], directory))
    return net.eval()


@lru_cache(maxsize=None)
def load_frequency(directory: Path = weights.WEIGHTS_DIR) -> "FrequencyNet":
    from deeptrawl.models.frequency import FrequencyNet

    net = FrequencyNet()
    net.load_state_dict(weights.load_state(FILES["frequency"], directory))
    return net.eval()


def version(name: str) -> str:
    """Short weights id for reports: the first 12 hex digits of the file's sha256."""
    return weights.digest(FILES[name])[:12]
