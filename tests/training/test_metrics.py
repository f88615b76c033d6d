"""Classification metrics against scikit-learn and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroxai.errors import DataError
from neuroxai.training import classification_metrics, expected_calibration_error

NAMES = ["a", "b", "c"]


def _known():
    # true:      0 0 0 1 1 1 2 2 2 2
    # predicted: 0 0 1 1 1 2 2 2 2 0   -> confusion [[2,1,0],[0,2,1],[1,0,3]]
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    pred = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 0])
    conf = np.array([0.9, 0.8, 0.6, 0.7, 0.95, 0.5, 0.85, 0.9, 0.75, 0.55])
    proba = np.zeros((10, 3))
    for i, (k, c) in enumerate(zip(pred, conf)):
        proba[i] = (1 - c) / 2
        proba[i, k] = c
    return y, pred, proba


def test_metrics_match_sklearn_on_a_known_confusion():
    from sklearn.metrics import classification_report, f1_score, roc_auc_score

    y, pred, proba = _known()
    m = classification_metrics(y, proba, NAMES)
    assert m.confusion_matrix == ((2, 1, 0), (0, 2, 1), (1, 0, 3))
    assert m.accuracy == pytest.approx(0.7)
    assert m.n == 10
    report = classification_report(y, pred, target_names=NAMES, output_dict=True, zero_division=0)
    for row in (*m.per_class, m.macro_avg, m.weighted_avg):
        expected = report[row.name]
        assert (row.precision, row.recall, row.f1, row.support) == pytest.approx(
            (expected["precision"], expected["recall"], expected["f1-score"], expected["support"])
        ), row.name
    assert m.for_class("b").precision == pytest.approx(2 / 3)
    assert m.for_class("c").recall == pytest.approx(3 / 4)
    assert m.macro_avg.f1 == pytest.approx(f1_score(y, pred, average="macro"))
    assert m.roc_auc == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    assert m.roc_auc_reason is None


def test_metrics_round_trip_through_json():
    import json

    from neuroxai.runs import ClassificationMetrics

    y, _, proba = _known()
    m = classification_metrics(y, proba, NAMES)
    assert ClassificationMetrics.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    empty = classification_metrics([], np.zeros((0, 3)), NAMES)
    assert empty.n == 0 and empty.accuracy is None and empty.roc_auc is None and "no samples" in empty.roc_auc_reason
    assert ClassificationMetrics.from_dict(json.loads(json.dumps(empty.to_dict()))) == empty


def test_ece_hand_computed():
    # confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.3 (right; 3 classes)
    proba = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.2, 0.6, 0.2], [0.3, 0.35, 0.35]])
    proba[3] = [0.34, 0.33, 0.33]
    y = np.array([0, 1, 1, 0])
    # bins (15 equal width): 0.9 -> (0.8667, 0.9333]: acc 0.5, conf 0.9 -> |0.4| * 2/4 = 0.2
    #                        0.6 -> (0.5333, 0.6]:    acc 1, conf 0.6 -> 0.4 * 1/4 = 0.1
    #                        0.34 -> (0.3333, 0.4]:   acc 1, conf 0.34 -> 0.66 * 1/4 = 0.165
    assert expected_calibration_error(y, proba) == pytest.approx(0.2 + 0.1 + 0.165)
    # bins are right-closed: 0.4 (right) shares (1/3, 0.4] with 0.35 (wrong) -> |0.5 - 0.375| = 0.125
    # (had 0.4 gone to the next bin: 0.5 * 0.6 + 0.5 * 0.35 = 0.475)
    two = np.array([[0.4, 0.3, 0.3], [0.35, 0.33, 0.32]])
    assert expected_calibration_error([0, 1], two) == pytest.approx(0.125)


def test_ece_zero_for_confident_correct_predictions():
    y = np.array([0, 1, 2])
    assert expected_calibration_error(y, np.eye(3)) == 0.0


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(2, 5), st.integers(0, 2**16))
def test_ece_is_a_fraction(n, k, seed):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k), size=n)
    y = rng.integers(0, k, size=n)
    ece = expected_calibration_error(y, proba)
    assert 0.0 <= ece <= 1.0
    # ECE is at least |overall accuracy - overall mean confidence| (triangle inequality over bins)
    gap = abs(np.mean(proba.argmax(1) == y) - np.mean(proba.max(1)))
    assert ece >= gap - 1e-9


def test_roc_auc_single_class_is_none_with_a_reason():
    proba = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]])
    m = classification_metrics([0, 0], proba, NAMES)
    assert m.roc_auc is None
    assert "only one class" in m.roc_auc_reason
    assert m.accuracy == 1.0


def test_roc_auc_leaves_out_absent_classes_and_says_so():
    from sklearn.metrics import roc_auc_score

    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1]])
    y = np.array([0, 1, 1, 0])
    m = classification_metrics(y, proba, NAMES)
    assert "c" in m.roc_auc_reason
    assert m.roc_auc_per_class["c"] is None
    expected = np.mean([roc_auc_score(y == 0, proba[:, 0]), roc_auc_score(y == 1, proba[:, 1])])
    assert m.roc_auc == pytest.approx(expected)


def test_shape_mismatch_is_a_data_error():
    with pytest.raises(DataError, match="shape"):
        classification_metrics([0, 1, 1], np.ones((2, 3)) / 3, NAMES)
    with pytest.raises(DataError, match="class names"):
        classification_metrics([0, 1], np.ones((2, 3)) / 3, ["a", "b"])
