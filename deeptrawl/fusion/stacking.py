"""The stacking fusion model: detector results -> one calibrated probability.

Training (``FusionModel.fit``) on labelled detector results for objects the detectors
were not trained or tuned on (``deeptrawl train`` uses out-of-fold scores of its networks):

1. Features per object (``features.py``): each detector's score as a logit plus an
   "abstained" indicator.
2. A logistic regression over the standardised features with an L2 penalty on the
   weights (the intercept is not penalised), fitted by L-BFGS on the mean log-loss.
3. K-fold cross-fitting (stratified and seeded, or folds the caller gives: ``deeptrawl
   train`` passes folds of whole source groups, so that no fold's stacker has seen the
   held-out scenes): each fold's stacker is fitted on the other folds and scores the
   held-out one, which gives an out-of-fold (OOF) logit for every object that no model
   saw in training. The calibration map
   (``calibration.py``) is fitted on these OOF logits, because in-sample logits of
   any fitted model are over-confident about the very objects it was fitted on.
4. Operating thresholds from the OOF calibrated probabilities: ``t_synthetic`` is the
   lowest one that flags at most ``target_fpr`` of the real objects, ``t_authentic``
   the highest one that clears at most ``max_missed`` of the synthetic ones (never
   above ``t_synthetic``); in between is "inconclusive".
5. The stacker refitted on all of the split, followed by the calibration map from 3.

Limits, said plainly: the probability is calibrated for the mix of media and
manipulations in the calibration split (its recipe is stored in ``training.data``),
and for its class balance; an archive with another base rate of fakes needs the
thresholds re-chosen, not the detectors re-trained. The calibration map was fitted to
fold models that each saw (K-1)/K of the split, and the refitted stacker saw all of
it, so its logits are a little less over-confident than the ones the map corrects;
with a handful of detectors and thousands of objects the difference is negligible.
A linear stacker cannot learn that
two detectors matter only together; it was chosen because its weights can be read and
``explain`` can say which detectors drove a verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from deeptrawl.errors import ConfigError
from deeptrawl.fusion.calibration import CalibrationKind, Calibrator, calibrator_from_dict, fit_calibrator
from deeptrawl.fusion.features import V1_DETECTORS, ScoredResult, featurize
from deeptrawl.metrics import expected_calibration_error, roc_auc


@dataclass(frozen=True, kw_only=True)
class Training:
    """How a model was trained: enough to judge it and to train it again."""

    n_real: int
    n_synthetic: int
    #: AUC of the out-of-fold logits: the ranking quality to expect on unseen objects.
    cv_auc: float
    #: Expected calibration error (15 equal-width bins) of the OOF calibrated probabilities.
    oof_ece: float
    folds: int
    seed: int
    l2: float
    target_fpr: float
    max_missed: float
    #: Free text: which corpus, which split, which detector versions produced the scores.
    data: str


@dataclass(frozen=True, kw_only=True)
class FusionModel:
    """A trained stacker with its calibration and thresholds; immutable and picklable."""

    version: str
    #: The detectors whose results are the features, in column order (see ``features.py``).
    feature_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float
    calibration: Calibrator
    t_synthetic: float
    t_authentic: float
    training: Training

    # -- use -------------------------------------------------------------------------

    def logit(self, rows: Sequence[Mapping[str, ScoredResult]]) -> np.ndarray:
        """The stacker's logit per row, before calibration."""
        return self._standardise(featurize(rows, self.feature_names)) @ np.asarray(self.weights) + self.intercept

    def predict(self, rows: Sequence[Mapping[str, ScoredResult]]) -> np.ndarray:
        """The calibrated probability that each row's object is manipulated or synthetic."""
        return self.calibration.apply(self.logit(rows))

    def explain(self, row: Mapping[str, ScoredResult]) -> dict[str, float]:
        """Each detector's additive share of the logit (score and abstention columns
        together): ``intercept + sum(explain(row).values()) == logit([row])[0]``.
        Positive pushes towards "synthetic"; the largest magnitudes drove the verdict."""
        terms = self._standardise(featurize([row], self.feature_names))[0] * np.asarray(self.weights)
        return {name: float(terms[2 * j] + terms[2 * j + 1]) for j, name in enumerate(self.feature_names)}

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return (x - np.asarray(self.mean)) / np.asarray(self.std)

    # -- training --------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        rows: Sequence[Mapping[str, ScoredResult]],
        labels: Sequence[bool],
        *,
        feature_names: Sequence[str] = V1_DETECTORS,
        calibration: CalibrationKind = "platt",
        folds: int = 5,
        fold_of: Sequence[int] | None = None,
        seed: int = 0,
        l2: float = 1e-3,
        target_fpr: float = 0.01,
        max_missed: float = 0.05,
        data: str = "",
        version: str = "stack-v1",
    ) -> "FusionModel":
        """Train on labelled detector results (``labels``: True = synthetic/manipulated).
        ``fold_of`` (fold index per row, ``0 .. k-1``) replaces the stratified ``folds``.
        Deterministic for a given ``seed``; see the module docstring for the steps."""
        x = featurize(rows, feature_names)
        y = np.asarray(labels, dtype=bool)
        if len(y) != len(x):
            raise ValueError(f"{len(x)} rows but {len(y)} labels")
        n_synthetic, n_real = int(y.sum()), int((~y).sum())
        if fold_of is not None:
            fold = np.asarray(fold_of, dtype=np.int64)
            folds = len(set(fold.tolist()))
            if len(fold) != len(y) or set(fold.tolist()) != set(range(folds)):
                raise ValueError("fold_of needs one fold index per row, every fold from 0 to its largest used")
        if folds < 2 or min(n_synthetic, n_real) < folds:
            raise ValueError(f"cross-fitting needs folds >= 2 and at least {folds} objects of each class")
        if fold_of is None:
            fold = _stratified_folds(y, folds, seed)
        oof = np.empty(len(y))
        for k in range(folds):
            held = fold == k
            if len(set(y[~held].tolist())) < 2:
                raise ValueError(f"fold {k}: the other folds need objects of both classes")
            mean, std, w, b = _fit_stacker(x[~held], y[~held], l2)
            oof[held] = ((x[held] - mean) / std) @ w + b
        calibrator = fit_calibrator(calibration, oof, y)
        oof_p = calibrator.apply(oof)
        t_synthetic = _synthetic_threshold(oof_p[~y], target_fpr)
        t_authentic = min(_authentic_threshold(oof_p[y], max_missed), t_synthetic)

        mean, std, w, b = _fit_stacker(x, y, l2)
        return cls(
            version=version,
            feature_names=tuple(feature_names),
            mean=tuple(map(float, mean)),
            std=tuple(map(float, std)),
            weights=tuple(map(float, w)),
            intercept=b,
            calibration=calibrator,
            t_synthetic=t_synthetic,
            t_authentic=t_authentic,
            training=Training(
                n_real=n_real,
                n_synthetic=n_synthetic,
                cv_auc=roc_auc(y, oof),
                oof_ece=expected_calibration_error(y, oof_p),
                folds=folds,
                seed=seed,
                l2=l2,
                target_fpr=target_fpr,
                max_missed=max_missed,
                data=data,
            ),
        )

    # -- storage ---------------------------------------------------------------------

    def to_json(self) -> str:
        """Stable, human-readable JSON; floats round-trip exactly (``repr``)."""
        doc: dict[str, Any] = {
            "version": self.version,
            "feature_names": list(self.feature_names),
            "mean": list(self.mean),
            "std": list(self.std),
            "weights": list(self.weights),
            "intercept": self.intercept,
            "calibration": self.calibration.to_dict(),
            "t_synthetic": self.t_synthetic,
            "t_authentic": self.t_authentic,
            "training": vars(self.training),
        }
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "FusionModel":
        """The model ``to_json`` wrote; a malformed document is a ``ConfigError``."""
        try:
            doc = json.loads(text)
            model = cls(
                version=str(doc["version"]),
                feature_names=tuple(map(str, doc["feature_names"])),
                mean=tuple(map(float, doc["mean"])),
                std=tuple(map(float, doc["std"])),
                weights=tuple(map(float, doc["weights"])),
                intercept=float(doc["intercept"]),
                calibration=calibrator_from_dict(doc["calibration"]),
                t_synthetic=float(doc["t_synthetic"]),
                t_authentic=float(doc["t_authentic"]),
                training=Training(**doc["training"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a fusion model document: {type(exc).__name__}: {exc}") from None
        width = 2 * len(model.feature_names)
        if not len(model.mean) == len(model.std) == len(model.weights) == width:
            raise ConfigError(f"fusion model {model.version}: mean, std and weights need {width} values each")
        if not model.t_authentic <= model.t_synthetic:
            raise ConfigError(f"fusion model {model.version}: t_authentic above t_synthetic")
        return model


def _stratified_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold index per object, each class spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for cls in (False, True):
        idx = rng.permutation(np.flatnonzero(y == cls))
        fold[idx] = np.arange(len(idx)) % folds
    return fold


def _fit_stacker(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Standardise, then L2-penalised logistic regression: (mean, std, weights, intercept)."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    # A constant column (a detector that never abstained here) carries no information;
    # std 1 keeps it at 0 instead of dividing by 0.
    std = np.where(std > 1e-12, std, 1.0)
    z = (x - mean) / std
    t = y.astype(np.float64)
    n, d = z.shape

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], theta[d]
        u = z @ w + b
        g = (expit(u) - t) / n
        value = np.mean(np.logaddexp(0.0, u) - t * u) + l2 * (w @ w)
        return float(value), np.append(z.T @ g + 2.0 * l2 * w, g.sum())

    res = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    # Status 2 (the line search cannot improve) happens at the optimum within float
    # precision; only running out of iterations (status 1) means there is no fit.
    if res.status == 1:
        raise RuntimeError(f"stacker did not converge: {res.message}")
    return mean, std, res.x[:d], float(res.x[d])


def _synthetic_threshold(real: np.ndarray, target_fpr: float) -> float:
    """The smallest t with mean(real >= t) <= target_fpr. Unlike
    ``metrics.threshold_for_fpr`` this is always finite (the JSON stays plain JSON) and
    never an observed score, so no real object sits on the threshold."""
    desc = np.sort(real)[::-1]
    allowed = int(np.floor(target_fpr * len(desc) + 1e-9))  # reals that may score >= t
    if allowed >= len(desc):
        return 0.0
    # Just above the first real that must stay below t (ties stay below with it).
    return float(np.nextafter(desc[allowed], np.inf))


def _authentic_threshold(synthetic: np.ndarray, max_missed: float) -> float:
    """The largest t with mean(synthetic <= t) <= max_missed."""
    asc = np.sort(synthetic)
    allowed = int(np.floor(max_missed * len(asc) + 1e-9))  # fakes that may score <= t
    if allowed >= len(asc):
        return 1.0
    return float(np.nextafter(asc[allowed], -np.inf))

