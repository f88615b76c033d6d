"""Occlusion sensitivity (Zeiler and Fergus, 2014): how much the target probability drops
when a square patch (a cube, for volumes) is covered.

A :class:`~neuroxai.explain.PerturbationMethod`: the patch grid is built in
the graph, and patches are scored in chunks, one batched, compiled forward
pass per chunk of ``batch_size // n_images`` patch positions. A unit is one
patch position (its start along each axis); each chunk's masks are built from
those starts when it is scored, and the map is assembled axis by axis (a
patch is a product of one interval per axis), so no mask of every patch is
ever held: a 64^3 volume has thousands of patch positions. Written on
``keras.ops``; the patch positions are worked out in Python where the image
size is static (always on JAX and PyTorch), in the graph where it is not (a
free-size model on TensorFlow).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from neuroxai.errors import ExplainError
from neuroxai.explain._base import PerturbationMethod, _image_size, check_positive_int

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


def _patch_and_stride(sides: Sequence[Any], patch_size: int | None, stride: int | None) -> tuple[Any, Any]:
    """The patch side and stride: Python ints for a static size, TensorFlow scalars for a dynamic one.

    Default patch: 1/8 of the smallest side of an image, 1/4 of a volume's (a volume has a third axis of
    positions: 7^3 = 343 patches at the default stride rather than 15^3 = 3375).
    """
    fraction = 8 if len(sides) == 2 else 4
    if all(isinstance(s, int) for s in sides):
        patch = max(1, min(sides) // fraction) if patch_size is None else int(patch_size)
        return patch, (max(1, patch // 2) if stride is None else int(stride))
    import tensorflow as tf

    smallest = tf.reduce_min(tf.stack([tf.cast(s, tf.int32) for s in sides]))
    patch_t = tf.maximum(1, smallest // fraction) if patch_size is None else tf.constant(int(patch_size), tf.int32)
    return patch_t, (tf.maximum(1, patch_t // 2) if stride is None else tf.constant(int(stride), tf.int32))


def _inside(n: Any, starts: Any, patch: Any) -> Any:
    """float32 ``[P, n]``: 1 where position ``0..n-1`` lies in the patch starting at each of ``starts`` ``[P]``."""
    from keras import ops

    pos = ops.arange(n, dtype="int32")[None, :]
    first = ops.cast(starts, "int32")[:, None]
    return ops.cast(ops.logical_and(pos >= first, pos < first + patch), "float32")


class Occlusion(PerturbationMethod):
    """Occlusion sensitivity: each pixel's importance is the mean probability drop of the patches covering it.

    Works on images and on volumes (a cube of side ``patch_size``). A map whose largest mean drop is within float32
    rounding of the score (2**-16 of it) is all zero, like the map of a model that does not look at the image.

    Options:
        patch_size: Side of the square (cubic) patch in pixels (default: 1/8 of an image's, 1/4 of a volume's smallest side).
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

    def _geometry(self, x: Any) -> tuple[tuple[Any, ...], Any, Any]:
        sides = _image_size(x)  # ints where static (always on JAX and PyTorch), else tensors
        patch, stride = _patch_and_stride(sides, self.options["patch_size"], self.options["stride"])
        return sides, patch, stride

    def units(self, x: Any, result: ForwardResult) -> Any:
        """Patch starts ``[1, A, P]`` (``A`` axes, ``P`` patch positions, row-major: the last axis fastest)."""
        from keras import ops

        sides, patch, stride = self._geometry(x)
        starts = [ops.convert_to_tensor(_starts(n, patch, stride)) for n in sides]  # tensors: torch compares none with numpy
        grids = ops.meshgrid(*starts, indexing="ij")
        return ops.cast(ops.stack([ops.reshape(g, (-1,)) for g in grids], axis=0), "float32")[None]

    def perturb(self, x: Any, units: Any) -> Any:
        from keras import ops

        sides, patch, _ = self._geometry(x)
        rank = len(sides)
        mask = None
        for axis, n in enumerate(sides):
            inside = _inside(n, units[0, axis], patch)  # [c, n]
            for _ in range(axis):
                inside = ops.expand_dims(inside, 1)
            for _ in range(rank - axis - 1):
                inside = ops.expand_dims(inside, -1)
            mask = inside if mask is None else mask * inside  # [c, *spatial]
        m = ops.expand_dims(mask, -1)[None]  # [1, c, *spatial, 1]
        return x[:, None] * (1.0 - m) + float(self.options["fill"]) * m

    def attribute(self, x: Any, units: Any, scores: Any, clean: Any) -> Any:
        from keras import ops

        sides, patch, stride = self._geometry(x)
        covers = [_inside(n, ops.convert_to_tensor(_starts(n, patch, stride)), patch) for n in sides]  # [P_a, n_a]
        drop = clean[:, None] - scores  # [B, P]
        total = ops.reshape(drop, (-1, *(ops.shape(c)[0] for c in covers)))  # [B, P_1, ..., P_A]
        counts = None
        for axis, cover in enumerate(covers):  # contract the first patch axis left; its pixel axis goes last
            total = ops.tensordot(total, cover, axes=[[1], [0]])
            per_axis = ops.sum(cover, axis=0)  # how many patches cover each position along this axis
            for _ in range(axis):
                per_axis = ops.expand_dims(per_axis, 0)
            counts = per_axis if counts is None else ops.expand_dims(counts, -1) * per_axis
        raw = total / ops.maximum(counts, 1.0)[None]
        # A drop within float32 rounding of the scores is no drop: the clean and the covered images run in batches of
        # other sizes, where kernels may sum in another order (Eigen's softmax gives 1/3 one ulp apart), and dividing
        # such noise by its own peak would paint a full-scale map for a model the patches do not change.
        noise = _ROUNDING * ops.maximum(clean, ops.max(scores, axis=1))  # [B]
        spatial = tuple(range(1, len(covers) + 1))
        peak = ops.max(raw, axis=spatial)
        keep = ops.reshape(peak > noise, (-1,) + (1,) * len(covers))
        return ops.where(keep, raw, ops.zeros_like(raw))
