"""Measure explanations instead of only showing them.

Three families of metrics, all batched over images:

- **Localization** against tumour masks (:mod:`neuroxai.evaluation.localization`):
  pointing game, energy-based pointing game, IoU, Dice and pixel-level average
  precision, per class, beside a uniform and a centre-prior reference map.
- **Faithfulness** (:mod:`neuroxai.evaluation.faithfulness`): RISE deletion and
  insertion curves and their areas, beside a random map.
- **Sanity** (:mod:`neuroxai.evaluation.sanity`): Adebayo et al.'s cascading
  model-parameter randomization with Spearman and SSIM similarity and a
  documented pass rule.

:func:`evaluate_explanations` runs all three for one or more explanation
methods and returns an :class:`XAIReport` (``to_dict()``, ``figures()``,
``save(dir)``). Model-based metrics take a Keras model and an
``explain_fn(model, images, targets) -> maps [N, H, W]`` callable, so any
explainer can be measured.
"""

from __future__ import annotations

from typing import Any

from neuroxai.evaluation.faithfulness import auc, baseline_fill, deletion_insertion_curves, faithfulness_report
from neuroxai.evaluation.localization import (
    LOCALIZATION_METRICS,
    center_prior_map,
    dice,
    energy_pointing_game,
    iou,
    localization_report,
    localization_scores,
    pixel_average_precision,
    pointing_game,
    tolerance_pixels,
    uniform_map,
)
from neuroxai.evaluation.sanity import cascading_randomization, randomizable_layers, spearman_similarity, ssim

__all__ = [
    "LOCALIZATION_METRICS",
    "XAIReport",
    "auc",
    "baseline_fill",
    "cascading_randomization",
    "center_prior_map",
    "deletion_insertion_curves",
    "dice",
    "energy_pointing_game",
    "evaluate_explanations",
    "faithfulness_report",
    "iou",
    "localization_report",
    "localization_scores",
    "pixel_average_precision",
    "pointing_game",
    "randomizable_layers",
    "spearman_similarity",
    "ssim",
    "tolerance_pixels",
    "uniform_map",
]


def __getattr__(name: str) -> Any:  # the report pulls in matplotlib and the explainers: load on first use
    if name in ("evaluate_explanations", "XAIReport"):
        from neuroxai.evaluation import report

        return getattr(report, name)
    raise AttributeError(f"module 'neuroxai.evaluation' has no attribute {name!r}")
