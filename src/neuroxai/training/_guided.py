"""Mask-guided training: cross-entropy plus an explanation loss that keeps the model's evidence on the tumour.

A classifier can be right for the wrong reasons: on real MRI a model trained
with cross-entropy alone often bases its decision on the whole head, and its
heatmaps point at the tumour less often than a fixed blob in the image
centre. For training images that have a tumour mask, guidance adds a term
that penalises evidence outside the mask:

``"cam"`` (default)
    The HiResCAM map of the true class at the target layer, ``sum_k
    dS_c/dA_k * A_k`` (for a global-average-pooling head this is the class
    activation map), passed through a soft ReLU at the map's own scale and
    upsampled to the input size; the loss is the share of its mass outside the
    mask, ``1 - energy``. It shapes what Grad-CAM-family explanations show,
    in the spirit of GAIN (Li et al. 2018) and HiResCAM-guided training. (A
    hard ReLU would give a map without positive evidence no gradient at all,
    and training can get stuck there.)
``"gradients"``
    "Right for the right reasons" (Ross, Hughes and Doshi-Velez 2017): the
    input gradients of the summed log-probabilities; the loss is the share of
    their squared mass outside the mask (scale-free, so one weight suits 0..1
    and 0..255 inputs).

Images without a mask (``notumor``, or images whose mask is missing)
contribute only cross-entropy. The total loss is ``cross-entropy + weight *
guidance``; the logged ``loss`` and ``val_loss`` stay plain cross-entropy
(comparable with unguided runs; early stopping and checkpoints choose on it),
and ``guidance_loss`` is logged beside them. Everything runs inside the
compiled training step, batched: no per-image Python loop.

On TensorFlow the model's own training step takes the gradients with nested
``tf.GradientTape`` blocks. On JAX Keras' stateless training step runs and
``jax.value_and_grad`` differentiates :meth:`GuidedModel.compute_loss_and_updates`:
one forward pass in training mode inside a :class:`keras.StatelessScope`, the
guidance term's inner gradient taken there with ``jax.value_and_grad`` (with
respect to a zero offset added to the CAM layer's activation, or to the
input), and the batch-norm statistics, seed states and metric states it
changed handed back to Keras.

The trade-off: a higher weight moves the evidence further into the mask, and
can cost accuracy when the context outside the tumour carries real
information. Measure both (``neuroxai evaluate-xai --metric reliance`` tells
whether the model now depends on the tumour, not only whether its heatmap
looks right).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.models import LayerPath
    from neuroxai.training._guidance import MaskGuidance

__all__ = ["GuidedModel"]

#: Sharpness of the soft ReLU applied to the class-activation map (in units of the map's largest magnitude):
#: at 10, a location at -20% of the peak keeps 0.01% of a peak location's weight.
_SHARPNESS = 10.0


class GuidedModel(keras.Model):  # type: ignore[misc]  # Keras ships no type information
    """Trains ``model`` with cross-entropy plus a mask-guidance term; ``model`` keeps every weight.

    Only ``fit`` uses this wrapper: it holds no variables of its own, so the
    wrapped model is what is saved, loaded and explained. Training batches are
    ``((images, masks), labels)`` (masks ``[B, H, W, 1]``, all zero where an
    image has none); validation batches are plain ``(images, labels)``.

    Args:
        model: The classifier (any Keras model the explainer can trace).
        guidance: The settings.
        target_path: The CAM layer's path (for ``kind="cam"``).
        loss: The classification loss (default sparse categorical cross-entropy on probabilities).
    """

    def __init__(self, model: keras.Model, guidance: MaskGuidance, target_path: LayerPath | None, loss: Any = None) -> None:
        from neuroxai.models import TracedModel

        super().__init__(name=f"{model.name}_guided")
        self.inner = model
        self.guidance = guidance
        self._traced = TracedModel(model, target_path if guidance.kind == "cam" else None)
        self._loss_fn = keras.losses.get(loss) if loss is not None else keras.losses.SparseCategoricalCrossentropy()
        self.ce_tracker = keras.metrics.Mean(name="loss")
        self.guidance_tracker = keras.metrics.Mean(name="guidance_loss")

    def call(self, inputs: Any, training: bool = False) -> Any:
        x = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
        return self.inner(x, training=training)

    # ------------------------------------------------------------------ guidance terms
    def _cam_term(self, x: Any, y: Any, masks: Any) -> tuple[Any, Any]:
        """Probabilities and the per-image share of HiResCAM mass outside the mask."""
        import tensorflow as tf

        with tf.GradientTape(watch_accessed_variables=False) as tape:

            def capture(t: Any) -> Any:
                tape.watch(t)
                return t

            result = self._traced(x, capture, training=True)
            score = tf.reduce_sum(tf.gather(tf.cast(result.scores, tf.float32), y, axis=1, batch_dims=1))
        grads = tape.gradient(score, result.features)
        acts = tf.cast(self._traced.to_grid(result.features), tf.float32)  # a token layer on its grid
        grads = tf.zeros_like(acts) if grads is None else tf.cast(self._traced.to_grid(grads), tf.float32)
        cam = tf.reduce_sum(grads * acts, axis=-1)
        # A soft ReLU at the map's own scale: positive evidence counts as the displayed map does, while a map with
        # no positive evidence still has a gradient (a hard ReLU would leave training stuck at "all outside").
        scale = tf.stop_gradient(tf.reduce_max(tf.abs(cam), axis=[1, 2], keepdims=True)) + 1e-12
        soft = tf.nn.softplus(_SHARPNESS * cam / scale)[..., None]
        up = tf.image.resize(soft, tf.shape(x)[1:3], method="bilinear")[..., 0]
        return result.probabilities, _outside_share(up, masks[..., 0])

    def _gradient_term(self, x: Any, masks: Any) -> tuple[Any, Any]:
        """Probabilities and the per-image share of squared input-gradient mass outside the mask."""
        import tensorflow as tf

        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            probs = self.inner(x, training=True)
            logp = tf.reduce_sum(tf.math.log(tf.clip_by_value(tf.cast(probs, tf.float32), 1e-7, 1.0)))
        gx = tape.gradient(logp, x)
        sq = tf.reduce_sum(tf.square(tf.cast(gx, tf.float32)), axis=-1)
        return probs, _outside_share(sq, masks[..., 0])

    # ------------------------------------------------------------------ steps
    def train_step(self, *args: Any) -> Any:
        """TensorFlow: the step below. JAX: Keras' stateless step, which calls :meth:`compute_loss_and_updates`."""
        if keras.backend.backend() == "jax":
            return super().train_step(*args)
        return self._tf_train_step(*args)

    def test_step(self, *args: Any) -> Any:
        """Plain cross-entropy and the metrics, without a guidance term (validation batches carry no masks)."""
        if keras.backend.backend() == "jax":
            logs, state = super().test_step(*args)  # its loss is compute_loss below
            return {k: v for k, v in logs.items() if k != self.guidance_tracker.name}, state
        return self._tf_test_step(*args)

    def compute_loss(
        self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None, training: bool = True
    ) -> Any:
        """The classification loss (JAX evaluation: what ``loss`` and ``val_loss`` report)."""
        ce = self._loss_fn(keras.ops.cast(y, "int32"), y_pred, sample_weight=sample_weight)
        self.ce_tracker.update_state(ce)
        return ce

    def compute_loss_and_updates(
        self,
        trainable_variables: Any,
        non_trainable_variables: Any,
        metrics_variables: Any,
        x: Any,
        y: Any,
        sample_weight: Any,
        training: bool = False,
        optimizer_variables: Any = None,
    ) -> Any:
        """JAX: the guided loss of a training batch as a pure function of the variables' values (``jax.grad`` takes it).

        The forward pass, the guidance term's inner gradient and the metric updates run in one
        :class:`keras.StatelessScope` over the values passed in; the batch-norm statistics, seed states and
        metric states it changed come back out, as Keras' own step expects.
        """
        if not (training and isinstance(x, (tuple, list))):
            return super().compute_loss_and_updates(
                trainable_variables,
                non_trainable_variables,
                metrics_variables,
                x,
                y,
                sample_weight,
                training=training,
                optimizer_variables=optimizer_variables,
            )
        images, masks = x
        own = [*self.trainable_variables, *self.non_trainable_variables, *self.metrics_variables]
        values = [*trainable_variables, *non_trainable_variables, *metrics_variables]
        with keras.StatelessScope(state_mapping=list(zip(own, values))) as scope:
            total, ce, probs = self._guided_loss(images, y, masks, sample_weight)
        non_trainable = _current_values(scope, self.non_trainable_variables, non_trainable_variables)
        metrics = _current_values(scope, self.metrics_variables, metrics_variables)
        if self.optimizer is not None:  # a LossScaleOptimizer scales the loss (Keras' step does the same)
            with keras.StatelessScope(state_mapping=list(zip(self.optimizer.variables, optimizer_variables))):
                total = self.optimizer.scale_loss(total)
        return total, (ce, probs, non_trainable, metrics)

    def _guided_loss(self, x: Any, y: Any, masks: Any, sample_weight: Any) -> tuple[Any, Any, Any]:
        """``(total, cross-entropy, probabilities)`` of a training batch; updates the two trackers.

        Written on ``keras.ops``; the guidance term's inner gradient is the backend's own (nested
        ``tf.GradientTape`` on TensorFlow, ``jax.value_and_grad`` on JAX).
        """
        from keras import ops

        y = ops.cast(y, "int32")
        masks = ops.cast(masks, "float32")
        has = ops.cast(ops.max(masks, axis=(1, 2, 3)) > 0.5, "float32")
        on_jax = keras.backend.backend() == "jax"
        if self.guidance.kind == "cam":
            probs, outside = (self._jax_cam_term if on_jax else self._cam_term)(x, y, masks)
        else:
            probs, outside = (self._jax_gradient_term if on_jax else self._gradient_term)(x, masks)
        ce = self._loss_fn(y, probs, sample_weight=sample_weight)
        guide = ops.sum(has * outside) / ops.maximum(ops.sum(has), 1.0)
        total = ce + float(self.guidance.weight) * guide
        self.ce_tracker.update_state(ce)
        self.guidance_tracker.update_state(guide, sample_weight=ops.sum(has))
        return total, ce, probs

    def _jax_forward(self, fn: Any, argument: Any) -> tuple[Any, Any]:
        """``jax.value_and_grad`` of ``fn(argument) -> (value, aux)`` in training mode, the model's state carried out.

        The inner gradient runs in a scope of its own over the current (traced) values; the states the forward
        pass changed (batch-norm statistics, seed states) come out as auxiliary results and are assigned in the
        enclosing scope, so no value of the inner transformation leaks out of it.
        """
        import jax

        variables = list(self.inner.variables)
        current = [v.value for v in variables]
        changing = list(self.inner.non_trainable_variables)

        def wrapped(arg: Any) -> Any:
            with keras.StatelessScope(state_mapping=list(zip(variables, current))) as scope:
                value, aux = fn(arg)
                updated = [scope.get_current_value(v) for v in changing]
            return value, (aux, updated)

        (_, (aux, updated)), grads = jax.value_and_grad(wrapped, has_aux=True)(argument)
        for variable, value in zip(changing, updated, strict=True):
            if value is not None:
                variable.assign(value)
        return aux, grads

    def _jax_cam_term(self, x: Any, y: Any, masks: Any) -> tuple[Any, Any]:
        """JAX: :meth:`_cam_term`, the gradient taken with respect to a zero offset added to the activation."""
        import jax
        import jax.numpy as jnp
        from keras import ops

        shape = jax.eval_shape(lambda: self._traced(x).features)  # inference mode, abstract: no state changes

        def score(offset: Any) -> Any:
            result = self._traced(x, lambda t: t + offset, training=True)
            picked = jnp.take_along_axis(result.scores.astype(jnp.float32), y[:, None], axis=1)
            return jnp.sum(picked), (result.features, result.probabilities)

        (acts, probs), grads = self._jax_forward(score, jnp.zeros(shape.shape, shape.dtype))
        cam = ops.sum(ops.cast(grads, "float32") * ops.cast(acts, "float32"), axis=-1)
        scale = ops.stop_gradient(ops.max(ops.abs(cam), axis=(1, 2), keepdims=True)) + 1e-12
        soft = ops.softplus(_SHARPNESS * cam / scale)[..., None]
        up = ops.image.resize(soft, (int(x.shape[1]), int(x.shape[2])), interpolation="bilinear")[..., 0]
        return probs, _outside_share(up, masks[..., 0])

    def _jax_gradient_term(self, x: Any, masks: Any) -> tuple[Any, Any]:
        """JAX: :meth:`_gradient_term` with ``jax.value_and_grad`` with respect to the input."""
        import jax.numpy as jnp
        from keras import ops

        def logp(inputs: Any) -> Any:
            probs = self.inner(inputs, training=True)
            return jnp.sum(jnp.log(jnp.clip(probs.astype(jnp.float32), 1e-7, 1.0))), probs

        probs, gx = self._jax_forward(logp, x)
        sq = ops.sum(ops.square(ops.cast(gx, "float32")), axis=-1)
        return probs, _outside_share(sq, masks[..., 0])

    # ------------------------------------------------------------------ TensorFlow steps
    def _tf_train_step(self, data: Any) -> dict[str, Any]:
        import tensorflow as tf

        inputs, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, masks = inputs
        y = tf.cast(y, tf.int32)
        with tf.GradientTape() as tape:
            total, _, probs = self._guided_loss(x, y, masks, sample_weight)
        variables = self.trainable_variables
        grads = tape.gradient(total, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self.compute_metrics(x, y, probs, sample_weight=sample_weight)  # type: ignore[no-any-return]  # Keras is untyped

    def _tf_test_step(self, data: Any) -> dict[str, Any]:
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, (tuple, list)):
            x = x[0]
        probs = self.inner(x, training=False)
        self.ce_tracker.update_state(self._loss_fn(tf.cast(y, tf.int32), probs, sample_weight=sample_weight))
        logs: dict[str, Any] = self.compute_metrics(x, y, probs, sample_weight=sample_weight)
        logs.pop(self.guidance_tracker.name, None)  # validation batches carry no masks: no guidance term to report
        return logs


def _outside_share(maps: Any, masks: Any) -> Any:
    """Per image, the share of a non-negative map's mass outside the mask (1 for an all-zero map)."""
    from keras import ops

    total = ops.sum(maps, axis=(1, 2))
    inside = ops.sum(maps * masks, axis=(1, 2))
    return 1.0 - inside / (total + 1e-8)


def _current_values(scope: Any, variables: Any, passed: Any) -> list[Any]:
    """The values ``variables`` hold at the end of ``scope`` (those it did not change: as ``passed`` in)."""
    out = []
    for variable, value in zip(variables, passed, strict=True):
        current = scope.get_current_value(variable)
        out.append(value if current is None else current)
    return out
