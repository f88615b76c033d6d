"""Explanations for any Keras classifier (CNNs, transformers, 3-D networks): the Grad-CAM family, pixel
gradients, occlusion and attention rollout.

Public names:

- :class:`Explainer`, :class:`Explanation`
- :class:`MethodRegistry` and the base classes plugins subclass, each with one hook to override:
  :class:`CAMMethod` (``weigh``), :class:`GradientFreeCAMMethod` (``weigh``),
  :class:`GradientMethod` (``samples``, ``combine``), :class:`AttentionMethod` (``fuse``, ``propagate``);
  their common bases :class:`ExplainMethod` and :class:`PerturbationMethod`
- what a method's ``explain_batch`` receives: :class:`TracedModel` (returning :class:`ForwardResult`)
  and the Explainer's :class:`CompileCache`
- the built-in methods: :class:`GradCAM`, :class:`GradCAMPlusPlus`, :class:`LayerCAM`,
  :class:`HiResCAM`, :class:`ScoreCAM`, :class:`Saliency`, :class:`SmoothGrad`,
  :class:`IntegratedGradients`, :class:`Occlusion`, :class:`AttentionRollout`, :class:`GradientRollout`
- targets beyond a class: callables on :class:`ModelOutput`, and the helpers :class:`ClassScore`,
  :class:`ClassProbability`, :class:`Margin` (their base :class:`Objective`)
- token models: :class:`TokenGrid` (a grid given by hand), :class:`FeatureLayout` (where a target layer
  lies on the input)
- helpers: :func:`available_methods`, :func:`overlay_image`, :func:`scale_map` (display scaling of maps,
  :data:`MapScaling`), :func:`upsample_map`, :func:`normalize_maps`, :func:`spatial_axes`,
  :func:`resolve_target_layer`, :func:`feature_layer_candidates`; :data:`REPR_MAX_IMAGES` (how many
  images an explanation draws in a notebook)
"""

from __future__ import annotations

from neuroxai.explain._attention import AttentionMethod, AttentionRollout, GradientRollout
from neuroxai.explain._base import (
    CAMMethod,
    CompileCache,
    ExplainMethod,
    GradientFreeCAMMethod,
    GradientMethod,
    PerturbationMethod,
    normalize_maps,
    spatial_axes,
)
from neuroxai.explain._cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM
from neuroxai.explain._explainer import Explainer, InputScale
from neuroxai.explain._explanation import REPR_MAX_IMAGES, Explanation, MapScaling, overlay_image, scale_map, upsample_map
from neuroxai.explain._gradients import IntegratedGradients, Saliency, SmoothGrad
from neuroxai.explain._occlusion import Occlusion
from neuroxai.explain._registry import MethodRegistry
from neuroxai.explain._scorecam import ScoreCAM
from neuroxai.explain._targets import ClassProbability, ClassScore, Margin, Objective
from neuroxai.models._graph import (
    ForwardResult,
    ModelOutput,
    ScoreSource,
    TracedModel,
    feature_layer_candidates,
    resolve_target_layer,
)
from neuroxai.models._layout import FeatureLayout, TokenGrid

__all__ = [
    "REPR_MAX_IMAGES",
    "AttentionMethod",
    "AttentionRollout",
    "CAMMethod",
    "ClassProbability",
    "ClassScore",
    "CompileCache",
    "ExplainMethod",
    "Explainer",
    "Explanation",
    "FeatureLayout",
    "ForwardResult",
    "GradCAM",
    "GradCAMPlusPlus",
    "GradientFreeCAMMethod",
    "GradientMethod",
    "GradientRollout",
    "HiResCAM",
    "InputScale",
    "IntegratedGradients",
    "LayerCAM",
    "MapScaling",
    "Margin",
    "MethodRegistry",
    "ModelOutput",
    "Objective",
    "Occlusion",
    "PerturbationMethod",
    "Saliency",
    "ScoreCAM",
    "ScoreSource",
    "SmoothGrad",
    "TokenGrid",
    "TracedModel",
    "available_methods",
    "feature_layer_candidates",
    "normalize_maps",
    "overlay_image",
    "resolve_target_layer",
    "scale_map",
    "spatial_axes",
    "upsample_map",
]


def available_methods(autoload: bool | None = None) -> list[str]:
    """Names of every registered explanation method (built-ins and installed plugins).

    Args:
        autoload: Include installed plugins (default: unless ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1``).

    Returns:
        Sorted method names.

    Example:
        >>> "gradcam" in available_methods(autoload=False)
        True
    """
    return MethodRegistry(autoload).names()
