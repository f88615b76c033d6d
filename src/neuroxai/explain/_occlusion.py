"""Occlusion sensitivity (Zeiler and Fergus, 2014): how much the target probability drops
when a square patch is covered.

Patches are processed in chunks: one batched, compiled forward pass per chunk
of ``batch_size // n_images`` patch positions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroxai.errors import ExplainError
from neuroxai.explain._base import ExplainMethod, _gather, _resolve_targets, check_positive_int, normalize_maps

__all__ = ["Occlusion"]


class Occlusion(ExplainMethod):
    """Occlusion sensitivity: each pixel's importance is the mean probability drop of the patches covering it.

    Options:
        patch_size: Side of the square patch in pixels (default: 1/8 of the smaller image side, at least 1).
        stride: Step between patches (default: half the patch size, at least 1).
        fill: Value written into the patch, in the model's input range (default 0.0).
    """

    name = "occlusion"
    defaults = {"patch_size": None, "stride": None, "fill": 0.0}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for key in ("patch_size", "stride"):
            if self.options[key] is not None:
                check_positive_int(self.name, key, self.options[key])
        if not isinstance(self.options["fill"], (int, float)):
            raise ExplainError(f"Option 'fill' of method 'occlusion' must be a number; got {self.options['fill']!r}.")

    def _masks(self, height: int, width: int) -> np.ndarray:
        patch = self.options["patch_size"] or max(1, min(height, width) // 8)
        stride = self.options["stride"] or max(1, patch // 2)
        ys = list(range(0, max(height - patch, 0) + 1, stride))
        xs = list(range(0, max(width - patch, 0) + 1, stride))
        if ys[-1] + patch < height:
            ys.append(height - patch)
        if xs[-1] + patch < width:
            xs.append(width - patch)
        masks = np.zeros((len(ys) * len(xs), height, width), np.float32)
        i = 0
        for y in ys:
            for x in xs:
                masks[i, y : y + patch, x : x + patch] = 1.0
                i += 1
        return masks

    def _clean(self, x: Any, targets: Any) -> tuple[Any, Any, Any]:
        import tensorflow as tf

        probs = tf.cast(self.traced(x).probabilities, tf.float32)
        resolved = _resolve_targets(probs, targets)
        return probs, resolved, _gather(probs, resolved)

    def _chunk(self, x: Any, targets: Any, masks: Any) -> Any:
        import tensorflow as tf

        m = masks[None, :, :, :, None]  # [1, P, H, W, 1]
        occluded = x[:, None] * (1.0 - m) + float(self.options["fill"]) * m
        b, p = tf.shape(x)[0], tf.shape(masks)[0]
        flat = tf.reshape(occluded, tf.concat([[b * p], tf.shape(x)[1:]], axis=0))
        probs = tf.cast(self.traced(flat).probabilities, tf.float32)
        return tf.reshape(_gather(probs, tf.repeat(targets, p)), [b, p])

    def explain_batch(self, x: Any, targets: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import tensorflow as tf

        height, width = int(x.shape[1]), int(x.shape[2])
        masks = self._masks(height, width)
        clean = self._function("clean", self._clean)
        probs, resolved, base = clean(x, targets)
        chunk_sig = [*self._signature(), tf.TensorSpec((None, None, None), tf.float32)]
        chunk_fn = self._function("chunk", self._chunk, chunk_sig)
        b = int(x.shape[0])
        per_call = max(1, self.batch_size // max(b, 1))
        drops = []
        for start in range(0, len(masks), per_call):
            scores = chunk_fn(x, resolved, tf.constant(masks[start : start + per_call]))
            drops.append(base[:, None] - scores)
        drop = tf.concat(drops, axis=1)  # [B, P]
        counts = np.maximum(masks.sum(axis=0), 1.0)
        raw = tf.einsum("bp,phw->bhw", drop, tf.constant(masks)) / counts[None]
        maps = normalize_maps(raw, (height, width))
        return maps.numpy(), probs.numpy(), resolved.numpy()
