"""Measure explanations instead of only showing them.

Metrics, all batched over images, each a registrable :class:`ExplanationMetric`
that holds its settings and returns a typed, frozen result record:

- **Localization** against tumour masks (:class:`Localization`,
  :mod:`neuroxai.evaluation.localization`): pointing game, energy-based
  pointing game, IoU, Dice and pixel-level average precision, per class,
  beside a uniform and a centre-prior reference map.
- **Faithfulness** (:class:`Faithfulness`, :mod:`neuroxai.evaluation.faithfulness`):
  RISE deletion and insertion curves and their areas, beside a random map.
- **Sanity** (:class:`Sanity`, :mod:`neuroxai.evaluation.sanity`): Adebayo et
  al.'s cascading model-parameter randomization with Spearman and SSIM
  similarity and a documented pass rule.
- **Tumour reliance** (:class:`TumourReliance`, :mod:`neuroxai.evaluation.reliance`):
  explainer-free; how much the true class's probability drops when the tumour
  is blurred, beside an equal area elsewhere. A heatmap can look right while
  the model uses something else; this asks the model.

:func:`evaluate_explanations` runs them for one or more explanation methods
and returns an :class:`XAIReport` (``summary()``, ``format()``, ``to_dict()`` /
``from_dict()``, ``figures()``, ``save(dir)``). Plugins add metrics through the
``neuroxai_register_metrics`` hook (:class:`MetricRegistry`). Model-based
metrics take a Keras model and an ``explain_fn(model, images, targets) -> maps
[N, H, W]`` callable, so any explainer can be measured.
"""

from __future__ import annotations

from neuroxai.evaluation._metric import REQUIREMENTS, ExplainFn, ExplanationMetric, MetricInputs, Requirement
from neuroxai.evaluation._registry import MetricRegistry, available_metrics
from neuroxai.evaluation.faithfulness import (
    CurveSummary,
    DeletionInsertion,
    DeletionInsertionCurves,
    Faithfulness,
    FaithfulnessResult,
    FaithfulnessSettings,
    auc,
    baseline_fill,
    deletion_insertion_curves,
    faithfulness_report,
)
from neuroxai.evaluation.localization import (
    LOCALIZATION_METRICS,
    Localization,
    LocalizationGroup,
    LocalizationMeans,
    LocalizationResult,
    LocalizationSettings,
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
from neuroxai.evaluation.reliance import (
    ControlRegions,
    RelianceSettings,
    RelianceSummary,
    TumourReliance,
    TumourRelianceResult,
    control_regions,
    head_foreground,
    tumour_reliance,
)
from neuroxai.evaluation.report import (
    REPR_MAX_FIGURES,
    EvaluationSettings,
    MethodSummary,
    MetricFailure,
    NamedExplainFn,
    RawResult,
    XAIReport,
    evaluate_explanations,
    named_explain_fn,
    resolve_metrics,
)
from neuroxai.evaluation.sanity import (
    Sanity,
    SanityResult,
    Similarity,
    cascading_randomization,
    randomizable_layers,
    spearman_similarity,
    ssim,
)

__all__ = [
    "LOCALIZATION_METRICS",
    "REPR_MAX_FIGURES",
    "REQUIREMENTS",
    "ControlRegions",
    "CurveSummary",
    "DeletionInsertion",
    "DeletionInsertionCurves",
    "EvaluationSettings",
    "ExplainFn",
    "ExplanationMetric",
    "Faithfulness",
    "FaithfulnessResult",
    "FaithfulnessSettings",
    "Localization",
    "LocalizationGroup",
    "LocalizationMeans",
    "LocalizationResult",
    "LocalizationSettings",
    "MethodSummary",
    "MetricFailure",
    "MetricInputs",
    "MetricRegistry",
    "NamedExplainFn",
    "RawResult",
    "RelianceSettings",
    "RelianceSummary",
    "Requirement",
    "Sanity",
    "SanityResult",
    "Similarity",
    "TumourReliance",
    "TumourRelianceResult",
    "XAIReport",
    "auc",
    "available_metrics",
    "baseline_fill",
    "cascading_randomization",
    "center_prior_map",
    "control_regions",
    "deletion_insertion_curves",
    "dice",
    "energy_pointing_game",
    "evaluate_explanations",
    "faithfulness_report",
    "head_foreground",
    "iou",
    "localization_report",
    "localization_scores",
    "named_explain_fn",
    "pixel_average_precision",
    "pointing_game",
    "randomizable_layers",
    "resolve_metrics",
    "spearman_similarity",
    "ssim",
    "tolerance_pixels",
    "tumour_reliance",
    "uniform_map",
]
