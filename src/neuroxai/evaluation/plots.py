"""Figures of explanation metrics (matplotlib ``Figure`` objects; no pyplot state, no display).

Save them atomically with :func:`neuroxai._io.save_figure` (``XAIReport.save`` does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["plot_deletion_insertion", "plot_localization", "plot_randomization"]

_REFS = (("method", None), ("uniform", "uniform map"), ("center_prior", "centre prior"))


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def plot_localization(localization: Mapping[str, Mapping[str, Any]], *, metric: str = "pointing_game") -> Any:
    """Bar chart of one localization metric per class (and overall), each method beside the reference maps.

    Args:
        localization: ``{method: localization_report(...)}`` (``XAIReport.localization``).
        metric: One of ``pointing_game``, ``energy``, ``iou``, ``dice``, ``pixel_ap``.

    Returns:
        A ``matplotlib.figure.Figure``.

    Example:
        >>> fig = plot_localization({"gradcam": report})  # doctest: +SKIP
    """
    methods = list(localization)
    first = localization[methods[0]]
    groups = [c for c, v in first["per_class"].items() if v["n_scored"] > 0] + ["overall"]

    def value(rep: Mapping[str, Any], group: str, ref: str) -> float:
        src = rep["overall"] if group == "overall" else rep["per_class"][group]
        v = src[ref][metric]
        return np.nan if v is None else float(v)

    series = [(m, localization[m], "method") for m in methods]
    series += [(label, first, ref) for ref, label in _REFS[1:]]
    fig = _figure(max(5.0, 1.2 * len(groups) * len(series) / 2 + 2), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    xs = np.arange(len(groups))
    for i, (label, rep, ref) in enumerate(series):
        vals = [value(rep, g, ref) for g in groups]
        style = (
            {}
            if ref == "method"
            else {"color": "0.75" if ref == "uniform" else "0.5", "hatch": "//" if ref == "uniform" else ".."}
        )
        ax.bar(xs + (i - (len(series) - 1) / 2) * width, vals, width, label=label, **style)
    counts = [first["per_class"][g]["n_scored"] if g != "overall" else first["n_scored"] for g in groups]
    ax.set_xticks(xs, [f"{g}\n(n={c})" for g, c in zip(groups, counts)])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(metric.replace("_", " "))
    excl = first["n_excluded_no_mask"]
    ax.set_title(f"Localization vs tumour masks ({excl} image(s) without tumour left out)", fontsize=10)
    ax.legend(fontsize=8, ncols=min(len(series), 4), loc="upper center", bbox_to_anchor=(0.5, -0.18))
    return fig


def plot_deletion_insertion(faithfulness: Mapping[str, Mapping[str, Any]]) -> Any:
    """Mean deletion and insertion curves per method, beside the random-map curves.

    Args:
        faithfulness: ``{method: faithfulness_report(...)}`` (``XAIReport.faithfulness``).

    Returns:
        A ``matplotlib.figure.Figure`` with a deletion and an insertion panel (AUCs in the legend).

    Example:
        >>> fig = plot_deletion_insertion({"gradcam": report})  # doctest: +SKIP
    """
    fig = _figure(9.0, 3.4)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, kind, better in zip(axes, ("deletion", "insertion"), ("lower", "higher")):
        for i, (name, rep) in enumerate(faithfulness.items()):
            fr = rep["fractions"]
            cur = rep["method"][kind]
            ax.plot(fr, cur["curve"], color=f"C{i}", label=f"{name} (AUC {cur['auc']:.3f})")
            rnd = rep["random"][kind]
            ax.plot(fr, rnd["curve"], color=f"C{i}", ls="--", alpha=0.6, label=f"{name}, random map ({rnd['auc']:.3f})")
        ax.set_title(f"{kind.capitalize()} ({better} AUC is better)", fontsize=10)
        ax.set_xlabel("fraction of pixels " + ("removed" if kind == "deletion" else "revealed"))
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("probability of target class")
    return fig


def plot_randomization(sanity: Mapping[str, Mapping[str, Any]]) -> Any:
    """Cascading randomization: similarity to the original maps after each layer is randomized.

    Args:
        sanity: ``{method: cascading_randomization(...)}`` (``XAIReport.sanity``).

    Returns:
        A ``matplotlib.figure.Figure`` with a Spearman and an SSIM panel; the pass threshold is dashed.

    Example:
        >>> fig = plot_randomization({"gradcam": result})  # doctest: +SKIP
    """
    fig = _figure(9.0, 3.6)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, title in zip(axes, ("spearman", "ssim"), ("|Spearman rank correlation|", "SSIM")):
        for i, (name, rep) in enumerate(sanity.items()):
            verdict = "pass" if rep["passed"] else "FAIL"
            xs = np.arange(len(rep["layers"]))
            ax.errorbar(xs, rep[key], yerr=rep[f"{key}_std"], color=f"C{i}", marker="o", capsize=2, label=f"{name} ({verdict})")
            ax.set_xticks(xs, rep["layers"], rotation=60, ha="right", fontsize=7)
            ax.axhline(rep["threshold"], color="0.4", ls="--", lw=0.8)
        ax.set_title(f"{title} to original maps", fontsize=10)
        ax.set_xlabel("randomized up to layer (output -> input)")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("similarity")
    return fig
