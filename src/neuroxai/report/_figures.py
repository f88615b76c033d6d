"""Figures of the report: reliability diagram and risk-coverage curve, and figures as ``data:`` URIs.

Built on :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot state, no display).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from neuroxai.runs import CalibrationMetrics, RiskCoverage

__all__ = ["data_uri", "figure_data_uri", "plot_reliability", "plot_risk_coverage"]


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_reliability(diagrams: Sequence[tuple[str, CalibrationMetrics]]) -> Any:
    """Reliability diagrams side by side: accuracy per confidence bin against the diagonal, bin counts below.

    Args:
        diagrams: ``(label, metrics)`` pairs, e.g. the model's own probabilities, then after temperature
            scaling (:attr:`neuroxai.runs.UncertaintyMetrics.before` / ``after``).

    Returns:
        A :class:`matplotlib.figure.Figure`.

    Example:
        >>> from neuroxai.runs import calibration_metrics
        >>> fig = plot_reliability([("model", calibration_metrics([0, 1], [[0.9, 0.1], [0.3, 0.7]]))])
        >>> fig.axes[0].get_xlabel()
        'Confidence (top-class probability)'
    """
    n = max(1, len(diagrams))
    fig = _figure(4.2 * n, 4.4)
    grid = fig.add_gridspec(2, n, height_ratios=(3, 1))
    for j, (label, m) in enumerate(diagrams):
        bins = m.reliability
        edges = np.asarray(bins.edges, dtype=np.float64)
        lo, width = edges[:-1], np.diff(edges)
        acc = np.array([np.nan if v is None else v for v in bins.accuracy], dtype=np.float64)
        conf = np.array([np.nan if v is None else v for v in bins.confidence], dtype=np.float64)
        ax = fig.add_subplot(grid[0, j])
        ax.bar(lo, np.nan_to_num(acc), width=width, align="edge", color="#4878b0", edgecolor="white", label="accuracy")
        gap = np.where(np.isfinite(acc), conf - acc, 0.0)
        ax.bar(lo, gap, bottom=np.nan_to_num(acc), width=width, align="edge", color="#d62728", alpha=0.35, label="gap")
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{label}: ECE {m.ece:.3f} (n={m.n})", fontsize=10)
        ax.set_xlabel("Confidence (top-class probability)")
        if j == 0:
            ax.set_ylabel("Accuracy")
            ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
        hist = fig.add_subplot(grid[1, j], sharex=ax)
        hist.bar(lo, bins.counts, width=width, align="edge", color="#888888", edgecolor="white")
        hist.set_yscale("symlog")
        hist.set_xlabel("Confidence")
        if j == 0:
            hist.set_ylabel("Images")
    return fig


def plot_risk_coverage(curves: Sequence[tuple[str, RiskCoverage]]) -> Any:
    """Risk (error rate among the answered) against coverage (fraction answered, most confident first).

    Args:
        curves: ``(label, curve)`` pairs (every test image, de-duplicated ...).

    Returns:
        A :class:`matplotlib.figure.Figure`.

    Example:
        >>> from neuroxai.runs import risk_coverage
        >>> fig = plot_risk_coverage([("model", risk_coverage([0, 1, 1], [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]]))])
        >>> fig.axes[0].get_xlabel()
        'Coverage (fraction of images answered)'
    """
    fig = _figure(5.6, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    for label, c in curves:
        ax.plot(c.coverage, c.risk, lw=1.6, marker="." if len(c.coverage) < 30 else None, label=f"{label}: AURC {c.aurc:.4f}")
    for mark in (0.90, 0.95):
        ax.axvline(mark, color="grey", ls=":", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("Coverage (fraction of images answered)")
    ax.set_ylabel("Risk (error rate among answered)")
    ax.set_title("Risk-coverage: refer the least confident")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...`` for embedding bytes in a page."""
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def figure_data_uri(fig: Any, *, dpi: int = 110) -> str:
    """A matplotlib figure as a PNG ``data:`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return data_uri(buf.getvalue(), "image/png")
