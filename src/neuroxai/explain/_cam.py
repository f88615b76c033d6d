"""Gradient-weighted class activation maps: Grad-CAM, Grad-CAM++, LayerCAM, HiResCAM.

Each class overrides only :meth:`~neuroxai.explain.CAMMethod.weigh`, on
``keras.ops``, so every one runs on each backend of
:attr:`~neuroxai.explain.CAMMethod.backends` (TensorFlow, JAX, PyTorch), and
reduces over the spatial axes of its input, so it serves 2-D feature maps,
3-D feature maps of volume models and transformer tokens put on their grid.
"""

from __future__ import annotations

from typing import Any

from neuroxai.explain._base import CAMMethod, spatial_axes

__all__ = ["GradCAM", "GradCAMPlusPlus", "HiResCAM", "LayerCAM"]


class GradCAM(CAMMethod):
    """Grad-CAM (Selvaraju et al., 2017): channels weighted by their spatially averaged gradient.

    Example:
        >>> Explainer(model, method="gradcam").explain(images)  # doctest: +SKIP
    """

    name = "gradcam"

    def weigh(self, activations: Any, gradients: Any) -> Any:
        from keras import ops

        weights = ops.mean(gradients, axis=spatial_axes(gradients), keepdims=True)
        return ops.sum(weights * activations, axis=-1)


class GradCAMPlusPlus(CAMMethod):
    """Grad-CAM++ (Chattopadhyay et al., 2018): pixel-wise alpha coefficients on positive gradients.

    Better than Grad-CAM at covering several instances or a large object.
    """

    name = "gradcam++"

    def weigh(self, activations: Any, gradients: Any) -> Any:
        from keras import ops

        g2 = ops.square(gradients)
        g3 = g2 * gradients
        axes = spatial_axes(activations)
        sum_a = ops.sum(activations, axis=axes, keepdims=True)
        denom = 2.0 * g2 + sum_a * g3
        denom = ops.where(ops.abs(denom) > 1e-12, denom, ops.ones_like(denom))
        alpha = g2 / denom
        weights = ops.sum(alpha * ops.relu(gradients), axis=axes, keepdims=True)
        return ops.sum(weights * activations, axis=-1)


class LayerCAM(CAMMethod):
    """LayerCAM (Jiang et al., 2021): each location weighted by its own positive gradient.

    Works well on earlier, higher-resolution layers too.
    """

    name = "layercam"

    def weigh(self, activations: Any, gradients: Any) -> Any:
        from keras import ops

        return ops.sum(ops.relu(gradients) * activations, axis=-1)


class HiResCAM(CAMMethod):
    """HiResCAM (Draelos and Carin, 2020): element-wise gradient times activation, summed over channels.

    Provably faithful to the model for architectures ending in global average pooling and a dense layer.
    """

    name = "hirescam"

    def weigh(self, activations: Any, gradients: Any) -> Any:
        from keras import ops

        return ops.sum(gradients * activations, axis=-1)
