"""The base classes every explanation method derives from.

A method only says how it weighs channels (CAM family) or pixels (gradient
and perturbation methods); the base classes own the compiled hot path, the
target handling and the post-processing (ReLU, bilinear resize to the input
size, division by the per-map maximum with a guard so an all-zero map stays
zero, non-finite values set to zero).

Targets reach the compiled functions as an ``int32`` vector where ``-1``
means "the predicted class", so the prediction and the explanation come
from one forward pass.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from neuroxai.errors import ExplainError

__all__ = ["CAMMethod", "ExplainMethod", "GradientMethod", "normalize_maps"]


def normalize_maps(raw: Any, size: Any) -> Any:
    """ReLU, bilinear resize to ``size`` and scale each map to [0, 1].

    Args:
        raw: Tensor ``[B, h, w]`` of unnormalised importance.
        size: ``(height, width)`` of the input images (ints or a 1-D int tensor).

    Returns:
        Tensor ``[B, H, W]`` float32 in [0, 1]; finite; an all-zero (or all
        negative) map comes back all zero.
    """
    import tensorflow as tf

    raw = tf.cast(raw, tf.float32)
    raw = tf.where(tf.math.is_finite(raw), raw, tf.zeros_like(raw))
    raw = tf.nn.relu(raw)
    resized = tf.image.resize(raw[..., None], size, method="bilinear")[..., 0]
    resized = tf.nn.relu(resized)
    peak = tf.reduce_max(resized, axis=[1, 2], keepdims=True)
    safe = tf.where(peak > 1e-12, peak, tf.ones_like(peak))
    out = tf.where(peak > 1e-12, resized / safe, tf.zeros_like(resized))
    return tf.clip_by_value(out, 0.0, 1.0)


def _resolve_targets(probs: Any, targets: Any) -> Any:
    import tensorflow as tf

    predicted = tf.argmax(probs, axis=-1, output_type=tf.int32)
    return tf.where(targets < 0, predicted, targets)


def _gather(scores: Any, targets: Any) -> Any:
    import tensorflow as tf

    return tf.gather(tf.cast(scores, tf.float32), targets, axis=1, batch_dims=1)


class ExplainMethod:
    """Base class of every explanation method.

    Subclasses set :attr:`name`, :attr:`defaults` (the options they accept and
    their default values) and implement :meth:`explain_batch`; in practice
    they derive from :class:`CAMMethod` or :class:`GradientMethod` and only
    override the weighting.

    Args:
        **options: Method options; names must be keys of :attr:`defaults`.

    Raises:
        ExplainError: An option is unknown.

    Example:
        >>> class MyCAM(CAMMethod):
        ...     name = "mycam"
        ...     def weigh(self, activations, gradients):
        ...         import tensorflow as tf
        ...         return tf.reduce_sum(tf.abs(gradients) * activations, axis=-1)
    """

    name: ClassVar[str] = ""
    uses_layer: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            accepted = ", ".join(sorted(self.defaults)) or "none"
            raise ExplainError(f"Unknown option(s) {', '.join(unknown)} for method {self.name!r}; accepted options: {accepted}.")
        self.options = {**self.defaults, **options}
        self.traced: Any = None
        self.batch_size = 32
        self._compiled: dict[str, Any] = {}

    def bind(self, traced: Any, batch_size: int) -> None:
        """Attach the traced model (see :class:`neuroxai.explain._graph.TracedModel`)."""
        self.traced = traced
        self.batch_size = int(batch_size)
        self._compiled = {}

    def samples_per_image(self) -> int:
        """Forward passes per image in one compiled call (the Explainer sizes batches with it)."""
        return 1

    def explain_batch(self, x: Any, targets: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Explain one batch.

        Args:
            x: float32 tensor ``[B, H, W, C]``.
            targets: int32 tensor ``[B]``; ``-1`` means the predicted class.

        Returns:
            ``(maps [B, H, W] in [0, 1], probabilities [B, K], targets [B])`` as numpy arrays.
        """
        raise NotImplementedError

    # helpers -------------------------------------------------------------------------------
    def _signature(self) -> list[Any]:
        import tensorflow as tf

        shape = (None, *self.traced.input_shape)
        return [tf.TensorSpec(shape, tf.float32), tf.TensorSpec((None,), tf.int32)]

    def _function(self, key: str, fn: Any, signature: list[Any] | None = None) -> Any:
        import tensorflow as tf

        if key not in self._compiled:
            self._compiled[key] = tf.function(fn, input_signature=signature or self._signature(), reduce_retracing=True)
        return self._compiled[key]

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({opts})"


class CAMMethod(ExplainMethod):
    """Class-activation-map methods: weigh the target layer's channels with its gradients.

    Subclasses override only :meth:`weigh`. The compiled hot path runs the
    model once under a ``GradientTape`` that watches the target feature map
    only, so gradients flow back no further than the target layer.
    """

    uses_layer = True

    def weigh(self, activations: Any, gradients: Any) -> Any:
        """Combine feature maps ``[B, h, w, K]`` and their gradients into a map ``[B, h, w]``.

        Args:
            activations: The target layer's output.
            gradients: d(target score)/d(activations), same shape.

        Returns:
            The raw (unnormalised) map; the base class applies ReLU, resizing and scaling.
        """
        raise NotImplementedError

    def _step(self, x: Any, targets: Any) -> tuple[Any, Any, Any]:
        import tensorflow as tf

        with tf.GradientTape(watch_accessed_variables=False) as tape:

            def capture(t: Any) -> Any:
                tape.watch(t)
                return t

            result = self.traced(x, capture)
            resolved = _resolve_targets(result.probabilities, targets)
            score = tf.reduce_sum(_gather(result.scores, resolved))
        grads = tape.gradient(score, result.features)
        acts = tf.cast(result.features, tf.float32)
        grads = tf.zeros_like(acts) if grads is None else tf.cast(grads, tf.float32)
        raw = self.weigh(acts, grads)
        maps = normalize_maps(raw, tf.shape(x)[1:3])
        return maps, tf.cast(result.probabilities, tf.float32), resolved

    def explain_batch(self, x: Any, targets: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        fn = self._function("step", self._step)
        maps, probs, resolved = fn(x, targets)
        return maps.numpy(), probs.numpy(), resolved.numpy()


class GradientMethod(ExplainMethod):
    """Pixel-level gradient methods: weigh pixels by d(score)/d(input) over samples.

    Subclasses override :meth:`samples` (which perturbed or interpolated
    copies of the batch to differentiate, stacked sample-major) and
    :meth:`combine` (how the per-sample input gradients become one map). All
    samples of a batch go through the model in one compiled call.
    """

    def samples(self, x: Any) -> Any:
        """Return ``[S, B, H, W, C]`` inputs to differentiate (default: the batch itself)."""
        return x[None]

    def combine(self, x: Any, samples: Any, gradients: Any) -> Any:
        """Turn gradients ``[S, B, H, W, C]`` into raw maps ``[B, H, W]``."""
        import tensorflow as tf

        return tf.reduce_max(tf.reduce_mean(tf.abs(gradients), axis=0), axis=-1)

    def _step(self, x: Any, targets: Any) -> tuple[Any, Any, Any]:
        import tensorflow as tf

        clean = self.traced(x)
        probs = tf.cast(clean.probabilities, tf.float32)
        resolved = _resolve_targets(probs, targets)
        samples = tf.cast(self.samples(x), tf.float32)
        n = tf.shape(samples)[0]
        b = tf.shape(x)[0]
        flat = tf.reshape(samples, tf.concat([[n * b], tf.shape(x)[1:]], axis=0))
        tiled = tf.tile(resolved, [n])
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(flat)
            result = self.traced(flat)
            score = tf.reduce_sum(_gather(result.scores, tiled))
        grads = tape.gradient(score, flat)
        grads = tf.zeros_like(flat) if grads is None else grads
        grads = tf.reshape(grads, tf.shape(samples))
        raw = self.combine(x, samples, grads)
        return normalize_maps(raw, tf.shape(x)[1:3]), probs, resolved

    def explain_batch(self, x: Any, targets: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        fn = self._function("step", self._step)
        maps, probs, resolved = fn(x, targets)
        return maps.numpy(), probs.numpy(), resolved.numpy()


def check_positive_int(method: str, option: str, value: Any) -> int:
    """Validate an integer option >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ExplainError(f"Option {option!r} of method {method!r} must be an integer >= 1; got {value!r}.")
    return int(value)
