"""Classification metrics of a trained model: accuracy, per-class scores, ROC AUC, calibration.

The results are typed records (:class:`ClassificationMetrics`,
:class:`EvaluationReport`) that a run directory stores in ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroxai._records import Record
from neuroxai.errors import DataError

__all__ = [
    "ECE_BINS",
    "ClassMetrics",
    "ClassificationMetrics",
    "EvaluationReport",
    "classification_metrics",
    "expected_calibration_error",
]

#: Number of equal-width confidence bins of the expected calibration error.
ECE_BINS = 15


@dataclass(frozen=True)
class ClassMetrics(Record):
    """Precision, recall, F1 and support of one class (or of an average over classes).

    Attributes:
        name: The class name, or ``"macro avg"`` / ``"weighted avg"``.
        precision: Of the samples predicted as this class, the fraction that are.
        recall: Of the samples of this class, the fraction predicted as it.
        f1: Harmonic mean of precision and recall.
        support: Number of samples of this class (all samples for the averages).
    """

    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ClassificationMetrics(Record):
    """All classification metrics of one evaluation set.

    Attributes:
        n: Number of samples.
        accuracy: Fraction predicted right (``None`` for an empty set).
        per_class: One :class:`ClassMetrics` per class, in class order.
        macro_avg: Unweighted mean over classes (``None`` for an empty set).
        weighted_avg: Mean weighted by support (``None`` for an empty set).
        confusion_matrix: Counts, rows true class, columns predicted class.
        roc_auc: Macro one-vs-rest ROC AUC; ``None`` when undefined.
        roc_auc_reason: Why ``roc_auc`` is ``None``, or which classes it leaves out.
        roc_auc_per_class: One-vs-rest ROC AUC per class name (``None`` where undefined).
        ece: Expected calibration error of the top-class confidence (``None`` for an empty set).
        ece_bins: Number of equal-width confidence bins of ``ece``.
    """

    n: int
    accuracy: float | None
    per_class: tuple[ClassMetrics, ...]
    macro_avg: ClassMetrics | None
    weighted_avg: ClassMetrics | None
    confusion_matrix: tuple[tuple[int, ...], ...]
    roc_auc: float | None
    roc_auc_reason: str | None
    roc_auc_per_class: dict[str, float | None]
    ece: float | None
    ece_bins: int = ECE_BINS

    def for_class(self, name: str) -> ClassMetrics:
        """The :class:`ClassMetrics` of class ``name``.

        Raises:
            DataError: No class of that name.
        """
        for row in self.per_class:
            if row.name == name:
                return row
        raise DataError(f"No class {name!r} in these metrics; classes: {[r.name for r in self.per_class]}.")


@dataclass(frozen=True)
class EvaluationReport(Record):
    """Metrics of a model on one split of a dataset, plainly and without duplicated test images.

    Attributes:
        split: The split evaluated (``"test"``, ``"val"`` or ``"train"``).
        class_names: The model's classes, in output order.
        metrics: Metrics on every image of the split.
        dedup: For the test split, metrics without the test images that are
            byte-identical to a training image (``None`` when there are none).
        removed_duplicates: How many images ``dedup`` leaves out.

    Example:
        >>> report = trainer.evaluate(dataset)  # doctest: +SKIP
        >>> report.metrics.accuracy, report.dedup.accuracy if report.dedup else None  # doctest: +SKIP
        (0.979, 0.978)
    """

    split: str
    class_names: tuple[str, ...]
    metrics: ClassificationMetrics
    dedup: ClassificationMetrics | None = None
    removed_duplicates: int = 0

    def headline(self) -> ClassificationMetrics:
        """The metrics to quote: the de-duplicated ones where test images repeat training images, else all."""
        return self.dedup if self.dedup is not None else self.metrics


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


def classification_metrics(
    y_true: Any, proba: Any, class_names: Sequence[str], *, n_bins: int = ECE_BINS
) -> ClassificationMetrics:
    """All classification metrics of one evaluation set.

    Args:
        y_true: Integer labels ``[N]`` (indices into ``class_names``).
        proba: Predicted probabilities ``[N, K]``.
        class_names: Names of the ``K`` classes.
        n_bins: Bins of the expected calibration error.

    Returns:
        A :class:`ClassificationMetrics` (per-class precision, recall and F1 as
        scikit-learn's ``classification_report`` computes them).

    Raises:
        DataError: Shapes disagree, labels are out of range, or the number of
            class names differs from the probability columns.

    Example:
        >>> m = classification_metrics([0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], ["a", "b"])
        >>> round(m.accuracy, 3), m.confusion_matrix
        (0.667, ((1, 0), (1, 1)))
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y, p = _check(y_true, proba)
    names = [str(c) for c in class_names]
    if len(names) != p.shape[1]:
        raise DataError(f"Expected {p.shape[1]} class names (one per probability column), got {len(names)}: {names}.")
    labels = list(range(len(names)))
    auc, reason, per_class_auc = _roc_auc(y, p, names)
    if not y.size:
        zero = tuple(ClassMetrics(c, 0.0, 0.0, 0.0, 0) for c in names)
        return ClassificationMetrics(
            n=0, accuracy=None, per_class=zero, macro_avg=None, weighted_avg=None,
            confusion_matrix=tuple(tuple(0 for _ in names) for _ in names), roc_auc=auc, roc_auc_reason=reason,
            roc_auc_per_class=per_class_auc, ece=None, ece_bins=int(n_bins),
        )  # fmt: skip
    pred = p.argmax(axis=1)
    prec, rec, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    per_class = tuple(ClassMetrics(c, float(prec[k]), float(rec[k]), float(f1[k]), int(support[k])) for k, c in enumerate(names))
    averages = []
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(y, pred, labels=labels, average=avg, zero_division=0)
        averages.append(ClassMetrics(f"{avg} avg", float(ap), float(ar), float(af), int(y.size)))
    return ClassificationMetrics(
        n=int(y.size),
        accuracy=float(np.mean(pred == y)),
        per_class=per_class,
        macro_avg=averages[0],
        weighted_avg=averages[1],
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in confusion_matrix(y, pred, labels=labels)),
        roc_auc=auc,
        roc_auc_reason=reason,
        roc_auc_per_class=per_class_auc,
        ece=expected_calibration_error(y, p, n_bins),
        ece_bins=int(n_bins),
    )
