import numpy as np
import pytest

from deeptrawl.metrics import (
    Confusion,
    accuracy_at,
    average_precision,
    confusion_at,
    eer,
    expected_calibration_error,
    f1_at,
    iou,
    pixel_f1,
    reliability,
    roc_auc,
    roc_curve,
    threshold_for_fpr,
)


def test_auc_perfect_inverse_and_ties():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5
    # one of four positive/negative pairs misordered
    assert roc_auc([0, 0, 1, 1], [0.1, 0.6, 0.5, 0.9]) == 0.75
    with pytest.raises(ValueError):
        roc_auc([1, 1], [0.2, 0.3])


def test_iou_f1_accuracy():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2] = True  # 8 px
    b[1:3] = True  # 8 px, 4 shared
    assert iou(a, b) == pytest.approx(4 / 12)
    assert pixel_f1(a, b) == pytest.approx(0.5)
    assert iou(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    assert accuracy_at([1, 0, 1], [0.9, 0.1, 0.2]) == pytest.approx(2 / 3)


# --- ranking, operating points and calibration (deeptrawl.metrics, numpy only) -------------

# Four objects, worked by hand below: negatives score 0.1 and 0.4, positives 0.35 and 0.8.
Y = [0, 0, 1, 1]
S = [0.1, 0.4, 0.35, 0.8]


def _random(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores with many ties (scores on a 0.1 grid)."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    s = np.round(np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1), 1)
    return y, s


def test_roc_curve_by_hand():
    fpr, tpr, thresholds = roc_curve(Y, S)
    assert thresholds.tolist() == [np.inf, 0.8, 0.4, 0.35, 0.1]
    assert tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1]
    assert roc_auc(Y, S) == 0.75
    # tied scores are one point: a diagonal step, half credit
    fpr, tpr, thresholds = roc_curve([0, 1], [0.5, 0.5])
    assert (fpr.tolist(), tpr.tolist(), thresholds.tolist()) == ([0, 1], [0, 1], [np.inf, 0.5])


def test_auc_all_ties_and_brute_force():
    assert roc_auc([0, 1, 0, 1, 1], [0.3] * 5) == 0.5
    for seed in range(3):
        y, s = _random(seed)
        pos, neg = s[y][:, None], s[~y][None, :]
        brute = np.mean((pos > neg) + 0.5 * (pos == neg))
        assert roc_auc(y, s) == pytest.approx(brute, abs=1e-12)
        fpr, tpr, _ = roc_curve(y, s)
        trapezoids = np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)
        assert trapezoids == pytest.approx(brute, abs=1e-12)


def test_average_precision_by_hand_and_brute_force():
    # recall 1/2 at precision 1 (0.8), then recall 1 at precision 2/3 (0.35)
    assert average_precision(Y, S) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert average_precision([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert average_precision([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(0.5 * 1 / 3 + 0.5 * 2 / 4)
    # all tied: one threshold, precision = prevalence
    assert average_precision([1, 0, 0, 0], [0.5] * 4) == 0.25
    for seed in range(3):
        y, s = _random(seed)
        # mean over positives of the precision at that positive's own score (ties flagged together)
        brute = np.mean([np.sum(y & (s >= v)) / np.sum(s >= v) for v in s[y]])
        assert average_precision(y, s) == pytest.approx(brute, abs=1e-12)


def test_eer_by_hand():
    assert eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == (0.0, 0.8)
    # reversed: at 0.8 both negatives are flagged and both positives missed
    assert eer([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == (1.0, 0.8)
    assert eer([0, 1], [0.5, 0.5]) == (0.5, 0.5)
    # at 0.4 one of two negatives and one of two positives are on the wrong side
    assert eer(Y, S) == (0.5, 0.4)
    # FPR stays 1/4 while the miss rate falls from 1/2 (at 0.6) to 0 (at 0.5): they cross at 1/4
    assert eer([0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.9, 0.5, 0.6]) == (0.25, 0.5)
    # a tie at 0.5 makes a diagonal ROC step from (FPR 0, miss 1/2) to (1/2, 0): crossing at 1/4
    assert eer([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]) == (0.25, 0.5)


def test_confusion_f1_and_tie_rule():
    assert confusion_at(Y, S, 0.4) == Confusion(tn=1, fp=1, fn=1, tp=1)
    assert f1_at(Y, S, 0.4) == 0.5
    # score == threshold is positive
    tn, fp, fn, tp = confusion_at(Y, S, 0.35)
    assert (tn, fp, fn, tp) == (1, 1, 0, 2)
    assert f1_at(Y, S, 0.35) == pytest.approx(0.8)
    c = confusion_at(Y, S, 0.8)
    assert (c.tpr, c.fpr) == (0.5, 0.0)


def test_threshold_for_fpr_by_hand():
    assert threshold_for_fpr(Y, S, 0.0) == 0.8
    assert threshold_for_fpr(Y, S, 0.5) == 0.35  # 0.35 flags the 0.4 negative: FPR 1/2
    assert threshold_for_fpr(Y, S, 0.49) == 0.8
    assert threshold_for_fpr(Y, S, 1.0) == 0.1
    assert threshold_for_fpr([1, 0], [0.2, 0.9], 0.0) == np.inf  # only flagging nothing keeps FPR 0
    with pytest.raises(ValueError):
        threshold_for_fpr(Y, S, 1.5)


@pytest.mark.parametrize("target", [0.0, 0.01, 0.05, 0.1, 0.3])
def test_threshold_for_fpr_meets_target_and_is_smallest(target):
    y, s = _random(7)
    t = threshold_for_fpr(y, s, target)
    assert confusion_at(y, s, t).fpr <= target
    lower = s[s < t]
    if lower.size:  # the next lower observed score would break the budget
        assert confusion_at(y, s, lower.max()).fpr > target


def test_reliability_and_ece_by_hand():
    r = reliability([1, 0, 1, 1], [0.9, 0.9, 0.1, 0.1], bins=2)
    assert r.count.tolist() == [2, 2]
    assert r.confidence.tolist() == pytest.approx([0.1, 0.9])
    assert r.accuracy.tolist() == [1.0, 0.5]
    assert expected_calibration_error([1, 0, 1, 1], [0.9, 0.9, 0.1, 0.1], bins=2) == pytest.approx(0.65)
    # p == 1 lands in the last bin; empty bins have nan means
    r = reliability([1, 0], [1.0, 0.5], bins=4)
    assert r.count.tolist() == [0, 0, 1, 1]
    assert np.isnan(r.accuracy[0]) and r.edges.tolist() == [0, 0.25, 0.5, 0.75, 1]
    with pytest.raises(ValueError):
        reliability([1], [1.2])


def test_ece_calibrated_vs_overconfident():
    rng = np.random.default_rng(0)
    q = rng.random(200_000)
    y = rng.random(q.size) < q  # labels drawn from Bernoulli(q): q is calibrated
    assert expected_calibration_error(y, q) < 0.01
    logit = np.log(q / (1 - q))
    overconfident = 1 / (1 + np.exp(-4 * logit))  # same ranking, pushed to the extremes
    assert expected_calibration_error(y, overconfident) > 0.1


def test_degenerate_inputs_are_nan_not_errors():
    only_neg, only_pos = ([0, 0], [0.2, 0.7]), ([1, 1], [0.2, 0.7])
    assert np.isnan(average_precision(*only_neg)) and average_precision(*only_pos) == 1.0
    assert all(np.isnan(v) for v in eer(*only_neg) + eer(*only_pos))
    assert np.isnan(roc_curve(*only_neg)[1]).all() and np.isnan(roc_curve(*only_pos)[0]).all()
    assert np.isnan(threshold_for_fpr(*only_pos, 0.1))
    assert np.isnan(f1_at(*only_neg, 0.9))  # no positives, none flagged: 0/0
    assert f1_at(*only_neg, 0.5) == 0.0
    assert np.isnan(confusion_at(*only_neg, 0.5).tpr)
    assert np.isnan(expected_calibration_error([], []))
    assert np.isnan(eer([], [])[0]) and np.isnan(average_precision([], []))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="finite"):
        average_precision([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="0/1"):
        eer([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="equally long"):
        roc_curve([0, 1], [0.1])
