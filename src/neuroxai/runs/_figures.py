"""Matplotlib figures of a training run.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas,
never through ``pyplot``: no global state, no display needed, safe in
threads and on headless servers. Save them atomically with
:func:`neuroxai._io.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from neuroxai._io import printable

__all__ = ["plot_confusion_matrix", "plot_training_curves"]


def _figure(figsize: tuple[float, float]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]] | np.ndarray,
    class_names: Sequence[str],
    *,
    title: str = "Confusion matrix",
    normalize: bool = False,
) -> Any:
    """Draw a confusion matrix (rows: true class, columns: predicted class).

    Args:
        matrix: ``[K, K]`` counts.
        class_names: The ``K`` class names.
        title: Figure title.
        normalize: Colour and annotate each row as fractions of its true class
            (counts are shown in brackets).

    Returns:
        A :class:`matplotlib.figure.Figure`.

    Example:
        >>> fig = plot_confusion_matrix([[5, 1], [0, 6]], ["a", "b"])
        >>> fig.axes[0].get_xlabel()
        'Predicted'
    """
    cm = np.asarray(matrix, dtype=np.float64)
    k = len(class_names)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    shown = frac if normalize else cm
    fig = _figure((1.2 + 0.9 * k, 1.0 + 0.8 * k))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1.0 if normalize else max(1.0, float(cm.max())))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    labels = [printable(c) for c in class_names]  # a right-to-left override in a name has no glyph: shown escaped
    ax.set_xticks(range(k), labels=labels, rotation=35, ha="right")
    ax.set_yticks(range(k), labels=labels)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(title)
    thresh = (1.0 if normalize else float(cm.max())) / 2.0
    for i in range(k):
        for j in range(k):
            text = f"{frac[i, j]:.2f}\n({int(cm[i, j])})" if normalize else f"{int(cm[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if shown[i, j] > thresh else "black")
    fig.tight_layout()
    return fig


def plot_training_curves(history: Mapping[str, Sequence[Any]], *, title: str = "Training") -> Any:
    """Loss and accuracy per epoch for training and validation, phases marked.

    Args:
        history: Columns per epoch as in ``Trainer.history_``: ``epoch``,
            ``loss``, ``accuracy``, optionally ``val_loss``, ``val_accuracy``,
            ``learning_rate`` and ``phase``. A dashed line marks where the
            phase changes (e.g. from the head to fine-tuning).
        title: Figure title.

    Returns:
        A :class:`matplotlib.figure.Figure` with two (or three, with the
        learning rate) panels.

    Example:
        >>> fig = plot_training_curves({"epoch": [1, 2], "loss": [1.0, 0.5], "accuracy": [0.5, 0.8]})
        >>> len(fig.axes)
        2
    """
    epochs = list(history.get("epoch") or range(1, len(history.get("loss", [])) + 1))
    panels = [("loss", "Loss"), ("accuracy", "Accuracy")]
    if history.get("learning_rate"):
        panels.append(("learning_rate", "Learning rate"))
    fig = _figure((4.2 * len(panels), 3.4))
    phases = list(history.get("phase") or [])
    changes = [epochs[i] - 0.5 for i in range(1, len(phases)) if phases[i] != phases[i - 1]]
    for n, (key, label) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), n)
        for prefix, name in (("", "train"), ("val_", "validation")):
            values = history.get(prefix + key)
            if values and not (prefix and key == "learning_rate"):
                ax.plot(epochs[: len(values)], [np.nan if v is None else float(v) for v in values], marker="o", ms=3, label=name)
        for x in changes:
            ax.axvline(x, color="grey", ls="--", lw=1)
        if key == "learning_rate":
            ax.set_yscale("log")
        elif ax.lines:
            ax.legend(fontsize=8)
        ax.set_xlabel("Epoch")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    if changes:
        fig.axes[0].text(changes[0], fig.axes[0].get_ylim()[1], " fine-tune", va="top", fontsize=8, color="grey")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
