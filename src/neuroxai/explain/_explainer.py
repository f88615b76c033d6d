"""The :class:`Explainer`: one object per (model, method, target layer), many batches.

The Explainer owns what is per model: the traced model, the class names and
the :class:`~neuroxai.explain.CompileCache` of compiled functions. The method
instance holds settings only, so one instance may serve several explainers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np

from neuroxai._keras_backend import EXPLAIN_BACKENDS, current, require
from neuroxai.errors import ExplainError
from neuroxai.explain import _backend
from neuroxai.explain._base import CompileCache, ExplainMethod
from neuroxai.explain._explanation import Explanation
from neuroxai.models._graph import ScoreSource
from neuroxai.models._heads import Head

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
            default, else the last layer with a 4-D output. Ignored by pixel methods.
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
        **method_options: Options of the method (e.g. ``samples=32`` for SmoothGrad).

    Attributes:
        model: The Keras model explained.
        predictor: The predictor given (or loaded from a path), else ``None``.
        method: The method instance (settings only).
        layer: The target layer (a name, or a tuple path into nested models); ``None`` for pixel methods.
        traced: The model traced for the target layer (:class:`~neuroxai.explain.TracedModel`).
        class_names: One name per output unit.
        input_range: The pixel range the model expects (the predictor's or the one given; ``None``: not declared).
        input_scale: The out-of-range policy (``"check"``, ``"convert"`` or ``"ignore"``).
        batch_size: Forward passes per compiled call.
        cache: The compiled functions (:class:`~neuroxai.explain.CompileCache`), built on first use.

    Raises:
        ExplainError: Unknown option, a target layer that does not exist or is not 4-D (the candidates
            are listed), class names that do not match the model, or an untraceable model.
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
        **method_options: Any,
    ) -> None:
        from neuroxai.models._graph import TracedModel, resolve_target_layer

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
            path = resolve_target_layer(model, wanted, output=output)
        self.traced = TracedModel(model, path, head=head, output=output)
        self.layer: str | tuple[str, ...] | None = None if path is None else (path[0] if len(path) == 1 else path)
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
        """``(height, width, channels)`` of the model input (``None`` for a free size)."""
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
        want = self.traced.input_shape  # (H, W, C)
        if x.ndim == 3 and want[-1] == 1 and x.shape[-1] != 1 and (want[0] in (None, x.shape[1])):
            x = x[..., None]  # [N, H, W] grayscale batch
        elif x.ndim == 3:
            x = x[None]  # one image [H, W, C]
        elif x.ndim == 2 and want[-1] == 1:
            x = x[None, ..., None]
        if x.ndim != 4:
            raise ExplainError(f"Expected images shaped [N, H, W, C] matching the model input {want}; got shape {x.shape}.")
        for axis, (got, exp) in enumerate(zip(x.shape[1:], want)):
            if exp is not None and got != exp:
                what = ("height", "width", "channels")[axis]
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

    def _targets(self, targets: Any, n: int) -> np.ndarray:
        k = len(self.class_names)
        if targets is None:
            return np.full(n, -1, np.int32)

        def one(value: Any) -> int:
            if isinstance(value, (str, np.str_)):
                if value in self.class_names:
                    return self.class_names.index(str(value))
                raise ExplainError(f"Unknown target class {value!r}; expected one of {list(self.class_names)} or an index.")
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise ExplainError(f"Target {value!r} is neither a class index nor a class name.")
            if not 0 <= int(value) < k:
                raise ExplainError(f"Target class index {int(value)} out of range; the model has {k} classes (0..{k - 1}).")
            return int(value)

        if isinstance(targets, (str, int, np.integer, np.str_)) or np.ndim(targets) == 0:  # one target (1.0 is refused)
            return np.full(n, one(targets.item() if isinstance(targets, np.generic) else targets), np.int32)
        values = list(np.asarray(targets).ravel()) if isinstance(targets, np.ndarray) else list(targets)
        if len(values) != n:
            raise ExplainError(
                f"Got {len(values)} targets for {n} images; expected one target per image, a single class, or None "
                "for the predicted class."
            )
        return np.asarray([one(v.item() if isinstance(v, np.generic) else v) for v in values], np.int32)

    # ---- the work -----------------------------------------------------------------------------
    def explain(self, images: Any, targets: Any = None) -> Explanation:
        """Explain a batch of images.

        Args:
            images: ``[N, H, W, C]`` (or one ``[H, W, C]`` image, or ``[N, H, W]`` for a grayscale model)
                already scaled to the model's input range; with a predictor, paths are accepted too.
            targets: ``None`` (the predicted class), one class index or name for all images, or one per image.

        Returns:
            An :class:`Explanation` with maps in [0, 1] at the input size.

        Raises:
            ExplainError: Wrong image shape, non-finite pixels, unknown target class, or a target count
                that does not match the number of images.
        """
        x = self._images(images)
        t = self._targets(targets, len(x))
        per_call = max(1, self.batch_size // max(1, self.method.samples_per_image()))
        maps: list[np.ndarray] = []
        probs: list[np.ndarray] = []
        used: list[np.ndarray] = []
        for start in range(0, len(x), per_call):
            m, p, r = self.method.explain_batch(
                self.traced,
                _backend.as_tensor(x[start : start + per_call]),
                _backend.as_tensor(t[start : start + per_call]),
                cache=self.cache,
                batch_size=self.batch_size,
            )
            maps.append(m)
            probs.append(p)
            used.append(r)
        if len(maps) == 1:  # one compiled call: no copies
            maps_a, probs_a, used_a = maps[0], probs[0], used[0]
        elif len(x):
            maps_a, probs_a, used_a = np.concatenate(maps), np.concatenate(probs), np.concatenate(used)
        else:
            h, w = x.shape[1:3]
            maps_a, probs_a, used_a = (
                np.zeros((0, h, w), np.float32),
                np.zeros((0, len(self.class_names)), np.float32),
                np.zeros(0, np.int32),
            )
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
        )

    def __call__(self, images: Any, targets: Any = None) -> np.ndarray:
        """Maps only (``explain(images, targets).maps``): the ``explain_fn`` shape evaluation metrics expect."""
        return self.explain(images, targets).maps

    def __repr__(self) -> str:
        return f"Explainer(model={self.model.name!r}, method={self.method!r}, layer={self.layer!r})"
