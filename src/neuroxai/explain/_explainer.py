"""The :class:`Explainer`: one object per (model, method, target layer), many batches.

The Explainer owns what is per model: the traced model, the class names and
the :class:`~neuroxai.explain.CompileCache` of compiled functions. The method
instance holds settings only, so one instance may serve several explainers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args

import numpy as np

from neuroxai._keras_backend import EXPLAIN_BACKENDS, current, require
from neuroxai.errors import ExplainError
from neuroxai.explain import _backend
from neuroxai.explain._base import CompileCache, ExplainMethod
from neuroxai.explain._explanation import Explanation
from neuroxai.explain._targets import Objective, objective_name
from neuroxai.models._graph import ScoreSource, TracedModel
from neuroxai.models._heads import Head
from neuroxai.models._layout import FeatureLayout, TokenGrid

__all__ = ["Explainer", "InputScale"]

#: What the Explainer does with a batch whose pixel values are clearly outside the model's input range:
#: ``"check"`` raises, ``"convert"`` rescales a 0..255 or 0..1 batch to the range, ``"ignore"`` lets it through.
InputScale = Literal["check", "convert", "ignore"]


def _is_keras_model(obj: Any) -> bool:
    import keras

    return isinstance(obj, keras.Model)


class Explainer:
    """Explain a Keras classifier's predictions with the Grad-CAM family and pixel methods.

    Args:
        model: A ``keras.Model`` (Sequential or functional, nested backbones included), a predictor from
            :func:`neuroxai.load` (its model, class names and default target layer are used), or a path
            to a run directory or ``.keras`` file (loaded with :func:`neuroxai.runs.load`, Keras safe mode).
        method: A registered method name (``gradcam``, ``gradcam++``/``gradcampp``, ``layercam``,
            ``hirescam``, ``scorecam``, ``saliency``, ``smoothgrad``, ``integrated_gradients``,
            ``occlusion``, or a plugin's), an :class:`ExplainMethod` subclass or instance (an instance
            holds settings only and may be shared by several explainers).
        target_layer: For CAM methods: a layer name, a tuple path through nested models
            (``("efficientnetb0", "top_conv")``; never a dotted string), or ``None`` for the predictor's
            default, else the last feature map (``(batch, height, width, channels)``, or
            ``(batch, depth, height, width, channels)`` for a volume model) or token sequence
            (``(batch, tokens, channels)``: a transformer) the output depends on. Ignored by pixel methods.
        class_names: Names for the model's classes (default: the predictor's, else ``"0"``, ``"1"`` ...).
            A one-unit (binary) output has two classes: negative, positive.
        head: What the model outputs (:data:`~neuroxai.models.Head`): ``"softmax"`` probabilities,
            ``"logits"``, ``"sigmoid"`` independent (multi-label) scores or ``"binary"`` (one sigmoid unit).
            ``None``: the predictor's, else read from the last layer (softmax if it does not say).
            Gradients are taken of the pre-activation class score where the model lets us reach it;
            :attr:`Explanation.probabilities` are always probabilities.
        output: For a model with several outputs: which one is explained (an index or an output name).
        input_range: The pixel range the model expects; ``None``: the predictor's, else not declared
            (no range check).
        input_scale: What to do with a batch clearly outside :attr:`input_range` (uint8 0..255 for a
            0..1 model): ``"check"`` raises an ``ExplainError`` (default), ``"convert"`` rescales a
            0..255 or 0..1 batch to the range, ``"ignore"`` explains it as given.
        batch_size: Forward passes per compiled call (images x samples for SmoothGrad and integrated
            gradients; images x channels/patches for Score-CAM and occlusion).
        token_grid: For a token target layer whose grid cannot be inferred: ``(rows, cols)`` (``(depth, rows,
            cols)`` for volumes) or a :class:`~neuroxai.models.TokenGrid` (with the number and place of the
            extra tokens); ``None``: inferred from the patch embedding and the input size.
        **method_options: Options of the method (e.g. ``samples=32`` for SmoothGrad).

    Attributes:
        model: The Keras model explained.
        predictor: The predictor given (or loaded from a path), else ``None``.
        method: The method instance (settings only).
        layer: The target layer (a name, or a tuple path into nested models); ``None`` for pixel methods.
        layout: How the target layer lies on the input (:class:`~neuroxai.models.FeatureLayout`: a feature
            map, or tokens on a grid); ``None`` for pixel methods.
        traced: The model traced for the target layer (:class:`~neuroxai.explain.TracedModel`).
        class_names: One name per output unit.
        input_range: The pixel range the model expects (the predictor's or the one given; ``None``: not declared).
        input_scale: The out-of-range policy (``"check"``, ``"convert"`` or ``"ignore"``).
        batch_size: Forward passes per compiled call.
        cache: The compiled functions (:class:`~neuroxai.explain.CompileCache`), built on first use.

    Raises:
        ExplainError: Unknown option, a target layer that does not exist or is neither a feature map nor
            tokens (the candidates are listed), a token grid that cannot be inferred (the message says what
            to pass), class names that do not match the model, an untraceable model, or a method that does
            not apply to the model (attention rollout without ``MultiHeadAttention``).
        UnknownMethodError: An unknown method name (an ``ExplainError``; the message suggests close names).
        ModelError: A model path that cannot be loaded.
        BackendError: The method does not run on this process's Keras backend (every built-in method runs
            on TensorFlow, JAX and PyTorch; a plugin may narrow its ``backends``); the message lists the methods that do.

    Example:
        >>> import keras, numpy as np
        >>> from neuroxai import Explainer
        >>> model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Conv2D(4, 3, name="conv"),
        ...                           keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
        >>> exp = Explainer(model, "gradcam", class_names=["no", "yes"]).explain(np.random.rand(3, 32, 32, 1))
        >>> exp.maps.shape, exp.layer
        ((3, 32, 32), 'conv')
    """

    def __init__(
        self,
        model: Any,
        method: str | type[ExplainMethod] | ExplainMethod = "gradcam",
        *,
        target_layer: str | Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        head: Head | None = None,
        output: int | str | None = None,
        input_range: Sequence[float] | None = None,
        input_scale: InputScale = "check",
        batch_size: int = 32,
        token_grid: TokenGrid | Sequence[int] | None = None,
        **method_options: Any,
    ) -> None:
        from neuroxai.models._graph import resolve_target_layer

        if isinstance(model, (str, os.PathLike)):
            from neuroxai.runs import load

            model = load(model)
        self.predictor: Any = None
        if not _is_keras_model(model):
            inner = getattr(model, "model", None)
            if inner is None or not _is_keras_model(inner):
                raise ExplainError(
                    f"Expected a keras.Model, a predictor from neuroxai.load or a model path; got {type(model).__name__}."
                )
            self.predictor = model
            model = inner
        self.model = model
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ExplainError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
        self.batch_size = int(batch_size)
        self.method = self._make_method(method, method_options)
        self._check_backend(self.method)

        if class_names is None and self.predictor is not None:
            class_names = getattr(self.predictor, "class_names", None)
        default_layer = getattr(self.predictor, "target_layer", None) if self.predictor is not None else None
        if input_scale not in get_args(InputScale):
            raise ExplainError(f"input_scale must be one of {', '.join(get_args(InputScale))}; got {input_scale!r}.")
        self.input_scale: InputScale = input_scale
        if input_range is None and self.predictor is not None:
            input_range = getattr(self.predictor, "input_range", None)
        self.input_range: tuple[float, float] | None = None
        if input_range is not None:
            from neuroxai.data import check_input_range

            self.input_range = check_input_range(input_range, error=ExplainError)
        if head is None and self.predictor is not None:
            head = getattr(self.predictor, "head", None)

        path = None
        if self.method.uses_layer:
            wanted = target_layer if target_layer is not None else default_layer
            if isinstance(wanted, list):
                wanted = tuple(wanted)
            path = resolve_target_layer(model, wanted, output=output, token_grid=token_grid)
        self.traced = TracedModel(model, path, head=head, output=output, token_grid=token_grid)
        self.layer: str | tuple[str, ...] | None = None if path is None else (path[0] if len(path) == 1 else path)
        self.layout: FeatureLayout | None = self.traced.layout
        self.method.check_model(self.traced)
        self._objective_traced: dict[Any, TracedModel] = {}  # one traced twin per callable target, kept alive
        k = self.traced.num_classes
        if class_names is None:
            class_names = [str(i) for i in range(k or 0)]
        class_names = tuple(str(c) for c in class_names)
        if k is not None and len(class_names) != k:
            raise ExplainError(
                f"class_names has {len(class_names)} names but model {model.name!r} outputs {k} classes; "
                "pass one name per output unit."
            )
        self.class_names: tuple[str, ...] = class_names
        self.cache = CompileCache()

    @staticmethod
    def _check_backend(method: ExplainMethod) -> None:
        """Refuse a method that does not run on this process's Keras backend, naming the ones that do."""
        backend = current()
        if backend in method.backends:
            return
        from neuroxai.explain._registry import MethodRegistry

        registry = MethodRegistry()
        first_names: dict[type[ExplainMethod], str] = {}
        for name in registry.names():
            cls = registry.get(name)
            if backend in cls.backends:
                first_names.setdefault(cls, name)  # one name per class: no aliases
        here = list(first_names.values())
        hint = (
            f"On {backend} these methods run: {', '.join(here)}."
            if here
            else f"No explanation method runs on {backend} yet (supported backends: {', '.join(EXPLAIN_BACKENDS)})."
        )
        require(f"Explanation method {method.name!r}", method.backends, hint=hint)

    @staticmethod
    def _make_method(method: Any, options: dict[str, Any]) -> ExplainMethod:
        if isinstance(method, ExplainMethod):
            if options:
                raise ExplainError("Pass method options to the method instance, not to Explainer, when giving an instance.")
            return method
        if isinstance(method, type) and issubclass(method, ExplainMethod):
            return method(**options)
        if not isinstance(method, str):
            raise ExplainError(f"method must be a name, an ExplainMethod subclass or instance; got {method!r}.")
        from neuroxai.explain._registry import MethodRegistry

        return MethodRegistry().get(method)(**options)

    @property
    def score_source(self) -> ScoreSource:
        """What the gradients are taken of: ``"logits"``, ``"output"`` or ``"probabilities"``."""
        return self.traced.score_source

    @property
    def head(self) -> Head:
        """What the model outputs: ``"softmax"``, ``"logits"``, ``"sigmoid"`` or ``"binary"`` (stated, the predictor's, or read from the last layer)."""
        return self.traced.head

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """``(height, width, channels)`` of the model input, ``(depth, height, width, channels)`` for a volume
        model (``None`` for a free size)."""
        return self.traced.input_shape

    # ---- inputs -------------------------------------------------------------------------------
    def _images(self, images: Any) -> np.ndarray:
        if self.predictor is not None and hasattr(self.predictor, "preprocess"):
            is_path = isinstance(images, (str, os.PathLike)) or (
                isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, os.PathLike))
            )
            if is_path:
                images = self.predictor.preprocess(images if isinstance(images, (list, tuple)) else [images])
        try:
            raw = np.asarray(images)
            x = raw.astype(np.float32, copy=False)
        except (TypeError, ValueError) as exc:
            raise ExplainError(f"Expected images as a numeric array [N, H, W, C]; got {type(images).__name__}: {exc}.") from None
        want = self.traced.input_shape  # (H, W, C) or (D, H, W, C)
        rank = len(want) + 1  # of a batch
        kind = "volumes [N, D, H, W, C]" if rank == 5 else "images [N, H, W, C]"
        fits = x.ndim == rank - 1 and all(w in (None, g) for w, g in zip(want[:-1], x.shape[1:]))
        if x.ndim == rank - 1 and want[-1] == 1 and x.shape[-1] != 1 and fits:
            x = x[..., None]  # a grayscale batch [N, H, W] ([N, D, H, W])
        elif x.ndim == rank - 1:
            x = x[None]  # one image [H, W, C] (one volume [D, H, W, C])
        elif x.ndim == rank - 2 and want[-1] == 1:
            x = x[None, ..., None]
        if x.ndim != rank:
            raise ExplainError(f"Expected {kind} matching the model input {want}; got shape {x.shape}.")
        names = ("depth", "height", "width", "channels")[-len(want) :]
        for axis, (got, exp) in enumerate(zip(x.shape[1:], want)):
            if exp is not None and got != exp:
                what = names[axis]
                raise ExplainError(
                    f"Image {what} {got} does not match the model input {want} (batch shape {x.shape}). "
                    "Resize/convert the images first (e.g. neuroxai.data.load_images with image_size and channels)."
                )
        if x.size and not (np.isfinite(x.min()) and np.isfinite(x.max())):  # NaN propagates through min/max
            raise ExplainError("Images contain NaN or infinite values; expected finite pixel values.")
        if self.input_range is not None and self.input_scale != "ignore":
            from neuroxai.data import check_pixel_range

            source = x.astype(np.uint8) if raw.dtype == np.uint8 else x  # the dtype says which scale uint8 is on
            x = check_pixel_range(
                source, self.input_range, convert=self.input_scale == "convert", name="the images", error=ExplainError
            )
        return x

    def _targets(self, targets: Any, n: int) -> tuple[np.ndarray, list[Callable[..., Any] | None] | None]:
        """``(class per image (-1: predicted or an objective), objective per image or None when all are classes)``."""
        k = len(self.class_names)
        if targets is None:
            return np.full(n, -1, np.int32), None

        def one(value: Any) -> int:
            if isinstance(value, (str, np.str_)):
                if value in self.class_names:
                    return self.class_names.index(str(value))
                raise ExplainError(f"Unknown target class {value!r}; expected one of {list(self.class_names)} or an index.")
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise ExplainError(
                    f"Target {value!r} is neither a class index, a class name, None (the predicted class) nor a "
                    "callable on the model output."
                )
            if not 0 <= int(value) < k:
                raise ExplainError(f"Target class index {int(value)} out of range; the model has {k} classes (0..{k - 1}).")
            return int(value)

        def objective(value: Any) -> Callable[..., Any]:
            if not self.method.supports_objectives:
                raise ExplainError(
                    f"Method {self.method.name!r} explains class targets only; got the callable target "
                    f"{objective_name(value)}. Pass a class index or name, or use a method of the built-in families."
                )
            return value.resolve(self.class_names) if isinstance(value, Objective) else value

        if callable(targets) and not isinstance(targets, (str, np.str_)):
            fn = objective(targets)
            return np.full(n, -1, np.int32), [fn] * n
        if isinstance(targets, (str, int, np.integer, np.str_)) or np.ndim(targets) == 0:  # one target (1.0 is refused)
            return np.full(n, one(targets.item() if isinstance(targets, np.generic) else targets), np.int32), None
        values = list(np.asarray(targets).ravel()) if isinstance(targets, np.ndarray) else list(targets)
        if len(values) != n:
            raise ExplainError(
                f"Got {len(values)} targets for {n} images; expected one target per image, a single class or callable, "
                "or None for the predicted class."
            )
        classes = np.full(n, -1, np.int32)
        objectives: list[Callable[..., Any] | None] = [None] * n
        for i, v in enumerate(values):
            v = v.item() if isinstance(v, np.generic) else v
            if v is None:
                continue
            if callable(v) and not isinstance(v, str):
                objectives[i] = objective(v)
            else:
                classes[i] = one(v)
        return classes, (objectives if any(o is not None for o in objectives) else None)

    def _traced_for(self, objective: Callable[..., Any] | None) -> TracedModel:
        """The traced model, or its twin computing ``objective`` (one per objective, kept while the explainer lives)."""
        if objective is None:
            return self.traced
        twin = self.traced.with_objective(objective)
        key = twin.objective_key
        if key not in self._objective_traced:
            self._check_objective(objective)
            self._objective_traced[key] = twin
        return self._objective_traced[key]

    def _check_objective(self, objective: Callable[..., Any]) -> None:
        """Call a callable target once on a made-up output of two images: one value per image, or a clear error
        now (inside a compiled step the error would come wrapped in the backend's tracing errors)."""
        from keras import ops

        from neuroxai.models._graph import ModelOutput

        k = len(self.class_names)
        probe = ModelOutput(scores=ops.zeros((2, k), "float32"), probabilities=ops.full((2, k), 1.0 / max(k, 1), "float32"))
        shape = tuple(getattr(objective(probe), "shape", ()))
        if shape != (2,):
            raise ExplainError(
                f"A callable target must return one value per image, shape [batch]; {objective_name(objective)} returned "
                f"shape {shape} for a batch of 2 (scores {(2, k)}). Reduce over the classes, e.g. "
                "lambda out: out.scores[:, 0] - out.scores[:, 1]."
            )

    def _run(self, traced: TracedModel, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Maps, probabilities and targets of a batch, in compiled calls of ``batch_size`` forward passes."""
        per_call = max(1, self.batch_size // max(1, self.method.samples_per_image()))
        maps: list[np.ndarray] = []
        probs: list[np.ndarray] = []
        used: list[np.ndarray] = []
        for start in range(0, len(x), per_call):
            chunk = x[start : start + per_call]
            m, p, r = self.method.explain_batch(
                traced,
                _backend.as_tensor(chunk),
                _backend.as_tensor(t[start : start + per_call]),
                cache=self.cache,
                batch_size=self.batch_size,
            )
            if m.shape[0] != len(chunk):
                raise ExplainError(
                    f"Method {self.method.name!r} returned {m.shape[0]} maps for {len(chunk)} images at layer "
                    f"{self.layer!r}: its output mixes the images with another axis (a window-partitioned tensor, "
                    "batch x windows?). Pick a layer whose first axis is the batch, e.g. the stage's output."
                )
            maps.append(m)
            probs.append(p)
            used.append(r)
        if len(maps) == 1:  # one compiled call: no copies
            return maps[0], probs[0], used[0]
        if len(x):
            return np.concatenate(maps), np.concatenate(probs), np.concatenate(used)
        return (
            np.zeros((0, *x.shape[1:-1]), np.float32),
            np.zeros((0, len(self.class_names)), np.float32),
            np.zeros(0, np.int32),
        )

    # ---- the work -----------------------------------------------------------------------------
    def explain(self, images: Any, targets: Any = None) -> Explanation:
        """Explain a batch of images (or volumes).

        Args:
            images: ``[N, H, W, C]`` (or one ``[H, W, C]`` image, or ``[N, H, W]`` for a grayscale model;
                volumes ``[N, D, H, W, C]`` for a volume model) already scaled to the model's input range;
                with a predictor, paths are accepted too.
            targets: What to explain: ``None`` (each image's predicted class), one class index or name for
                all images, a callable on the model output (``fn(output) -> [B]``, see
                :class:`~neuroxai.models.ModelOutput`; e.g. :class:`~neuroxai.explain.Margin`) for all
                images, or a list of these, one per image (``None`` inside it: the predicted class).

        Returns:
            An :class:`Explanation` with maps in [0, 1] at the input size.

        Raises:
            ExplainError: Wrong image shape, non-finite pixels, unknown target class, a target count that
                does not match the number of images, or a callable target for a method that takes classes only.

        Example:
            >>> explainer.explain(images, targets=Margin("glioma", "meningioma"))  # doctest: +SKIP
        """
        x = self._images(images)
        t, objectives = self._targets(targets, len(x))
        labels: tuple[str | None, ...] = ()
        if objectives is None:
            maps_a, probs_a, used_a = self._run(self.traced, x, t)
        else:
            # one compiled call per distinct target kind (the class targets, each callable): not per image
            groups: dict[Any, tuple[Callable[..., Any] | None, list[int]]] = {}
            for i, fn in enumerate(objectives):
                key = None if fn is None else self._traced_for(fn).objective_key
                groups.setdefault(key, (fn, []))[1].append(i)
            maps_a = np.zeros((len(x), *x.shape[1:-1]), np.float32)
            probs_a = np.zeros((len(x), len(self.class_names)), np.float32)
            used_a = np.full(len(x), -1, np.int64)
            for fn, index in groups.values():
                idx = np.asarray(index)
                m, p, r = self._run(self._traced_for(fn), x[idx], t[idx])
                maps_a[idx], probs_a[idx] = m, p
                if fn is None:
                    used_a[idx] = r
            labels = tuple(None if fn is None else objective_name(fn) for fn in objectives)
        return Explanation(
            maps=maps_a.astype(np.float32, copy=False),
            probabilities=probs_a.astype(np.float32, copy=False),
            predicted=probs_a.argmax(axis=-1).astype(np.int64),
            targets=used_a.astype(np.int64),
            class_names=self.class_names,
            layer=self.layer,
            method=self.method.name,
            images=x,
            score_source=self.traced.score_source,
            options=dict(self.method.options),
            batch_size=self.batch_size,
            head=self.traced.head,
            objectives=labels,
        )

    def __call__(self, images: Any, targets: Any = None) -> np.ndarray:
        """Maps only (``explain(images, targets).maps``): the ``explain_fn`` shape evaluation metrics expect."""
        return self.explain(images, targets).maps

    def __repr__(self) -> str:
        return f"Explainer(model={self.model.name!r}, method={self.method!r}, layer={self.layer!r})"
