"""Occlusion sensitivity (Zeiler and Fergus, 2014): how much the target probability drops
when a square patch is covered.

A :class:`~neuroxai.explain.PerturbationMethod`: the patch grid is built in
the graph, and patches are scored in chunks, one batched, compiled forward
pass per chunk of ``batch_size // n_images`` patch positions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from neuroxai.errors import ExplainError
from neuroxai.explain._base import PerturbationMethod, check_positive_int

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.models._graph import ForwardResult

__all__ = ["Occlusion"]


def _starts(n: Any, patch: Any, stride: Any) -> Any:
    """Patch start positions along one axis: every ``stride``, plus one flush with the far edge."""
    import tensorflow as tf

    last = tf.maximum(n - patch, 0)
    starts = tf.range(0, last + 1, stride)
    extra = tf.cast(starts[-1] < last, tf.int32)
    return tf.concat([starts, [last]], axis=0)[: tf.shape(starts)[0] + extra]


class Occlusion(PerturbationMethod):
    """Occlusion sensitivity: each pixel's importance is the mean probability drop of the patches covering it.

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
        import tensorflow as tf

        height, width = tf.shape(x)[1], tf.shape(x)[2]
        if self.options["patch_size"] is None:
            patch = tf.maximum(1, tf.minimum(height, width) // 8)
        else:
            patch = tf.constant(int(self.options["patch_size"]), tf.int32)
        stride = (
            tf.maximum(1, patch // 2) if self.options["stride"] is None else tf.constant(int(self.options["stride"]), tf.int32)
        )
        ys, xs = _starts(height, patch, stride), _starts(width, patch, stride)
        rows = tf.range(height)[None, :]
        cols = tf.range(width)[None, :]
        in_y = tf.logical_and(rows >= ys[:, None], rows < ys[:, None] + patch)  # [Py, H]
        in_x = tf.logical_and(cols >= xs[:, None], cols < xs[:, None] + patch)  # [Px, W]
        masks = tf.logical_and(in_y[:, None, :, None], in_x[None, :, None, :])  # [Py, Px, H, W]
        masks = tf.reshape(tf.cast(masks, tf.float32), [-1, height, width])  # [P, H, W]
        return tf.transpose(masks, [1, 2, 0])[None]  # [1, H, W, P]

    def perturb(self, x: Any, units: Any) -> Any:
        import tensorflow as tf

        m = tf.transpose(units, [0, 3, 1, 2])[..., None]  # [1, c, H, W, 1]
        return x[:, None] * (1.0 - m) + float(self.options["fill"]) * m

    def attribute(self, x: Any, units: Any, scores: Any, clean: Any) -> Any:
        import tensorflow as tf

        masks = units[0]  # [H, W, P]
        drop = clean[:, None] - scores  # [B, P]
        counts = tf.maximum(tf.reduce_sum(masks, axis=-1), 1.0)
        return tf.einsum("bp,hwp->bhw", drop, masks) / counts[None]
