"""Quality metrics for detectors: ranking (AUC, AP, EER), operating points, calibration,
localisation (IoU, pixel F1).

Written out in numpy so evaluation has no scikit-learn dependency; the tests check them
against hand-computed values and brute force.

Conventions shared by every function here: label 1 (True) is the positive class (fake),
a prediction is positive when ``score >= threshold``, and tied scores are one threshold
(never split by input order). Where a metric is undefined for the data -- e.g. a
false-positive rate without negatives -- the result is ``nan`` rather than an exception,
so one empty subgroup does not abort an evaluation. ``roc_auc`` predates this and still
raises; callers that want ``nan`` check both classes first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

_NAN = float("nan")


def _binary(labels: Sequence[bool], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"labels and scores must be 1-D and equally long, got {y.shape} and {s.shape}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1 or bool")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite (drop error rows before computing metrics)")
    return y.astype(bool), s


def _counts_by_score(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores ascending, with the number of positives and negatives at each."""
    values, inverse = np.unique(s, return_inverse=True)
    pos = np.bincount(inverse[y], minlength=len(values))
    neg = np.bincount(inverse[~y], minlength=len(values))
    return values, pos, neg


def _rate(count: float, total: float) -> float:
    return float(count / total) if total else _NAN


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve (the Mann-Whitney U statistic; ties count one half)."""
    y, s = _binary(labels, scores)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs at least one positive and one negative")
    # U = sum over positives of (negatives strictly below + half the negatives tied with it),
    # counted per distinct score so it stays O(n log n) and exact in integers and halves.
    _, pos, neg = _counts_by_score(y, s)
    neg_below = np.cumsum(neg) - neg
    u = float(np.sum(pos * (neg_below + 0.5 * neg)))
    return u / (n_pos * n_neg)


def roc_curve(labels: Sequence[bool], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``, one point per distinct score, thresholds descending.

    The first point is ``(0, 0)`` at threshold ``inf`` (nothing flagged). Tied scores make
    one point, so the trapezoid area under the curve equals ``roc_auc`` (ties count half).
    ``fpr`` is all ``nan`` without negatives, ``tpr`` all ``nan`` without positives.
    """
    y, s = _binary(labels, scores)
    values, pos, neg = _counts_by_score(y, s)
    tp = np.concatenate([[0], np.cumsum(pos[::-1])])
    fp = np.concatenate([[0], np.cumsum(neg[::-1])])
    thresholds = np.concatenate([[np.inf], values[::-1]])
    n_pos, n_neg = tp[-1], fp[-1]
    tpr = tp / n_pos if n_pos else np.full(len(tp), np.nan)
    fpr = fp / n_neg if n_neg else np.full(len(fp), np.nan)
    return fpr, tpr, thresholds


def average_precision(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the precision-recall step curve: sum of (recall gained) x precision.

    Each distinct score is one threshold. ``nan`` without positives; 1.0 without negatives.
    """
    y, s = _binary(labels, scores)
    _, pos, neg = _counts_by_score(y, s)
    tp = np.cumsum(pos[::-1])
    fp = np.cumsum(neg[::-1])
    n_pos = int(y.sum())
    if n_pos == 0:
        return _NAN
    precision = tp / (tp + fp)
    recall_gained = pos[::-1] / n_pos
    return float(np.sum(recall_gained * precision))


def eer(labels: Sequence[bool], scores: Sequence[float]) -> tuple[float, float]:
    """Equal error rate and its threshold: where the miss rate (1 - TPR) meets the FPR.

    The rate is interpolated linearly between the two ROC points that straddle the
    crossing; the threshold is the higher-scoring of the two real thresholds at which the
    miss rate no longer exceeds the false-positive rate. ``(nan, nan)`` unless both classes
    are present.
    """
    fpr, tpr, thresholds = roc_curve(labels, scores)
    if np.isnan(fpr).any() or np.isnan(tpr).any():
        return _NAN, _NAN
    diff = fpr - (1.0 - tpr)  # -1 at threshold inf, rises to fpr >= 0 at the lowest threshold
    i = int(np.argmax(diff >= 0))  # >= 1: the first point has diff -1
    t = diff[i - 1] / (diff[i - 1] - diff[i])
    rate = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    return float(rate), float(thresholds[i])


class Confusion(NamedTuple):
    """Counts at one threshold; unpacks as ``tn, fp, fn, tp``."""

    tn: int
    fp: int
    fn: int
    tp: int

    @property
    def tpr(self) -> float:
        return _rate(self.tp, self.tp + self.fn)

    @property
    def fpr(self) -> float:
        return _rate(self.fp, self.fp + self.tn)

    @property
    def f1(self) -> float:
        """``nan`` when there are no positives and none predicted (F1 is 0/0 there)."""
        return _rate(2 * self.tp, 2 * self.tp + self.fp + self.fn)


def confusion_at(labels: Sequence[bool], scores: Sequence[float], threshold: float) -> Confusion:
    y, s = _binary(labels, scores)
    flagged = s >= threshold
    return Confusion(
        tn=int(np.sum(~flagged & ~y)),
        fp=int(np.sum(flagged & ~y)),
        fn=int(np.sum(~flagged & y)),
        tp=int(np.sum(flagged & y)),
    )


def f1_at(labels: Sequence[bool], scores: Sequence[float], threshold: float) -> float:
    return confusion_at(labels, scores, threshold).f1


def threshold_for_fpr(labels: Sequence[bool], scores: Sequence[float], target_fpr: float) -> float:
    """The smallest observed score that, used as threshold, keeps the FPR <= ``target_fpr``.

    Lower thresholds flag more, so this is the most sensitive threshold within the budget;
    any threshold between it and the next lower score has the same rates on this data.
    ``inf`` (flag nothing) when even the highest score is a negative beyond the budget;
    ``nan`` without negatives.
    """
    if not 0.0 <= target_fpr <= 1.0:
        raise ValueError(f"target_fpr must be in [0, 1], got {target_fpr}")
    y, s = _binary(labels, scores)
    n_neg = int((~y).sum())
    if n_neg == 0:
        return _NAN
    values, _, neg = _counts_by_score(y, s)
    neg_at_or_above = n_neg - (np.cumsum(neg) - neg)
    within = neg_at_or_above / n_neg <= target_fpr  # False ... False True ... True
    return float(values[np.argmax(within)]) if within.any() else float("inf")


@dataclass(frozen=True, kw_only=True)
class Reliability:
    """Equal-width probability bins over [0, 1]; empty bins have ``nan`` means and count 0.

    ``confidence`` is the mean predicted probability of the positive class in a bin and
    ``accuracy`` the observed fraction of positives: the two coincide for a calibrated model.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def reliability(labels: Sequence[bool], probabilities: Sequence[float], bins: int = 15) -> Reliability:
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    y, p = _binary(labels, probabilities)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]")
    # Bin i holds [i/bins, (i+1)/bins); the last bin is closed so p == 1 has a home.
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, weights=p, minlength=bins) / count
        accuracy = np.bincount(index, weights=y.astype(np.float64), minlength=bins) / count
    return Reliability(edges=np.linspace(0.0, 1.0, bins + 1), confidence=confidence, accuracy=accuracy, count=count)


def expected_calibration_error(labels: Sequence[bool], probabilities: Sequence[float], bins: int = 15) -> float:
    """Count-weighted mean of |accuracy - confidence| over the ``reliability`` bins; ``nan`` if empty."""
    r = reliability(labels, probabilities, bins)
    filled = r.count > 0
    if not filled.any():
        return _NAN
    gaps = np.abs(r.accuracy[filled] - r.confidence[filled])
    return float(np.sum(gaps * r.count[filled]) / r.count.sum())


def iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    p, t = np.asarray(predicted, bool), np.asarray(truth, bool)
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else 1.0


def pixel_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    p, t = np.asarray(predicted, bool), np.asarray(truth, bool)
    tp = np.logical_and(p, t).sum()
    denom = p.sum() + t.sum()
    return float(2 * tp / denom) if denom else 1.0


def accuracy_at(labels: Sequence[bool], scores: Sequence[float], threshold: float = 0.5) -> float:
    y = np.asarray(labels, dtype=bool)
    return float(np.mean((np.asarray(scores, dtype=np.float64) >= threshold) == y))
