"""Gradient-weighted class activation maps: Grad-CAM, Grad-CAM++, LayerCAM, HiResCAM.

Each class overrides only :meth:`~neuroxai.explain.CAMMethod.weigh`.
"""

from __future__ import annotations

from typing import Any

from neuroxai.explain._base import CAMMethod

__all__ = ["GradCAM", "GradCAMPlusPlus", "HiResCAM", "LayerCAM"]


class GradCAM(CAMMethod):
    """Grad-CAM (Selvaraju et al., 2017): channels weighted by their spatially averaged gradient.

    Example:
        >>> Explainer(model, method="gradcam").explain(images)  # doctest: +SKIP
    """

    name = "gradcam"

    def weigh(self, activations: Any, gradients: Any) -> Any:
        import tensorflow as tf

        weights = tf.reduce_mean(gradients, axis=[1, 2], keepdims=True)
        return tf.reduce_sum(weights * activations, axis=-1)


class GradCAMPlusPlus(CAMMethod):
    """Grad-CAM++ (Chattopadhyay et al., 2018): pixel-wise alpha coefficients on positive gradients.

    Better than Grad-CAM at covering several instances or a large object.
    """

    name = "gradcam++"

    def weigh(self, activations: Any, gradients: Any) -> Any:
        import tensorflow as tf

        g2 = tf.square(gradients)
        g3 = g2 * gradients
        sum_a = tf.reduce_sum(activations, axis=[1, 2], keepdims=True)
        denom = 2.0 * g2 + sum_a * g3
        denom = tf.where(tf.abs(denom) > 1e-12, denom, tf.ones_like(denom))
        alpha = g2 / denom
        weights = tf.reduce_sum(alpha * tf.nn.relu(gradients), axis=[1, 2], keepdims=True)
        return tf.reduce_sum(weights * activations, axis=-1)


class LayerCAM(CAMMethod):
    """LayerCAM (Jiang et al., 2021): each location weighted by its own positive gradient.

    Works well on earlier, higher-resolution layers too.
    """

    name = "layercam"

    def weigh(self, activations: Any, gradients: Any) -> Any:
        import tensorflow as tf

        return tf.reduce_sum(tf.nn.relu(gradients) * activations, axis=-1)


class HiResCAM(CAMMethod):
    """HiResCAM (Draelos and Carin, 2020): element-wise gradient times activation, summed over channels.

    Provably faithful to the model for architectures ending in global average pooling and a dense layer.
    """

    name = "hirescam"

    def weigh(self, activations: Any, gradients: Any) -> Any:
        import tensorflow as tf

        return tf.reduce_sum(gradients * activations, axis=-1)
