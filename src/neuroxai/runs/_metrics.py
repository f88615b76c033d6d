"""Classification metrics for a trained model: accuracy, per-class report, ROC AUC, calibration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from neuroxai.errors import DataError

__all__ = ["ECE_BINS", "classification_metrics", "expected_calibration_error"]

#: Number of equal-width confidence bins of the expected calibration error.
ECE_BINS = 15


def _check(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.int64).reshape(-1)
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != y.shape[0]:
        raise DataError(f"Expected probabilities of shape (N, num_classes) with N = len(y_true) = {y.shape[0]}, got {p.shape}.")
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise DataError(f"Expected labels in 0..{p.shape[1] - 1}, got values from {y.min()} to {y.max()}.")
    return y, p


def expected_calibration_error(y_true: Any, proba: Any, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error (ECE) of the top-class confidence.

    Each sample's confidence is its largest predicted probability. Confidences
    are put into ``n_bins`` equal-width bins over [0, 1], right-closed
    (``(0, 1/15], (1/15, 2/15], ... (14/15, 1]``; a confidence of exactly 0
    goes to the first bin). ECE is the sample-weighted mean, over non-empty
    bins, of ``|accuracy(bin) - mean confidence(bin)|``::

        ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)|

    Args:
        y_true: Integer labels ``[N]``.
        proba: Predicted probabilities ``[N, K]``.
        n_bins: Number of bins (15 by default, as in Guo et al. 2017).

    Returns:
        The ECE in [0, 1]; ``nan`` for an empty input.

    Raises:
        DataError: Shapes disagree or labels are out of range.

    Example:
        >>> expected_calibration_error([0, 1], [[0.9, 0.1], [0.8, 0.2]])  # conf 0.9 right, 0.8 wrong
        0.45
    """
    y, p = _check(y_true, proba)
    if y.size == 0:
        return float("nan")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    bins = np.digitize(conf, edges[1:-1], right=True)  # right-closed bins, 0 .. n_bins-1
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    acc = np.bincount(bins, weights=correct, minlength=n_bins)
    cs = np.bincount(bins, weights=conf, minlength=n_bins)
    nz = count > 0
    return float(round(np.sum(np.abs(acc[nz] - cs[nz])) / y.size, 12))


def _roc_auc(
    y: np.ndarray, p: np.ndarray, class_names: Sequence[str]
) -> tuple[float | None, str | None, dict[str, float | None]]:
    from sklearn.metrics import roc_auc_score

    k = p.shape[1]
    per_class: dict[str, float | None] = {}
    present = np.unique(y)
    if y.size == 0:
        return None, "no samples", dict.fromkeys(class_names)
    if present.size < 2:
        return (
            None,
            f"only one class ({class_names[int(present[0])]!r}) present in the labels; ROC AUC is undefined",
            dict.fromkeys(class_names),
        )
    for j, name in enumerate(class_names):
        pos = y == j
        per_class[name] = float(roc_auc_score(pos, p[:, j])) if 0 < pos.sum() < y.size else None
    absent = [class_names[j] for j in range(k) if per_class[class_names[j]] is None]
    values = [v for v in per_class.values() if v is not None]
    reason = None
    if absent:
        reason = f"classes without samples excluded from the macro average: {', '.join(absent)}"
    return float(np.mean(values)), reason, per_class


def classification_metrics(y_true: Any, proba: Any, class_names: Sequence[str], *, n_bins: int = ECE_BINS) -> dict[str, Any]:
    """All classification metrics of one evaluation set.

    Args:
        y_true: Integer labels ``[N]`` (indices into ``class_names``).
        proba: Predicted probabilities ``[N, K]``.
        class_names: Names of the ``K`` classes.
        n_bins: Bins of the expected calibration error.

    Returns:
        A JSON-able dict: ``n``, ``accuracy``, ``per_class`` (scikit-learn
        ``classification_report(output_dict=True)``: precision, recall,
        f1-score and support per class plus ``macro avg`` and ``weighted avg``),
        ``confusion_matrix`` (rows true, columns predicted), ``roc_auc``
        (macro one-vs-rest; ``None`` when undefined) with ``roc_auc_reason``
        (why it is ``None`` or which classes were left out) and
        ``roc_auc_per_class``, ``ece`` and ``ece_bins``.

    Raises:
        DataError: Shapes disagree, labels are out of range, or the number of
            class names differs from the probability columns.

    Example:
        >>> m = classification_metrics([0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], ["a", "b"])
        >>> round(m["accuracy"], 3), m["confusion_matrix"]
        (0.667, [[1, 0], [1, 1]])
    """
    from sklearn.metrics import classification_report, confusion_matrix

    y, p = _check(y_true, proba)
    names = [str(c) for c in class_names]
    if len(names) != p.shape[1]:
        raise DataError(f"Expected {p.shape[1]} class names (one per probability column), got {len(names)}: {names}.")
    labels = list(range(len(names)))
    pred = p.argmax(axis=1) if y.size else np.zeros(0, np.int64)
    auc, reason, per_class_auc = _roc_auc(y, p, names)
    report: dict[str, Any] = {}
    if y.size:
        report = classification_report(y, pred, labels=labels, target_names=names, output_dict=True, zero_division=0)
    return {
        "n": int(y.size),
        "accuracy": float(np.mean(pred == y)) if y.size else None,
        "per_class": report,
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist() if y.size else [[0] * len(names) for _ in names],
        "roc_auc": auc,
        "roc_auc_reason": reason,
        "roc_auc_per_class": per_class_auc,
        "ece": expected_calibration_error(y, p, n_bins) if y.size else None,
        "ece_bins": int(n_bins),
    }
