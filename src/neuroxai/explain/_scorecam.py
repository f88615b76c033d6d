"""Score-CAM (Wang et al., 2020): channels weighted by the class score of the masked input.

Gradient-free. :class:`~neuroxai.explain.GradientFreeCAMMethod` does the work
(forward to the target layer, one soft mask per channel, the masked images
scored in chunks of channels, one compiled call per chunk); Score-CAM only
says how the scores become channel weights.
"""

from __future__ import annotations

from typing import Any

from neuroxai.explain._base import GradientFreeCAMMethod

__all__ = ["ScoreCAM"]


class ScoreCAM(GradientFreeCAMMethod):
    """Score-CAM: weigh each channel by the target probability of the image masked with it.

    Options:
        max_channels: Use only the ``max_channels`` channels with the highest
            mean activation per image (``None``: all channels). Each channel
            costs one forward pass per image.

    Example:
        >>> Explainer(model, method="scorecam", max_channels=64).explain(images)  # doctest: +SKIP
    """

    name = "scorecam"

    def weigh(self, scores: Any, clean_scores: Any) -> Any:
        """The masked images' target probabilities are the channel weights."""
        return scores
