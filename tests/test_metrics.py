import numpy as np
import pytest

from deeptrawl.metrics import accuracy_at, iou, pixel_f1, roc_auc


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
