"""Calibrated fusion: a stacking model trained on held-out data combines the detectors.

``features`` turns one object's detector results into a vector, ``stacking`` fits and
applies the model (``FusionModel``), ``calibration`` maps its logit to a probability.
``deeptrawl.verdict.fuse`` uses a ``FusionModel`` when one is installed and the
hand-written ``VerdictRule`` otherwise.

The installed model is the JSON document ``fusion.json`` among the trained weights
(``deeptrawl/models/weights/``, checked against their ``SHA256SUMS``), written by
``deeptrawl train``; without it ``load_default`` returns ``None`` and the rule fuses.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from deeptrawl.fusion.stacking import FusionModel, Training
from deeptrawl.models import weights

if TYPE_CHECKING:
    from deeptrawl.config import VerdictRule

MODEL_FILE = "fusion.json"


def load(directory: Path) -> FusionModel | None:
    """The fusion model recorded in ``directory``'s ``SHA256SUMS``, or ``None``.

    Its version carries the file's digest (``stack-v1+5ebe939b``), as the learned
    detectors' versions do: a refitted fusion changes verdicts, so rows scored by the old
    one belong to another detector set and a rescan writes new ones."""
    if MODEL_FILE not in weights.recorded(directory):
        return None
    model = FusionModel.from_json(weights.read_checked(MODEL_FILE, directory).decode("utf-8"))
    return dataclasses.replace(model, version=f"{model.version}+{weights.digest(MODEL_FILE, directory)[:8]}")


@lru_cache(maxsize=1)
def load_default() -> FusionModel | None:
    """The installed fusion model, or ``None`` when none is installed."""
    return load(weights.WEIGHTS_DIR)


def default_fuser(detector_names: Iterable[str]) -> "VerdictRule | FusionModel":
    """The installed model when every detector it was trained on runs, else the rule: a
    model fed abstentions from detectors that were simply not run would be miscalibrated."""
    from deeptrawl.config import VerdictRule

    model = load_default()
    if model is not None and set(model.feature_names) <= set(detector_names):
        return model
    return VerdictRule()


__all__ = ["MODEL_FILE", "FusionModel", "Training", "default_fuser", "load", "load_default"]
