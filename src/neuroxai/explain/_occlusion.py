"""Occlusion sensitivity (Zeiler and Fergus, 2014): how much the target probability drops
when a square patch is covered.

A :class:`~neuroxai.explain.PerturbationMethod`: the patch grid is built in
the graph, and patches are scored in chunks, one batched, compiled forward
pass per chunk of ``batch_size // n_images`` patch positions. Written on
``keras.ops``; the patch positions are worked out in Python where the image
size is static (always on JAX and PyTorch), in the graph where it is not (a free-size
model on TensorFlow).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from neuroxai.errors import ExplainError
from neuroxai.explain._base import PerturbationMethod, check_positive_int

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.models._graph import ForwardResult

__all__ = ["Occlusion"]

#: Drops up to this fraction of the image's largest score are float32 rounding (2**-16, 128 ulps of the score):
#: a map whose largest drop is no larger comes back all zero.
_ROUNDING = 2.0**-16


def _starts(n: Any, patch: Any, stride: Any) -> Any:
    """Patch start positions along one axis: every ``stride``, plus one flush with the far edge.

    Python ints in, an int32 numpy vector out; TensorFlow scalars in (a dynamic image size), a tensor out.
    """
    if isinstance(n, int) and isinstance(patch, int) and isinstance(stride, int):
        last = max(n - patch, 0)
        starts = list(range(0, last + 1, stride))
        return np.asarray(starts + ([last] if starts[-1] < last else []), np.int32)
    import tensorflow as tf

    last = tf.maximum(n - patch, 0)
    starts = tf.range(0, last + 1, stride)
    extra = tf.cast(starts[-1] < last, tf.int32)
    return tf.concat([starts, [last]], axis=0)[: tf.shape(starts)[0] + extra]


def _patch_and_stride(height: Any, width: Any, patch_size: int | None, stride: int | None) -> tuple[Any, Any]:
    """The patch side and stride: Python ints for a static image size, TensorFlow scalars for a dynamic one."""
    if isinstance(height, int) and isinstance(width, int):
        patch = max(1, min(height, width) // 8) if patch_size is None else int(patch_size)
        return patch, (max(1, patch // 2) if stride is None else int(stride))
    import tensorflow as tf

    patch_t = tf.maximum(1, tf.minimum(height, width) // 8) if patch_size is None else tf.constant(int(patch_size), tf.int32)
    return patch_t, (tf.maximum(1, patch_t // 2) if stride is None else tf.constant(int(stride), tf.int32))


class Occlusion(PerturbationMethod):
    """Occlusion sensitivity: each pixel's importance is the mean probability drop of the patches covering it.

    A map whose largest mean drop is within float32 rounding of the score (2**-16 of it) is all zero, like the
    map of a model that does not look at the image.

    Options:
        patch_size: Side of the square patch in pixels (default: 1/8 of the smaller image side, at least 1).
        stride: Step between patches (default: half the patch size, at least 1).
        fill: Value written into the patch, in the model's input range (default 0.0).
    """

    name = "occlusion"
    defaults: ClassVar[Mapping[str, Any]] = {"patch_size": None, "stride": None, "fill": 0.0}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for key in ("patch_size", "stride"):
            if self.options[key] is not None:
                check_positive_int(self.name, key, self.options[key])
        fill = self.options["fill"]
        if isinstance(fill, bool) or not isinstance(fill, (int, float)):
            raise ExplainError(f"Option 'fill' of method 'occlusion' must be a number; got {fill!r}.")

    def units(self, x: Any, result: ForwardResult) -> Any:
        """Patch masks ``[1, H, W, P]`` (1 inside the patch), rows of patches top to bottom."""
        from keras import ops

        shape = ops.shape(x)
        height, width = shape[1], shape[2]  # ints where static (always on JAX and PyTorch), else tensors
        patch, stride = _patch_and_stride(height, width, self.options["patch_size"], self.options["stride"])
        ys = ops.convert_to_tensor(_starts(height, patch, stride))  # a tensor: torch compares no tensor with numpy
        xs = ops.convert_to_tensor(_starts(width, patch, stride))
        rows = ops.arange(height, dtype="int32")[None, :]
        cols = ops.arange(width, dtype="int32")[None, :]
        in_y = ops.logical_and(rows >= ys[:, None], rows < ys[:, None] + patch)  # [Py, H]
        in_x = ops.logical_and(cols >= xs[:, None], cols < xs[:, None] + patch)  # [Px, W]
        masks = ops.logical_and(in_y[:, None, :, None], in_x[None, :, None, :])  # [Py, Px, H, W]
        masks = ops.reshape(ops.cast(masks, "float32"), (-1, height, width))  # [P, H, W]
        return ops.transpose(masks, (1, 2, 0))[None]  # [1, H, W, P]

    def perturb(self, x: Any, units: Any) -> Any:
        from keras import ops

        m = ops.expand_dims(ops.transpose(units, (0, 3, 1, 2)), -1)  # [1, c, H, W, 1]
        return x[:, None] * (1.0 - m) + float(self.options["fill"]) * m

    def attribute(self, x: Any, units: Any, scores: Any, clean: Any) -> Any:
        from keras import ops

        masks = units[0]  # [H, W, P]
        drop = clean[:, None] - scores  # [B, P]
        counts = ops.maximum(ops.sum(masks, axis=-1), 1.0)
        raw = ops.einsum("bp,hwp->bhw", drop, masks) / counts[None]
        # A drop within float32 rounding of the scores is no drop: the clean and the covered images run in batches of
        # other sizes, where kernels may sum in another order (Eigen's softmax gives 1/3 one ulp apart), and dividing
        # such noise by its own peak would paint a full-scale map for a model the patches do not change.
        noise = _ROUNDING * ops.maximum(clean, ops.max(scores, axis=1))  # [B]
        peak = ops.max(raw, axis=(1, 2))
        return ops.where((peak > noise)[:, None, None], raw, ops.zeros_like(raw))
