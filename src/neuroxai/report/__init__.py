"""Reports: matplotlib figures of training runs (confusion matrix, training curves)."""

from __future__ import annotations

from neuroxai.report.figures import plot_confusion_matrix, plot_training_curves

__all__ = ["plot_confusion_matrix", "plot_training_curves"]
