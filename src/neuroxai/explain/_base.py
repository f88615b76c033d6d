"""The base classes every explanation method derives from, and the compile cache.

A method instance holds validated settings only. Everything a batch needs
arrives as arguments: the traced model (:class:`~neuroxai.explain.TracedModel`),
the images, the targets, the :class:`CompileCache` of the
:class:`~neuroxai.explain.Explainer` that owns the compiled functions, and the
batch size. So one method instance may serve several explainers at once.

Each family has one base that owns the compiled hot path, the target handling
and the post-processing (ReLU, bilinear resize to the input size (trilinear for
volumes), division by the per-map maximum with a guard so an all-zero map stays
zero, non-finite values set to zero); a method overrides one hook:

- :class:`CAMMethod`: gradient-weighted CAMs override :meth:`CAMMethod.weigh`
  (activations and their gradients -> map);
- :class:`GradientFreeCAMMethod`: CAMs weighted by scores of masked inputs
  override :meth:`GradientFreeCAMMethod.weigh` (masked-input scores -> channel weights);
- :class:`GradientMethod`: pixel-gradient methods override
  :meth:`GradientMethod.samples` (which copies to differentiate) and, where
  needed, :meth:`GradientMethod.combine`;
- :class:`PerturbationMethod`: the gradient-free base under
  :class:`GradientFreeCAMMethod` and :class:`~neuroxai.explain.Occlusion`;
- :class:`~neuroxai.explain.AttentionMethod` (in ``_attention.py``): attention
  rollout and its gradient-weighted variant, for transformers.

Images are ``[B, H, W, C]``, or volumes ``[B, D, H, W, C]``; feature maps
``[B, *grid, K]`` (token sequences put on their grid by
:meth:`~neuroxai.explain.TracedModel.to_grid`), maps ``[B, *grid]``: a hook
reduces over the spatial axes ``range(1, ndim - 1)`` (:func:`spatial_axes`).

Targets reach the compiled functions as an ``int32`` vector where ``-1``
means "the predicted class", so the prediction and the explanation come
from one forward pass. A callable target rides on the traced model
(:meth:`~neuroxai.explain.TracedModel.with_objective`): the bases explain its
value instead of a class score (:func:`neuroxai.explain._backend.target_scores`).

The CAM and pixel-gradient families are written on ``keras.ops`` over the
backend seam (:mod:`neuroxai.explain._backend`: compiling a step, the
gradient of the class score w.r.t. an activation) and run on every backend
in their :attr:`ExplainMethod.backends` (TensorFlow, JAX and PyTorch); so does the
gradient-free family (its hooks are on ``keras.ops`` too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from neuroxai._cache import PerModel
from neuroxai._keras_backend import EXPLAIN_BACKENDS
from neuroxai.errors import ExplainError
from neuroxai.explain import _backend

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.models._graph import ForwardResult, TracedModel

__all__ = [
    "BatchResult",
    "CAMMethod",
    "CompileCache",
    "ExplainMethod",
    "GradientFreeCAMMethod",
    "GradientMethod",
    "PerturbationMethod",
    "normalize_maps",
    "spatial_axes",
]

#: A backend tensor (TensorFlow, JAX and PyTorch ship no type information Keras shares).
Tensor = Any
#: What :meth:`ExplainMethod.explain_batch` returns: ``(maps [B, H, W] (or [B, D, H, W]), probabilities [B, K], targets [B])``.
BatchResult = tuple[np.ndarray, np.ndarray, np.ndarray]


def spatial_axes(tensor: Any) -> tuple[int, ...]:
    """The spatial axes of a batch ``[B, *S, C]``: ``(1, 2)`` for images and 2-D maps, ``(1, 2, 3)`` for volumes.

    Example:
        >>> spatial_axes(np.zeros((2, 7, 7, 16)))
        (1, 2)
    """
    return tuple(range(1, len(tensor.shape) - 1))


def normalize_maps(raw: Any, size: Any) -> Any:
    """ReLU, linear resize to ``size`` and scale each map to [0, 1].

    Args:
        raw: Tensor ``[B, h, w]`` (or ``[B, d, h, w]`` for volumes) of unnormalised importance.
        size: ``(height, width)`` (or ``(depth, height, width)``) of the inputs (ints, or tensors on TensorFlow).

    Returns:
        Tensor ``[B, H, W]`` (``[B, D, H, W]``) float32 in [0, 1]; finite; an all-zero (or all
        negative) map comes back all zero.
    """
    from keras import ops

    raw = ops.cast(raw, "float32")
    raw = ops.relu(ops.where(ops.isfinite(raw), raw, ops.zeros_like(raw)))  # on the small map: cheap
    # Linear interpolation weights are convex, so the upsampled map of a non-negative map is non-negative and
    # needs no second ReLU; dividing by the peak (by +inf for an all-zero map, which gives exact zeros) puts it
    # in [0, 1] in one pass over the full-size map.
    resized = _backend.resize(ops.expand_dims(raw, -1), tuple(size))[..., 0]
    axes = tuple(range(1, len(resized.shape)))
    peak = ops.max(resized, axis=axes, keepdims=True)
    return resized / ops.where(peak > 1e-12, peak, ops.full_like(peak, float("inf")))


def _image_size(x: Tensor) -> tuple[Any, ...]:
    """The spatial sides of a batch ``[B, *S, C]`` (``(H, W)`` or ``(D, H, W)``): ints where static, tensors where not."""
    from keras import ops

    shape = ops.shape(x)
    return tuple(shape[1 : len(x.shape) - 1])


_resolve_targets = _backend.resolve_targets


#: Compiled functions per model object, shared by every CompileCache that asks for the same key. Held
#: weakly: an entry goes with its model (the functions reach the model only through a weak reference).
_SHARED: PerModel[dict[tuple[Any, ...], Any]] = PerModel()


class CompileCache:
    """The compiled hot paths of one :class:`~neuroxai.explain.Explainer` (``tf.function`` or ``jax.jit``).

    Keyed by (model, target layer path and layout, head, output, callable target, method class,
    method options, function name): two method instances with the same class and
    options share their compiled functions. A callable target (an objective) keys by value when
    it is hashable by value (the target helpers are), else by identity: pass the same callable
    object again to reuse its compiled functions. On TensorFlow each function is
    traced once, with a fixed input signature ``(images [None, H, W, C]
    float32, targets [None] int32, *extra)``; on JAX once per batch shape; on PyTorch not at all (eager).
    All read the model's weights at call time (changing weights in place is
    seen by the next call).

    With ``shared=True`` (the default) a function compiled for a model object is
    reused by every later cache asking for the same key while that model lives,
    so explaining the same model with new :class:`~neuroxai.explain.Explainer`
    objects in a loop (as :func:`~neuroxai.evaluation.evaluate_explanations` does
    on every call) traces once, not once per explainer.

    Args:
        shared: Reuse functions other caches compiled for the same model (``False``: this cache's own only).

    Example:
        >>> cache = CompileCache()
        >>> len(cache)
        0
    """

    def __init__(self, shared: bool = True) -> None:
        self._functions: dict[tuple[Any, ...], Any] = {}  # compiled steps (tf.function, or a jax.jit step)
        self._shared = bool(shared)

    def function(
        self,
        traced: TracedModel,
        method: ExplainMethod,
        name: str,
        fn: Callable[..., Any],
        extra_signature: Sequence[Any] = (),
    ) -> Callable[..., Any]:
        """The compiled ``fn(traced, images, targets, *extra)`` for this model, layer, method and options.

        Args:
            traced: The traced model (bound as ``fn``'s first argument).
            method: The method whose settings ``fn`` depends on.
            name: Which of the method's functions (``"step"``, ``"prepare"`` ...).
            fn: The Python function, called as ``fn(traced, images, targets, *extra)``.
            extra_signature: ``tf.TensorSpec`` of the arguments after ``(images, targets)`` (TensorFlow).

        Returns:
            The compiled function (``tf.function`` or ``jax.jit``), taking ``(images, targets, *extra)``.
        """
        key = (
            traced.target_path,
            traced.head,
            traced.output_index,
            traced.layout,
            traced.objective_key,
            type(method),
            method.settings_key(),
            name,
            tuple(repr(s) for s in extra_signature),
        )
        compiled: Callable[..., Any] | None = self._functions.get(key)
        if compiled is None:
            store = _SHARED.get(traced.model, lambda m: {}) if self._shared else {}
            compiled = store.get(key)
            if compiled is None:
                compiled = _backend.compile_step(traced, fn, extra_signature)
                store[key] = compiled
            self._functions[key] = compiled
        return _backend.bind(compiled, traced)

    def tracing_count(self) -> int:
        """How many times the cached functions were traced in total (one each when signatures hold)."""
        return sum(_backend.tracing_count(fn) for fn in self._functions.values())

    def clear(self) -> None:
        """Forget every compiled function (the next call traces again)."""
        self._functions.clear()

    def __len__(self) -> int:
        return len(self._functions)

    def __repr__(self) -> str:
        return f"CompileCache({len(self)} function(s))"


class ExplainMethod:
    """Base class of every explanation method: validated settings, no state.

    Subclasses set :attr:`name` and :attr:`defaults` (the options they accept
    and their default values) and, in practice, derive from one family base
    (:class:`CAMMethod`, :class:`GradientFreeCAMMethod`, :class:`GradientMethod`,
    :class:`PerturbationMethod`) and override its one hook. A new family
    implements :meth:`explain_batch`.

    An instance holds its options only (read-only, :attr:`options`); the
    model, the batch size and the compiled functions are arguments of
    :meth:`explain_batch`, so one instance can serve several explainers.

    Args:
        **options: Method options; names must be keys of :attr:`defaults`.

    Raises:
        ExplainError: An option is unknown.

    Example:
        >>> class MyCAM(CAMMethod):
        ...     name = "mycam"
        ...     def weigh(self, activations, gradients):
        ...         from keras import ops
        ...         return ops.sum(ops.abs(gradients) * activations, axis=-1)
        >>> MyCAM().options
        mappingproxy({})
    """

    #: The registered name (shown in explanations and figure titles).
    name: ClassVar[str] = ""
    #: Whether the method reads a target layer (CAM methods do; pixel methods do not).
    uses_layer: ClassVar[bool] = False
    #: Accepted options and their default values.
    defaults: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    #: The Keras backends the method runs on (the Explainer refuses others with a clear error). The CAM and
    #: pixel-gradient bases run on TensorFlow, JAX and PyTorch; a subclass whose hook uses ``tensorflow`` directly
    #: (rather than ``keras.ops``) should narrow this to ``("tensorflow",)``.
    backends: ClassVar[tuple[str, ...]] = ("tensorflow",)
    #: Whether the method explains a callable target (an objective on the model output, see
    #: :class:`~neuroxai.models.ModelOutput`); the family bases do, through the traced model's objective.
    supports_objectives: ClassVar[bool] = False
    #: Whether the method reads ``MultiHeadAttention`` layers (attention rollout); such methods are only for
    #: transformers, and the Explainer refuses other models through :meth:`check_model`.
    needs_attention: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            accepted = ", ".join(sorted(self.defaults)) or "none"
            raise ExplainError(f"Unknown option(s) {', '.join(unknown)} for method {self.name!r}; accepted options: {accepted}.")
        self._options: Mapping[str, Any] = MappingProxyType({**self.defaults, **options})

    @property
    def options(self) -> Mapping[str, Any]:
        """The method's options, defaults filled in (read-only)."""
        return self._options

    def settings_key(self) -> tuple[tuple[str, str], ...]:
        """A hashable summary of the options (part of the :class:`CompileCache` key)."""
        return tuple((k, repr(v)) for k, v in sorted(self._options.items()))

    def samples_per_image(self) -> int:
        """Forward passes per image in one compiled call (the Explainer sizes batches with it)."""
        return 1

    def check_model(self, traced: TracedModel) -> None:
        """Refuse a model this method cannot explain, with one clear line (called once by the Explainer).

        Args:
            traced: The model as the Explainer traced it (target layer, its layout, head).

        Raises:
            ExplainError: The model lacks what the method reads (the default accepts every model).
        """

    def explain_batch(
        self, traced: TracedModel, x: Tensor, targets: Tensor, *, cache: CompileCache, batch_size: int
    ) -> BatchResult:
        """Explain one batch.

        Args:
            traced: The model, traced to expose its target layer and pre-softmax scores (and, for a
                callable target, its objective: ``traced.objective``).
            x: float32 tensor ``[B, H, W, C]`` (``[B, D, H, W, C]`` for a volume model).
            targets: int32 tensor ``[B]``; ``-1`` means the predicted class.
            cache: The explainer's compiled functions (see :meth:`CompileCache.function`).
            batch_size: Forward passes per compiled call (methods that chunk their work size chunks with it).

        Returns:
            ``(maps [B, H, W] (or [B, D, H, W]) in [0, 1], probabilities [B, K], targets [B])`` as numpy arrays.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self._options.items())
        return f"{type(self).__name__}({opts})"


def _numpy(result: tuple[Tensor, Tensor, Tensor]) -> BatchResult:
    maps, probs, resolved = result
    return _backend.to_numpy(maps), _backend.to_numpy(probs), _backend.to_numpy(resolved)


class CAMMethod(ExplainMethod):
    """Gradient-weighted class-activation maps: weigh the target layer's channels with their gradients.

    Subclasses override only :meth:`weigh`, written on ``keras.ops`` (so it
    runs on every backend). The compiled hot path runs the model once and
    takes the gradient of the target scores with respect to the target
    feature map only (:func:`neuroxai.explain._backend.feature_gradients`),
    so gradients flow back no further than the target layer. A token target
    layer's output and gradient are put on their grid first
    (:meth:`~neuroxai.explain.TracedModel.to_grid`: extra tokens dropped).
    """

    uses_layer = True
    backends = EXPLAIN_BACKENDS
    supports_objectives = True

    def weigh(self, activations: Tensor, gradients: Tensor) -> Tensor:
        """Combine feature maps ``[B, h, w, K]`` (``[B, d, h, w, K]`` for volumes) and their gradients into a
        map ``[B, h, w]`` (``[B, d, h, w]``).

        Args:
            activations: The target layer's output, on its grid.
            gradients: d(target score)/d(activations), same shape.

        Returns:
            The raw (unnormalised) map; the base class applies ReLU, resizing and scaling. Reduce over
            :func:`spatial_axes` (not a fixed ``(1, 2)``) to serve volume models too.
        """
        raise NotImplementedError

    def _step(self, traced: TracedModel, x: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        from keras import ops

        result, resolved, grads = _backend.feature_gradients(traced, x, targets)
        raw = self.weigh(ops.cast(traced.to_grid(result.features), "float32"), traced.to_grid(grads))
        maps = normalize_maps(raw, _image_size(x))
        return maps, ops.cast(result.probabilities, "float32"), resolved

    def explain_batch(
        self, traced: TracedModel, x: Tensor, targets: Tensor, *, cache: CompileCache, batch_size: int
    ) -> BatchResult:
        return _numpy(cache.function(traced, self, "step", self._step)(x, targets))


class GradientMethod(ExplainMethod):
    """Pixel-level gradient methods: weigh pixels by d(score)/d(input) over samples.

    Subclasses override :meth:`samples` (which perturbed or interpolated
    copies of the batch to differentiate, stacked sample-major) and, where the
    default mean absolute gradient does not fit, :meth:`combine`. All samples
    of a batch go through the model in one compiled call; a subclass drawing
    several samples also says how many in :meth:`samples_per_image`. Hooks are
    written on ``keras.ops`` (so they run on every backend).
    """

    backends = EXPLAIN_BACKENDS
    supports_objectives = True

    def samples(self, x: Tensor) -> Tensor:
        """Return ``[S, B, *spatial, C]`` inputs to differentiate (default: the batch itself)."""
        return x[None]

    def combine(self, x: Tensor, samples: Tensor, gradients: Tensor) -> Tensor:
        """Turn gradients ``[S, B, *spatial, C]`` into raw maps ``[B, *spatial]`` (default: max over channels of mean ``|grad|``)."""
        from keras import ops

        return ops.max(ops.mean(ops.abs(gradients), axis=0), axis=-1)

    def _step(self, traced: TracedModel, x: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        from keras import ops

        clean = traced(x)
        probs = ops.cast(clean.probabilities, "float32")
        resolved = _resolve_targets(probs, targets)
        samples = ops.cast(self.samples(x), "float32")
        n, b = ops.shape(samples)[0], ops.shape(x)[0]  # ints where static (always on JAX and PyTorch), else tensors
        flat = ops.reshape(samples, (-1, *ops.shape(x)[1:]))
        tiled = ops.reshape(ops.broadcast_to(resolved[None], (n, b)), (-1,))  # sample-major, like ``flat``
        grads = _backend.input_gradients(traced, flat, tiled)
        grads = ops.reshape(grads, ops.shape(samples))
        raw = self.combine(x, samples, grads)
        return normalize_maps(raw, _image_size(x)), probs, resolved

    def explain_batch(
        self, traced: TracedModel, x: Tensor, targets: Tensor, *, cache: CompileCache, batch_size: int
    ) -> BatchResult:
        return _numpy(cache.function(traced, self, "step", self._step)(x, targets))


class PerturbationMethod(ExplainMethod):
    """Gradient-free methods: importance from the target probability of perturbed copies of each image.

    A batch of ``B`` images runs as

    1. one compiled forward pass (``prepare``): probabilities, resolved
       targets, each image's clean target probability and the *units* to
       perturb with (:meth:`units`, a tensor whose last axis indexes the ``U``
       units, e.g. ``[B or 1, h, w, U]``);
    2. one compiled call per chunk of ``batch_size // B`` units (``score``):
       :meth:`perturb` makes ``[B, c, H, W, C]`` copies (``[B, c, D, H, W, C]``
       for volumes), the model scores them in one forward pass (target
       probability, or a callable target's value, ``[B, c]``);
    3. one compiled call (``finish``): :meth:`attribute` turns the units and
       their scores into raw maps, normalised like every other method's.

    No Python loop runs over images; the cost grows with ``U``. The family
    bases implement the three hooks: :class:`GradientFreeCAMMethod`
    (Score-CAM and kin, whose subclasses override one hook) and
    :class:`~neuroxai.explain.Occlusion`. The hooks are written on ``keras.ops``, so
    the family runs on every backend of :data:`~neuroxai._keras_backend.EXPLAIN_BACKENDS`.
    """

    backends = EXPLAIN_BACKENDS
    supports_objectives = True

    def units(self, x: Tensor, result: ForwardResult) -> Tensor:
        """What to perturb with, a tensor whose last axis indexes the units (e.g. ``[B or 1, h, w, U]``), from
        the images and their forward pass (its ``features`` on their grid, :meth:`TracedModel.to_grid`)."""
        raise NotImplementedError

    def perturb(self, x: Tensor, units: Tensor) -> Tensor:
        """Perturbed copies ``[B, c, *spatial, C]`` of ``x`` ``[B, *spatial, C]``, one per unit of ``units`` (``c`` of them)."""
        raise NotImplementedError

    def attribute(self, x: Tensor, units: Tensor, scores: Tensor, clean: Tensor) -> Tensor:
        """Raw maps ``[B, *grid]`` from all ``units`` (``U`` on the last axis), their ``scores`` ``[B, U]`` and the
        clean target probabilities ``clean`` ``[B]``."""
        raise NotImplementedError

    def _prepare(self, traced: TracedModel, x: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        import dataclasses

        from keras import ops

        result = traced(x)
        probs = ops.cast(result.probabilities, "float32")
        resolved = _resolve_targets(probs, targets)
        on_grid = result if result.features is None else dataclasses.replace(result, features=traced.to_grid(result.features))
        units = ops.cast(self.units(x, on_grid), "float32")
        return probs, resolved, _backend.target_probabilities(result, resolved), units

    def _score(self, traced: TracedModel, x: Tensor, targets: Tensor, units: Tensor) -> Tensor:
        from keras import ops

        images = ops.cast(self.perturb(x, units), "float32")  # [B, c, *spatial, C]
        b, c = ops.shape(images)[0], ops.shape(images)[1]  # ints where static (always on JAX and PyTorch), else tensors
        flat = ops.reshape(images, (-1, *ops.shape(x)[1:]))
        tiled = ops.reshape(ops.broadcast_to(targets[:, None], (b, c)), (-1,))  # image-major, like ``flat``
        return ops.reshape(_backend.target_probabilities(traced(flat), tiled), (b, c))

    def _finish(self, traced: TracedModel, x: Tensor, targets: Tensor, units: Tensor, scores: Tensor, clean: Tensor) -> Tensor:
        return normalize_maps(self.attribute(x, units, scores, clean), _image_size(x))

    def explain_batch(
        self, traced: TracedModel, x: Tensor, targets: Tensor, *, cache: CompileCache, batch_size: int
    ) -> BatchResult:
        from keras import ops

        prepare = cache.function(traced, self, "prepare", self._prepare)
        probs, resolved, clean, units = prepare(x, targets)
        units_spec = _backend.tensor_spec((None,) * len(units.shape))  # the units' rank: image, volume or coordinates
        score = cache.function(traced, self, "score", self._score, [units_spec])
        finish = cache.function(
            traced,
            self,
            "finish",
            self._finish,
            [units_spec, _backend.tensor_spec((None, None)), _backend.tensor_spec((None,))],
        )
        b, n = int(x.shape[0]), int(units.shape[-1])
        per_call = max(1, int(batch_size) // max(b, 1))
        # On JAX each chunk width traces once: the full chunks share one trace, a shorter last chunk adds one.
        chunks = [score(x, resolved, units[..., start : start + per_call]) for start in range(0, n, per_call)]
        scores = ops.concatenate(chunks, axis=1) if chunks else ops.zeros((b, 0), "float32")
        maps = finish(x, resolved, units, scores, clean)
        return _numpy((maps, probs, resolved))


class GradientFreeCAMMethod(PerturbationMethod):
    """Class-activation maps weighted by scores of masked inputs instead of gradients (Score-CAM and kin).

    The base runs the model to the target layer, keeps the ``max_channels``
    channels with the highest mean activation per image, turns each into a
    soft mask (bilinear upsampling to the input size, scaled to [0, 1]),
    scores the image multiplied by each mask (the target probability, chunks
    of ``batch_size // B`` channels per compiled call) and sums the channels
    with the weights from :meth:`weigh`, the one hook subclasses override.

    Options:
        max_channels: Use only the ``max_channels`` channels with the highest
            mean activation per image (``None``: all channels). Each channel
            costs one forward pass per image.

    Example:
        >>> class ScoreDropCAM(GradientFreeCAMMethod):
        ...     name = "scoredropcam"
        ...     def weigh(self, scores, clean_scores):
        ...         return scores - clean_scores[:, None]
    """

    uses_layer = True
    defaults: ClassVar[Mapping[str, Any]] = MappingProxyType({"max_channels": None})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        mc = self.options.get("max_channels")
        if mc is not None and (isinstance(mc, bool) or not isinstance(mc, (int, np.integer)) or mc < 1):
            raise ExplainError(f"Option 'max_channels' of method {self.name!r} must be None or an integer >= 1; got {mc!r}.")

    def weigh(self, scores: Tensor, clean_scores: Tensor) -> Tensor:
        """Channel weights ``[B, M]`` from the target probabilities of the masked images.

        Args:
            scores: ``[B, M]`` target probability of each image multiplied by each channel's mask.
            clean_scores: ``[B]`` target probability of each unmasked image.

        Returns:
            The weight of each channel in the map (before ReLU and scaling).
        """
        raise NotImplementedError

    def units(self, x: Tensor, result: ForwardResult) -> Tensor:
        from keras import ops

        acts = ops.cast(result.features, "float32")  # [B, *grid, K], tokens already on their grid
        k = int(acts.shape[-1])
        limit = self.options.get("max_channels")
        m = k if limit is None else min(int(limit), k)
        if m == k:
            return acts  # every channel: no selection (the map sums over channels, so their order does not matter)
        axes = spatial_axes(acts)
        _, idx = ops.top_k(ops.mean(acts, axis=axes), k=m)  # [B, M]
        index = ops.reshape(idx, (-1, *([1] * len(axes)), m))
        return ops.take_along_axis(acts, index, axis=len(acts.shape) - 1)  # [B, *grid, M]

    def perturb(self, x: Tensor, units: Tensor) -> Tensor:
        from keras import ops

        up = _backend.resize(units, _image_size(x))  # [B, *spatial, c]
        axes = spatial_axes(up)
        lo = ops.min(up, axis=axes, keepdims=True)
        span = ops.max(up, axis=axes, keepdims=True) - lo
        ok = span > 1e-12
        masks = ops.where(ok, (up - lo) / ops.where(ok, span, ops.ones_like(span)), ops.zeros_like(up))
        rank = len(up.shape)
        channel_first = ops.transpose(masks, (0, rank - 1, *range(1, rank - 1)))  # [B, c, *spatial]
        return x[:, None] * ops.expand_dims(channel_first, -1)  # [B, c, *spatial, C]

    def attribute(self, x: Tensor, units: Tensor, scores: Tensor, clean: Tensor) -> Tensor:
        from keras import ops

        weights = ops.cast(self.weigh(scores, clean), "float32")  # [B, M]
        for _ in range(len(units.shape) - 2):
            weights = ops.expand_dims(weights, 1)  # [B, 1, ..., 1, M]
        return ops.sum(units * weights, axis=-1)


def check_positive_int(method: str, option: str, value: Any) -> int:
    """Validate an integer option >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ExplainError(f"Option {option!r} of method {method!r} must be an integer >= 1; got {value!r}.")
    return int(value)
