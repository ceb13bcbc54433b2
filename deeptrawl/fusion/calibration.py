"""Stacker logit -> calibrated probability, fitted on out-of-fold logits.

Two maps, both monotone (so they never change the ranking, only what a score means):

* ``Platt`` (the default): ``p = sigmoid(a * z + b)``. Two parameters, smooth, and
  enough here because the stacker is itself a logistic regression: its logits already
  have the right *shape*, and what cross-fitting reveals is a wrong *scale* (logits
  over-confident when the stacker overfits, under-confident when the L2 penalty bites).
  With a few hundred calibration objects per class two parameters are also all the
  data can pin down.
* ``Isotonic``: the best non-decreasing step function (pool-adjacent-violators),
  interpolated linearly between steps. It corrects any monotone distortion but needs
  thousands of objects to be stable, and its plateaus tie many scores, which coarsens
  the operating thresholds. Use it when a reliability diagram shows a bend that a
  sigmoid cannot follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

CalibrationKind = Literal["platt", "isotonic"]


@dataclass(frozen=True, kw_only=True)
class Platt:
    kind: ClassVar[str] = "platt"
    a: float
    b: float

    def apply(self, logits: np.ndarray) -> np.ndarray:
        return expit(self.a * np.asarray(logits, dtype=np.float64) + self.b)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "a": self.a, "b": self.b}

    @classmethod
    def fit(cls, logits: np.ndarray, labels: np.ndarray) -> "Platt":
        z = np.asarray(logits, dtype=np.float64)
        y = np.asarray(labels, dtype=bool)
        n_pos, n_neg = int(y.sum()), int((~y).sum())
        # Platt's smoothed targets: with perfectly separated logits plain 0/1 targets
        # drive the slope to infinity; these keep it finite and barely move it otherwise.
        t = np.where(y, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            u = theta[0] * z + theta[1]
            g = (expit(u) - t) / len(z)
            return float(np.mean(np.logaddexp(0.0, u) - t * u)), np.array([g @ z, g.sum()])

        res = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
        return cls(a=float(res.x[0]), b=float(res.x[1]))


@dataclass(frozen=True, kw_only=True)
class Isotonic:
    kind: ClassVar[str] = "isotonic"
    #: Strictly increasing logits and the calibrated probability at each.
    x: tuple[float, ...]
    y: tuple[float, ...]

    def apply(self, logits: np.ndarray) -> np.ndarray:
        # np.interp holds the end values outside the fitted range.
        return np.interp(np.asarray(logits, dtype=np.float64), self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "x": list(self.x), "y": list(self.y)}

    @classmethod
    def fit(cls, logits: np.ndarray, labels: np.ndarray) -> "Isotonic":
        # Tied logits must share one value: pool them before PAV.
        xs, inverse = np.unique(np.asarray(logits, dtype=np.float64), return_inverse=True)
        weight = np.bincount(inverse).astype(np.float64)
        mean = np.bincount(inverse, weights=np.asarray(labels, dtype=np.float64)) / weight
        # Pool adjacent violators: blocks of (value, weight, first index, last index).
        blocks: list[list[float]] = []
        for i, (v, w) in enumerate(zip(mean, weight)):
            blocks.append([v, w, i, i])
            while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
                v2, w2, _, last = blocks.pop()
                v1, w1, first, _ = blocks.pop()
                blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, first, last])
        x: list[float] = []
        y: list[float] = []
        for v, _, first, last in blocks:
            for k in sorted({int(first), int(last)}):
                x.append(float(xs[k]))
                y.append(float(v))
        return cls(x=tuple(x), y=tuple(y))


Calibrator = Platt | Isotonic
_KINDS: dict[str, type[Platt] | type[Isotonic]] = {"platt": Platt, "isotonic": Isotonic}


def fit_calibrator(kind: CalibrationKind, logits: np.ndarray, labels: np.ndarray) -> Calibrator:
    try:
        return _KINDS[kind].fit(logits, labels)
    except KeyError:
        raise ValueError(f"unknown calibration {kind!r}; choose one of {', '.join(_KINDS)}") from None


def calibrator_from_dict(data: Mapping[str, Any]) -> Calibrator:
    kind = data["kind"]
    if kind == "platt":
        return Platt(a=float(data["a"]), b=float(data["b"]))
    if kind == "isotonic":
        x, y = tuple(map(float, data["x"])), tuple(map(float, data["y"]))
        if len(x) != len(y) or not x or np.any(np.diff(x) <= 0):
            raise ValueError("isotonic calibration needs equally many, strictly increasing x and y")
        return Isotonic(x=x, y=y)
    raise ValueError(f"unknown calibration kind {kind!r}")
