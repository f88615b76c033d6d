"""Score-CAM (Wang et al., 2020): channels weighted by the class score of the masked input.

Gradient-free. Each channel of the target layer is upsampled to the input
size, scaled to [0, 1] and used as a soft mask on the image; the target
class probability of the masked image is that channel's weight. Channels are
processed in chunks: one batched, compiled forward pass per chunk of
``batch_size // n_images`` channels, so the cost grows with the number of
channels, not with Python loops over images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroxai.errors import ExplainError
from neuroxai.explain._base import CAMMethod, _gather, _resolve_targets, normalize_maps

__all__ = ["ScoreCAM"]


class ScoreCAM(CAMMethod):
    """Score-CAM: weigh each channel by the target probability of the image masked with it.

    Options:
        max_channels: Use only the ``max_channels`` channels with the highest
            mean activation per image (``None``: all channels). Each channel
            costs one forward pass per image.

    Example:
        >>> Explainer(model, method="scorecam", max_channels=64).explain(images)  # doctest: +SKIP
    """

    name = "scorecam"
    defaults = {"max_channels": None}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        mc = self.options["max_channels"]
        if mc is not None and (isinstance(mc, bool) or not isinstance(mc, (int, np.integer)) or mc < 1):
            raise ExplainError(f"Option 'max_channels' of method 'scorecam' must be None or an integer >= 1; got {mc!r}.")

    def samples_per_image(self) -> int:
        return 1  # chunks of channels are sized inside explain_batch

    def weigh(self, activations: Any, gradients: Any) -> Any:  # pragma: no cover - weights come from scores
        raise NotImplementedError("Score-CAM weighs channels with masked-input scores; see explain_batch")

    def _features(self, x: Any, targets: Any) -> tuple[Any, Any, Any]:
        import tensorflow as tf

        result = self.traced(x)
        probs = tf.cast(result.probabilities, tf.float32)
        resolved = _resolve_targets(probs, targets)
        acts = tf.cast(result.features, tf.float32)
        k = acts.shape[-1]
        m = k if self.options["max_channels"] is None else min(int(self.options["max_channels"]), k)
        mean = tf.reduce_mean(acts, axis=[1, 2])  # [B, K]
        _, idx = tf.math.top_k(mean, k=m)  # [B, M]
        selected = tf.gather(acts, idx, axis=3, batch_dims=1)  # [B, h, w, M]
        return selected, probs, resolved

    def _chunk(self, x: Any, targets: Any, acts: Any) -> Any:
        import tensorflow as tf

        size = tf.shape(x)[1:3]
        up = tf.image.resize(acts, size, method="bilinear")  # [B, H, W, c]
        lo = tf.reduce_min(up, axis=[1, 2], keepdims=True)
        hi = tf.reduce_max(up, axis=[1, 2], keepdims=True)
        rng = hi - lo
        masks = tf.where(rng > 1e-12, (up - lo) / tf.where(rng > 1e-12, rng, tf.ones_like(rng)), tf.zeros_like(up))
        masks = tf.transpose(masks, [0, 3, 1, 2])[..., None]  # [B, c, H, W, 1]
        masked = x[:, None] * masks  # [B, c, H, W, C]
        b, c = tf.shape(masked)[0], tf.shape(masked)[1]
        flat = tf.reshape(masked, tf.concat([[b * c], tf.shape(x)[1:]], axis=0))
        probs = tf.cast(self.traced(flat).probabilities, tf.float32)
        picked = _gather(probs, tf.repeat(targets, c))
        return tf.reshape(picked, [b, c])

    def explain_batch(self, x: Any, targets: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import tensorflow as tf

        feats = self._function("features", self._features)
        acts, probs, resolved = feats(x, targets)
        chunk_sig = [*self._signature(), tf.TensorSpec((None, None, None, None), tf.float32)]
        chunk_fn = self._function("chunk", self._chunk, chunk_sig)
        b = int(x.shape[0])
        m = int(acts.shape[-1])
        per_call = max(1, self.batch_size // max(b, 1))
        weights = []
        for start in range(0, m, per_call):
            weights.append(chunk_fn(x, resolved, acts[..., start : start + per_call]))
        w = tf.concat(weights, axis=1)  # [B, M]
        raw = tf.reduce_sum(acts * w[:, None, None, :], axis=-1)
        maps = normalize_maps(raw, tf.shape(x)[1:3])
        return maps.numpy(), probs.numpy(), resolved.numpy()
