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
from neuroxai.data import SkippedFile
from neuroxai.errors import DataError
from neuroxai.runs._calibration import ECE_BINS, CalibrationReport, _check, expected_calibration_error

__all__ = [
    "ECE_BINS",
    "ClassMetrics",
    "ClassificationMetrics",
    "EvaluationReport",
    "classification_metrics",
    "expected_calibration_error",
]


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
        unreadable: Files of the split that could not be read (at indexing or
            when evaluated) and so are not in ``metrics``, with the reason.
        calibration: Calibration before/after temperature scaling, risk-coverage
            (AURC, accuracy at 90% / 95% coverage) and conformal prediction sets on the
            split, plainly and de-duplicated (``None`` for a model whose outputs are not
            one distribution over the classes).

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
    unreadable: tuple[SkippedFile, ...] = ()
    calibration: CalibrationReport | None = None

    def headline(self) -> ClassificationMetrics:
        """The metrics to quote: the de-duplicated ones where test images repeat training images, else all."""
        return self.dedup if self.dedup is not None else self.metrics


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
