"""The built-in explanation methods, registered as an ordinary plugin."""

from __future__ import annotations

from typing import Any

from neuroxai.plugins import hookimpl

__all__ = ["neuroxai_register_explainers"]


@hookimpl(tryfirst=True)  # built-ins register first: a plugin replacing one must say override=True
def neuroxai_register_explainers(registry: Any) -> None:
    """Register gradcam, gradcam++ (alias gradcampp), layercam, hirescam, scorecam, saliency,
    smoothgrad, integrated_gradients, occlusion, attention_rollout and grad_rollout."""
    from neuroxai.explain._attention import AttentionRollout, GradientRollout
    from neuroxai.explain._cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM
    from neuroxai.explain._gradients import IntegratedGradients, Saliency, SmoothGrad
    from neuroxai.explain._occlusion import Occlusion
    from neuroxai.explain._scorecam import ScoreCAM

    methods = (GradCAM, GradCAMPlusPlus, LayerCAM, HiResCAM, ScoreCAM, Saliency, SmoothGrad, IntegratedGradients, Occlusion)
    for cls in (*methods, AttentionRollout, GradientRollout):
        registry.register(cls.name, cls)
    registry.register("gradcampp", GradCAMPlusPlus)
