"""Quality metrics for detectors: ranking (AUC), localisation (IoU, pixel F1).

Written out in numpy so evaluation has no scikit-learn dependency; the tests check them
against hand-computed values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve (the Mann-Whitney U statistic; ties count one half)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("AUC needs at least one positive and one negative")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order), dtype=np.float64)
    ranks[order] = np.arange(1, len(order) + 1)
    # average ranks over ties
    values = np.concatenate([pos, neg])
    for v in np.unique(values):
        tied = values == v
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


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
