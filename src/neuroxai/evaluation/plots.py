"""Figures of explanation metrics (matplotlib ``Figure`` objects; no pyplot state, no display).

Save them atomically with :func:`neuroxai._io.save_figure` (``XAIReport.save`` does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from neuroxai.errors import DataError
from neuroxai.evaluation.faithfulness import FaithfulnessResult
from neuroxai.evaluation.localization import LOCALIZATION_METRICS, LocalizationGroup, LocalizationMeans, LocalizationResult
from neuroxai.evaluation.reliance import TumourRelianceResult
from neuroxai.evaluation.sanity import SanityResult

__all__ = ["plot_deletion_insertion", "plot_localization", "plot_randomization", "plot_reliance"]

_REFS = (("method", None), ("uniform", "uniform map"), ("center_prior", "centre prior"))


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def plot_localization(localization: Mapping[str, LocalizationResult], *, metric: str = "pointing_game") -> Any:
    """Bar chart of one localization metric per class (and overall), each method beside the reference maps.

    Args:
        localization: ``{method: LocalizationResult}`` (``XAIReport.localization``).
        metric: One of ``pointing_game``, ``energy``, ``iou``, ``dice``, ``pixel_ap``.

    Returns:
        A ``matplotlib.figure.Figure``.

    Raises:
        DataError: An unknown metric, or no results.

    Example:
        >>> fig = plot_localization({"gradcam": report.localization["gradcam"]})  # doctest: +SKIP
    """
    if metric not in LOCALIZATION_METRICS:
        raise DataError(f"Unknown localization metric {metric!r}; expected one of {', '.join(LOCALIZATION_METRICS)}.")
    if not localization:
        raise DataError("No localization results to plot.")
    methods = list(localization)
    first = localization[methods[0]]
    groups = [c for c, g in first.per_class.items() if g.n_scored > 0] + ["overall"]

    def group(rep: LocalizationResult, name: str) -> LocalizationGroup:
        return rep.overall if name == "overall" else rep.per_class[name]

    def value(means: LocalizationMeans) -> float:
        v = means.value(metric)
        return np.nan if v is None else float(v)

    series: list[tuple[str, LocalizationResult, str]] = [(m, localization[m], "method") for m in methods]
    series += [(label, first, ref) for ref, label in _REFS[1:] if label is not None]
    fig = _figure(max(5.0, 1.2 * len(groups) * len(series) / 2 + 2), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    xs = np.arange(len(groups))
    for i, (label, rep, ref) in enumerate(series):
        vals = [value(getattr(group(rep, g), ref)) for g in groups]
        style = (
            {}
            if ref == "method"
            else {"color": "0.75" if ref == "uniform" else "0.5", "hatch": "//" if ref == "uniform" else ".."}
        )
        ax.bar(xs + (i - (len(series) - 1) / 2) * width, vals, width, label=label, **style)
    counts = [group(first, g).n_scored for g in groups]
    ax.set_xticks(xs, [f"{g}\n(n={c})" for g, c in zip(groups, counts)])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(metric.replace("_", " "))
    excl = first.n_excluded_no_mask
    ax.set_title(f"Localization vs tumour masks ({excl} image(s) without tumour left out)", fontsize=10)
    ax.legend(fontsize=8, ncols=min(len(series), 4), loc="upper center", bbox_to_anchor=(0.5, -0.18))
    return fig


def plot_deletion_insertion(faithfulness: Mapping[str, FaithfulnessResult]) -> Any:
    """Mean deletion and insertion curves per method, beside the random-map curves.

    Args:
        faithfulness: ``{method: FaithfulnessResult}`` (``XAIReport.faithfulness``).

    Returns:
        A ``matplotlib.figure.Figure`` with a deletion and an insertion panel (AUCs in the legend).

    Example:
        >>> fig = plot_deletion_insertion(report.faithfulness)  # doctest: +SKIP
    """
    fig = _figure(9.0, 3.4)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, kind, better in zip(axes, ("deletion", "insertion"), ("lower", "higher")):
        for i, (name, rep) in enumerate(faithfulness.items()):
            cur = getattr(rep.method, kind)
            rnd = getattr(rep.random, kind)
            ax.plot(rep.fractions, cur.curve, color=f"C{i}", label=f"{name} (AUC {cur.auc:.3f})")
            ax.plot(rep.fractions, rnd.curve, color=f"C{i}", ls="--", alpha=0.6, label=f"{name}, random map ({rnd.auc:.3f})")
        ax.set_title(f"{kind.capitalize()} ({better} AUC is better)", fontsize=10)
        ax.set_xlabel("fraction of pixels " + ("removed" if kind == "deletion" else "revealed"))
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("probability of target class")
    return fig


def plot_randomization(sanity: Mapping[str, SanityResult]) -> Any:
    """Cascading randomization: similarity to the original maps after each layer is randomized.

    Args:
        sanity: ``{method: SanityResult}`` (``XAIReport.sanity``).

    Returns:
        A ``matplotlib.figure.Figure`` with a Spearman and an SSIM panel; the pass threshold is dashed.

    Example:
        >>> fig = plot_randomization(report.sanity)  # doctest: +SKIP
    """
    fig = _figure(9.0, 3.6)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, title in zip(axes, ("spearman", "ssim"), ("|Spearman rank correlation|", "SSIM")):
        for i, (name, rep) in enumerate(sanity.items()):
            verdict = "pass" if rep.passed else "FAIL"
            xs = np.arange(len(rep.layers))
            mean, std = (rep.spearman, rep.spearman_std) if key == "spearman" else (rep.ssim, rep.ssim_std)
            ax.errorbar(xs, mean, yerr=std, color=f"C{i}", marker="o", capsize=2, label=f"{name} ({verdict})")
            ax.set_xticks(xs, rep.layers, rotation=60, ha="right", fontsize=7)
            ax.axhline(rep.threshold, color="0.4", ls="--", lw=0.8)
        ax.set_title(f"{title} to original maps", fontsize=10)
        ax.set_xlabel("randomized up to layer (output -> input)")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("similarity")
    return fig


def plot_reliance(reliance: TumourRelianceResult) -> Any:
    """Tumour reliance per class (and overall): the drop when the tumour is replaced beside the control drop.

    Args:
        reliance: A :class:`~neuroxai.evaluation.TumourRelianceResult` (``XAIReport.reliance``).

    Returns:
        A ``matplotlib.figure.Figure``; each group is annotated with its ratio.

    Example:
        >>> fig = plot_reliance(report.reliance)  # doctest: +SKIP
    """
    groups = [(c, s) for c, s in reliance.per_class.items() if s.n > 0] + [("overall", reliance.overall)]
    fig = _figure(max(5.0, 1.4 * len(groups) + 2), 3.6)
    ax = fig.add_subplot()
    xs = np.arange(len(groups))
    width = 0.38
    tumour = [np.nan if s.tumour_drop is None else s.tumour_drop for _, s in groups]
    control = [np.nan if s.control_drop is None else s.control_drop for _, s in groups]
    ax.bar(xs - width / 2, tumour, width, label="tumour replaced", color="C3")
    ax.bar(xs + width / 2, control, width, label="equal area elsewhere replaced", color="0.6", hatch="//")
    top = np.nanmax([*tumour, *control, 0.05])
    for x, (_, s) in zip(xs, groups):
        if s.ratio is not None:
            ax.text(x, top * 1.05, f"x{s.ratio:.1f}", ha="center", fontsize=8)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(xs, [f"{g}\n(n={s.n})" for g, s in groups])
    ax.set_ylim(min(0.0, float(np.nanmin([*tumour, *control, 0.0]))) - 0.02, top * 1.2)
    ax.set_ylabel("drop of true-class probability")
    settings = reliance.settings
    ax.set_title(
        f"Tumour reliance ({settings.baseline} baseline; ratio = tumour drop / control drop, {reliance.n_unplaced} unplaced)",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper right")
    return fig
