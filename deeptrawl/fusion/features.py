"""Detector results -> the stacker's feature vector.

Two columns per detector, in the order of the model's own ``feature_names``:

* ``<name>``: the score as a logit (clipped to [1e-4, 1 - 1e-4] first, so a detector
  that says 0.0 or 1.0 is strong evidence, not an infinity), or 0 when the detector
  abstained, failed or did not run on this media kind;
* ``<name>:abstained``: 1 in exactly those cases, else 0.

Why the logit: detector scores crowd near 0 and 1, where the difference between 0.99
and 0.9999 is the difference between "probably" and "certainly"; a linear model over
logits can weigh that, one over raw scores cannot. Why an indicator and not an imputed
score: abstaining is information of its own (no metadata at all is common for
re-encoded uploads and rare for camera files), and the indicator lets the model learn
what it is worth instead of pretending the detector said 0.5.

The detector list is data: it is stored with each trained model and read back from
there, so adding a detector means training a new model version, never silently feeding
an old model a column it has not seen. Results from detectors outside the list are
ignored.
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence

import numpy as np

#: The detectors whose results ``stack-v1`` is trained on, in column order.
V1_DETECTORS: tuple[str, ...] = (
    "ela", "noise", "jpeg", "copymove", "spectrum", "metadata", "cnn", "face_cnn", "frequency",
)

_EPS = 1e-4


class ScoredResult(Protocol):
    """What the features need from a result (``DetectorResult`` satisfies it)."""

    @property
    def score(self) -> float | None: ...

    @property
    def error(self) -> object | None: ...


def columns(feature_names: Sequence[str]) -> list[str]:
    """Column names of the feature matrix, for reports and debugging."""
    return [c for name in feature_names for c in (name, f"{name}:abstained")]


def featurize(rows: Sequence[Mapping[str, ScoredResult]], feature_names: Sequence[str]) -> np.ndarray:
    """An ``(len(rows), 2 * len(feature_names))`` float64 matrix; see the module docstring."""
    x = np.zeros((len(rows), 2 * len(feature_names)), dtype=np.float64)
    for j, name in enumerate(feature_names):
        score = np.array([_score(row.get(name)) for row in rows], dtype=np.float64)
        abstained = np.isnan(score)
        s = np.clip(score[~abstained], _EPS, 1.0 - _EPS)
        x[~abstained, 2 * j] = np.log(s / (1.0 - s))
        x[:, 2 * j + 1] = abstained
    return x


def _score(result: ScoredResult | None) -> float:
    """The score, or NaN for "absent, failed or abstained"."""
    if result is None or result.error is not None or result.score is None:
        return np.nan
    return float(result.score)
