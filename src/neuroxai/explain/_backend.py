"""The backend seam of the explanation core: compiling a hot path, and the gradient of the class score.

Everything else in the Grad-CAM family and the pixel-gradient methods is
written on ``keras.ops`` and runs unchanged on every backend listed in
:data:`neuroxai._keras_backend.EXPLAIN_BACKENDS`. Two things differ per backend,
and live here only:

- **compiling** a step ``fn(traced, images, targets, *extra)``
  (:func:`compile_step`): ``tf.function`` with a fixed input signature on
  TensorFlow (one trace for any batch size); ``jax.jit`` over the model's
  variables passed as arguments (:class:`neuroxai._keras_backend.StatelessJit`) on
  JAX (one trace per batch shape); on PyTorch eager under ``torch.no_grad``
  (:class:`neuroxai._keras_backend.TorchEager`);
- **value and gradient** of the summed target-class scores with respect to
  an intermediate activation (:func:`feature_gradients`: the target layer's
  output) or the input (:func:`input_gradients`): ``tf.GradientTape`` that
  watches that tensor only on TensorFlow; ``jax.value_and_grad`` on JAX,
  differentiating with respect to a zero offset added to the activation (the
  same gradient, and JAX prunes the backward pass to the layers after it);
  ``torch.autograd.grad`` on PyTorch, with autograd recording switched on from
  the target activation (detached, a leaf) onwards only, so neither the layers
  before it nor any parameter gradient is computed;
- the gradient of the class score with respect to every attention matrix of a
  transformer (:func:`attention_gradients`), taken the same way through a
  zero offset that each ``MultiHeadAttention`` op adds to its output;
- the few array operations whose ``keras.ops`` form cannot take TensorFlow's
  dynamic shapes (:func:`resize`, :func:`standard_normal`).

The score differentiated is the target class's pre-softmax score, or the value
of a callable target (:func:`target_scores`).

On every backend, gradients flow back no further than the tensor asked for, and the
targets are resolved inside the step (``-1``: the predicted class) so the
prediction and the explanation come from one forward pass.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai._keras_backend import compile_model_function, current
from neuroxai._keras_backend import to_numpy as _to_numpy
from neuroxai.errors import ExplainError

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.models._graph import ForwardResult, TracedModel

__all__ = [
    "Attend",
    "as_tensor",
    "attention_gradients",
    "attention_weights",
    "bind",
    "compile_step",
    "feature_gradients",
    "gather_scores",
    "input_gradients",
    "resize",
    "resize_bilinear",
    "resolve_targets",
    "standard_normal",
    "target_probabilities",
    "target_scores",
    "tensor_spec",
    "to_numpy",
    "tracing_count",
]

#: A backend tensor (TensorFlow, JAX and PyTorch ship no type information Keras shares).
Tensor = Any


def resolve_targets(probabilities: Tensor, targets: Tensor) -> Tensor:
    """``targets`` (int32 ``[B]``) with ``-1`` replaced by the predicted class."""
    from keras import ops

    predicted = ops.cast(ops.argmax(probabilities, axis=-1), "int32")
    return ops.where(targets < 0, predicted, ops.cast(targets, "int32"))


def gather_scores(scores: Tensor, targets: Tensor) -> Tensor:
    """float32 ``[B]``: ``scores[i, targets[i]]``."""
    from keras import ops

    picked = ops.take_along_axis(ops.cast(scores, "float32"), ops.expand_dims(ops.cast(targets, "int32"), -1), axis=1)
    return ops.squeeze(picked, axis=1)


def target_scores(result: ForwardResult, targets: Tensor) -> Tensor:
    """float32 ``[B]``: what gradient methods differentiate: the objective of a callable target, else the
    target class's score (``result.scores[i, targets[i]]``, pre-softmax where reachable)."""
    if result.objective is not None:
        return result.objective
    return gather_scores(result.scores, targets)


def target_probabilities(result: ForwardResult, targets: Tensor) -> Tensor:
    """float32 ``[B]``: what gradient-free methods watch fall: the objective of a callable target, else the
    target class's probability."""
    from keras import ops

    if result.objective is not None:
        return result.objective
    return gather_scores(ops.cast(result.probabilities, "float32"), targets)


def _call_traced(ref: weakref.ReferenceType[Any], fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(traced, *args)`` for the traced model behind ``ref`` (called while tracing only)."""
    traced = ref()
    if traced is None:  # pragma: no cover - a fixed input signature never traces again
        raise ExplainError("The explainer that compiled this function is gone; build a new Explainer.")
    return fn(traced, *args)


class _SharedStep:
    """A step under ``jax.jit`` (or run eagerly on PyTorch), shared by every explainer of one model that asks
    for the same cache key.

    JAX traces again for each new batch shape, possibly long after the explainer that compiled the step
    is gone (PyTorch runs the Python function on every call); so each call names the traced model to run
    with (any of the sharers: the cache key fixes the target layer, head and output, so they run alike).
    """

    def __init__(self, traced: TracedModel, fn: Callable[..., Any]) -> None:
        self._fn = fn
        self._traced = weakref.ref(traced)
        self._jit = compile_model_function(traced.model, self._trace)

    def _trace(self, *args: Any) -> Any:
        return _call_traced(self._traced, self._fn, *args)

    def __call__(self, traced: TracedModel, *args: Any) -> Any:
        self._traced = weakref.ref(traced)
        return self._jit(*args)

    def tracing_count(self) -> int:
        return int(self._jit.tracing_count())  # type: ignore[attr-defined]


def compile_step(traced: TracedModel, fn: Callable[..., Any], extra_signature: Sequence[Any] = ()) -> Any:
    """``fn(traced, images, targets, *extra)`` compiled for the running backend; call it through :func:`bind`.

    Args:
        traced: The traced model (held weakly).
        fn: The step, written on ``keras.ops`` and the functions of this module.
        extra_signature: ``tf.TensorSpec`` of the arguments after ``(images, targets)`` (TensorFlow only;
            JAX reads shapes from the arguments).

    Returns:
        The compiled step (a ``tf.function`` on TensorFlow, traced once; on JAX a ``jax.jit`` step
        traced once per batch shape; on PyTorch an eager step).
    """
    if current() != "tensorflow":
        return _SharedStep(traced, fn)
    import tensorflow as tf

    call = functools.partial(_call_traced, weakref.ref(traced), fn)

    signature = [
        tf.TensorSpec((None, *traced.input_shape), tf.float32),
        tf.TensorSpec((None,), tf.int32),
        *extra_signature,
    ]
    return tf.function(call, input_signature=signature, reduce_retracing=True)


def tensor_spec(shape: Sequence[int | None], dtype: str = "float32") -> Any:
    """The signature of one extra argument of a step, for :func:`compile_step` (``None`` on JAX and PyTorch)."""
    if current() != "tensorflow":
        return None
    import tensorflow as tf

    return tf.TensorSpec(tuple(shape), dtype)


def bind(step: Any, traced: TracedModel) -> Callable[..., Any]:
    """A step from :func:`compile_step` as a callable ``(images, targets, *extra)`` for ``traced``."""
    if isinstance(step, _SharedStep):
        return functools.partial(step, traced)
    return step  # type: ignore[no-any-return]  # a tf.function, its traced model bound weakly at compile time


def tracing_count(step: Any) -> int:
    """How many times a step from :func:`compile_step` was traced."""
    if isinstance(step, _SharedStep):
        return step.tracing_count()
    return int(step.experimental_get_tracing_count())


def as_tensor(array: np.ndarray) -> Tensor:
    """A numpy batch as the running backend's tensor (what compiled steps take)."""
    if current() == "jax":
        import jax.numpy as jnp

        return jnp.asarray(array)
    if current() == "torch":
        from keras import ops

        return ops.convert_to_tensor(array)
    import tensorflow as tf

    return tf.constant(array)


def to_numpy(tensor: Tensor) -> np.ndarray:
    """A backend tensor as a numpy array (no copy where the backend allows; a torch tensor detached, on the CPU)."""
    return _to_numpy(tensor)


def feature_gradients(traced: TracedModel, x: Tensor, targets: Tensor) -> tuple[ForwardResult, Tensor, Tensor]:
    """One forward pass, and the gradient of the summed target scores w.r.t. the target layer's output.

    Args:
        traced: A model traced to a target layer.
        x: float32 ``[B, H, W, C]``.
        targets: int32 ``[B]``; ``-1``: the predicted class.

    Returns:
        ``(result, resolved targets [B] int32, gradients)``: the forward pass, the classes explained
        and float32 d(sum of target scores)/d(features), shaped like ``result.features`` (zeros where
        the score does not depend on them).
    """
    if current() == "jax":
        return _jax_feature_gradients(traced, x, targets)
    if current() == "torch":
        return _torch_feature_gradients(traced, x, targets)
    import tensorflow as tf

    with tf.GradientTape(watch_accessed_variables=False) as tape:

        def capture(t: Tensor) -> Tensor:
            tape.watch(t)
            return t

        result = traced(x, capture)
        resolved = resolve_targets(result.probabilities, targets)
        score = tf.reduce_sum(target_scores(result, resolved))
    grads = tape.gradient(score, result.features)
    grads = tf.zeros_like(result.features, tf.float32) if grads is None else tf.cast(grads, tf.float32)
    return result, resolved, grads


def _jax_feature_gradients(traced: TracedModel, x: Tensor, targets: Tensor) -> tuple[ForwardResult, Tensor, Tensor]:
    import jax
    import jax.numpy as jnp

    from neuroxai.models._graph import ForwardResult

    shape = jax.eval_shape(lambda: traced(x).features)  # traced abstractly: no computation

    def score(offset: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor, Tensor, Tensor]]:
        result = traced(x, lambda t: t + offset)
        resolved = resolve_targets(result.probabilities, targets)
        total = jnp.sum(target_scores(result, resolved))
        return total, (result.features, result.scores, result.probabilities, result.objective, resolved)

    offset = jnp.zeros(shape.shape, shape.dtype)
    (_, (features, scores, probabilities, objective, resolved)), grads = jax.value_and_grad(score, has_aux=True)(offset)
    result = ForwardResult(features=features, scores=scores, probabilities=probabilities, objective=objective)
    return result, resolved, grads.astype(jnp.float32)


def _torch_feature_gradients(traced: TracedModel, x: Tensor, targets: Tensor) -> tuple[ForwardResult, Tensor, Tensor]:
    import torch

    def capture(t: Tensor) -> Tensor:  # from here on, record for autograd; the activation is the graph's leaf
        torch.set_grad_enabled(True)
        return t.detach().requires_grad_(True)

    recording = torch.is_grad_enabled()
    torch.set_grad_enabled(False)  # nothing before the target layer is recorded
    try:
        result = traced(x, capture)
        resolved = resolve_targets(result.probabilities, targets)
        score = torch.sum(target_scores(result, resolved))
    finally:
        torch.set_grad_enabled(recording)
    features = result.features
    grads = None
    if score.requires_grad and features.requires_grad:
        (grads,) = torch.autograd.grad(score, features, allow_unused=True)
    grads = torch.zeros_like(features, dtype=torch.float32) if grads is None else grads.to(torch.float32)
    return result, resolved, grads


def _torch_input_gradients(traced: TracedModel, x: Tensor, targets: Tensor) -> Tensor:
    import torch

    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        score = torch.sum(target_scores(traced(leaf), targets))
    grads = torch.autograd.grad(score, leaf, allow_unused=True)[0] if score.requires_grad else None
    return torch.zeros_like(leaf, dtype=torch.float32) if grads is None else grads.to(torch.float32)


#: How an attention-reading method runs one ``MultiHeadAttention`` op: ``attend(layer, call, args, kwargs, hook)``
#: returns the op's output; it hands the attention matrix ``[B, heads, T, S]`` to ``hook``, which returns a zero
#: offset to add to the attention where its output is formed (or ``None``: no gradient wanted).
Attend = Callable[[Any, Callable[..., Any], tuple[Any, ...], dict[str, Any], Callable[[Tensor], Any]], Any]


def attention_weights(traced: TracedModel, x: Tensor, attend: Attend) -> tuple[ForwardResult, list[Tensor]]:
    """One forward pass, and every attention matrix ``[B, heads, T, S]`` in the order the ops ran (no gradients)."""
    found = list[Tensor]()  # not an annotated name: AutoGraph cannot convert closures over those

    def hook(attention: Tensor) -> None:
        found.append(attention)

    result = traced(x, attention=lambda layer, call, args, kwargs: attend(layer, call, args, kwargs, hook))
    return result, found


def attention_gradients(
    traced: TracedModel, x: Tensor, targets: Tensor, attend: Attend
) -> tuple[ForwardResult, Tensor, list[Tensor], list[Tensor]]:
    """One forward pass, every attention matrix, and the gradient of the summed target scores w.r.t. each.

    Each attention ``A`` gets a zero offset ``D`` that ``attend`` adds where the op forms its output (the
    output is linear in ``A``, so d score / d ``D`` = d score / d ``A``); the gradient is taken w.r.t. the
    offsets, the same way on every backend as :func:`feature_gradients` takes it w.r.t. a feature map.

    Returns:
        ``(result, resolved targets [B], attentions, gradients)``, the lists in the order the ops ran.
    """
    if current() == "jax":
        return _jax_attention_gradients(traced, x, targets, attend)
    if current() == "torch":
        return _torch_attention_gradients(traced, x, targets, attend)
    import tensorflow as tf

    offsets = list[Tensor]()  # not annotated names: AutoGraph cannot convert closures over those
    found = list[Tensor]()
    with tf.GradientTape(watch_accessed_variables=False) as tape:

        def hook(attention: Tensor) -> Tensor:
            offset = tf.zeros_like(attention)
            tape.watch(offset)
            offsets.append(offset)
            found.append(attention)
            return offset

        result = traced(x, attention=lambda layer, call, args, kwargs: attend(layer, call, args, kwargs, hook))
        resolved = resolve_targets(result.probabilities, targets)
        score = tf.reduce_sum(target_scores(result, resolved))
    grads = tape.gradient(score, offsets)
    grads = [tf.zeros_like(o, tf.float32) if g is None else tf.cast(g, tf.float32) for o, g in zip(offsets, grads)]
    return result, resolved, found, grads


def _jax_attention_gradients(
    traced: TracedModel, x: Tensor, targets: Tensor, attend: Attend
) -> tuple[ForwardResult, Tensor, list[Tensor], list[Tensor]]:
    import jax
    import jax.numpy as jnp

    from neuroxai.models._graph import ForwardResult

    def run(offsets: list[Tensor] | None) -> tuple[ForwardResult, list[Tensor]]:
        found: list[Tensor] = []
        given = iter(offsets or ())

        def hook(attention: Tensor) -> Tensor:
            found.append(attention)
            return next(given, None) if offsets is not None else jnp.zeros_like(attention)

        result = traced(x, attention=lambda layer, call, args, kwargs: attend(layer, call, args, kwargs, hook))
        return result, found

    shapes = jax.eval_shape(lambda: run(None)[1])  # traced abstractly: no computation

    def score(offsets: list[Tensor]) -> tuple[Tensor, tuple[Any, ...]]:
        result, found = run(offsets)
        resolved = resolve_targets(result.probabilities, targets)
        total = jnp.sum(target_scores(result, resolved))
        return total, (result.features, result.scores, result.probabilities, result.objective, resolved, found)

    zeros = [jnp.zeros(s.shape, s.dtype) for s in shapes]
    (_, aux), grads = jax.value_and_grad(score, has_aux=True)(zeros)
    features, scores, probabilities, objective, resolved, found = aux
    result = ForwardResult(features=features, scores=scores, probabilities=probabilities, objective=objective)
    return result, resolved, found, [g.astype(jnp.float32) for g in grads]


def _torch_attention_gradients(
    traced: TracedModel, x: Tensor, targets: Tensor, attend: Attend
) -> tuple[ForwardResult, Tensor, list[Tensor], list[Tensor]]:
    import torch

    offsets: list[Tensor] = []
    found: list[Tensor] = []

    def hook(attention: Tensor) -> Tensor:  # from the first attention on, record for autograd; offsets are leaves
        torch.set_grad_enabled(True)
        offset = torch.zeros_like(attention, requires_grad=True)
        offsets.append(offset)
        found.append(attention)
        return offset

    recording = torch.is_grad_enabled()
    torch.set_grad_enabled(False)  # nothing before the first attention is recorded
    try:
        result = traced(x, attention=lambda layer, call, args, kwargs: attend(layer, call, args, kwargs, hook))
        resolved = resolve_targets(result.probabilities, targets)
        score = torch.sum(target_scores(result, resolved))
    finally:
        torch.set_grad_enabled(recording)
    grads: list[Any] = [None] * len(offsets)
    if offsets and score.requires_grad:
        grads = list(torch.autograd.grad(score, offsets, allow_unused=True))
    grads = [torch.zeros_like(o, dtype=torch.float32) if g is None else g.to(torch.float32) for o, g in zip(offsets, grads)]
    return result, resolved, [a.detach() for a in found], grads


def input_gradients(traced: TracedModel, x: Tensor, targets: Tensor) -> Tensor:
    """float32 d(sum of target scores)/d(x), ``x`` shaped like the model input (``targets`` resolved, ``[B]``)."""
    if current() == "jax":
        import jax
        import jax.numpy as jnp

        def score(inputs: Tensor) -> Tensor:
            return jnp.sum(target_scores(traced(inputs), targets))

        return jax.grad(score)(x).astype(jnp.float32)
    if current() == "torch":
        return _torch_input_gradients(traced, x, targets)
    import tensorflow as tf

    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        score = tf.reduce_sum(target_scores(traced(x), targets))
    grads = tape.gradient(score, x)
    return tf.zeros_like(x) if grads is None else tf.cast(grads, tf.float32)


def resize_bilinear(images: Tensor, size: Any) -> Tensor:
    """Bilinear resize of ``images`` ``[B, h, w, C]`` to ``size`` ``(height, width)`` (half-pixel centres, no antialiasing).

    ``size`` may hold tensors on TensorFlow (a free-size model's input); on JAX and PyTorch shapes are static.
    """
    height, width = size[0], size[1]
    if current() != "tensorflow":
        from keras import ops

        return ops.image.resize(images, (int(height), int(width)), interpolation="bilinear", data_format="channels_last")
    import tensorflow as tf

    return tf.image.resize(images, tf.stack([height, width]), method="bilinear")


def resize(images: Tensor, size: Sequence[Any]) -> Tensor:
    """Linear resize of ``images`` ``[B, *S, C]`` to ``size``: bilinear for 2 sides, trilinear for 3 (volumes).

    Half-pixel centres, no antialiasing. Trilinear interpolation is separable: each depth slice is resized
    bilinearly in height and width, then the depth axis is resized linearly (a bilinear resize of
    ``[depth, height * width]`` that keeps the second axis, where the sample points fall on the pixel
    centres, so it is exact). ``size`` may hold tensors on TensorFlow.
    """
    if len(size) == 2:
        return resize_bilinear(images, size)
    if len(size) != 3:
        raise ExplainError(f"Expected 2 or 3 spatial sides to resize to; got {len(size)}.")
    from keras import ops

    depth, height, width = size
    shape = ops.shape(images)  # ints where static, tensors where not (TensorFlow)
    d0, h0, w0, channels = shape[1], shape[2], shape[3], shape[4]
    if current() == "tensorflow":
        import tensorflow as tf

        x = tf.reshape(images, tf.stack([-1, h0, w0, channels]))
        x = tf.image.resize(x, tf.stack([height, width]), method="bilinear")
        x = tf.reshape(x, tf.stack([-1, d0, height * width, channels]))
        x = tf.image.resize(x, tf.stack([depth, height * width]), method="bilinear")
        return tf.reshape(x, tf.stack([-1, depth, height, width, channels]))
    depth, height, width = int(depth), int(height), int(width)
    x = ops.reshape(images, (-1, int(h0), int(w0), int(channels)))
    x = resize_bilinear(x, (height, width))
    x = ops.reshape(x, (-1, int(d0), height * width, int(channels)))
    x = resize_bilinear(x, (depth, height * width))
    return ops.reshape(x, (-1, depth, height, width, int(channels)))


def standard_normal(shape: Sequence[Any], seed: int) -> Tensor:
    """float32 standard normal noise of ``shape``, a pure function of ``seed`` (stateless; inside a compiled step).

    The noise is the same for the same seed on one backend; backends draw different numbers.
    """
    if current() == "jax":
        import jax

        return jax.random.normal(jax.random.key(int(seed)), tuple(shape), dtype="float32")
    if current() == "torch":
        import torch
        from keras import ops

        generator = torch.Generator().manual_seed(int(seed))  # drawn on the CPU: the same numbers on any device
        return ops.convert_to_tensor(torch.randn(tuple(int(d) for d in shape), generator=generator, dtype=torch.float32))
    import tensorflow as tf

    return tf.random.stateless_normal(tf.stack(list(shape)), seed=[int(seed), 0], dtype=tf.float32)
