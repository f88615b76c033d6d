"""Reports: figures of training runs (confusion matrix, training curves).

The figures a run directory holds are drawn by the run layer itself
(:mod:`neuroxai.runs`), which writes them; they are re-exported here for
users who draw them from their own numbers.
"""

from __future__ import annotations

from neuroxai.runs._figures import plot_confusion_matrix, plot_training_curves

__all__ = ["plot_confusion_matrix", "plot_training_curves"]
