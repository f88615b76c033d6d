"""The :class:`Explainer`: one object per (model, method, target layer), many batches."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuroxai.errors import ExplainError, ModelError
from neuroxai.explain._base import ExplainMethod
from neuroxai.explain._explanation import Explanation

__all__ = ["Explainer", "load_model_source"]


def load_model_source(path: str | os.PathLike[str]) -> Any:
    """Load a run directory or a ``.keras`` file (Keras safe mode).

    Uses :func:`neuroxai.load` when available; otherwise reads ``model.keras``
    and ``neuroxai.json`` itself.

    Args:
        path: A run directory or a ``.keras`` file.

    Returns:
        An object with ``.model``, ``.class_names``, ``.target_layer`` and ``.input_range``.

    Raises:
        ModelError: The path is missing or holds no loadable model.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"Model path {str(p)!r} does not exist; expected a run directory or a .keras file.")
    try:
        from neuroxai.training import load  # type: ignore[attr-defined]
    except ImportError:
        load = None
    if load is not None:
        return load(p)
    return _FallbackPredictor.from_path(p)


class _FallbackPredictor:
    """Minimal predictor used until/unless :func:`neuroxai.load` is available."""

    def __init__(self, model: Any, class_names: Sequence[str] | None, target_layer: Any, input_range: tuple[float, float]):
        self.model = model
        self.class_names = tuple(class_names) if class_names else None
        self.target_layer = tuple(target_layer) if isinstance(target_layer, list) else target_layer
        self.input_range = tuple(input_range)
        self.input_shape = tuple(model.inputs[0].shape[1:])

    @classmethod
    def from_path(cls, p: Path) -> _FallbackPredictor:
        import keras

        spec: dict[str, Any] = {}
        model_file = p
        if p.is_dir():
            model_file = p / "model.keras"
            spec_file = p / "neuroxai.json"
            if spec_file.is_file():
                try:
                    spec = json.loads(spec_file.read_text(encoding="utf-8"))
                except ValueError as exc:
                    raise ModelError(f"Run spec {str(spec_file)!r} is not valid JSON: {exc}.") from exc
        if not model_file.is_file():
            raise ModelError(
                f"No model file at {str(model_file)!r}; expected a run directory holding model.keras or a .keras file."
            )
        try:
            model = keras.saving.load_model(model_file, safe_mode=True, compile=False)
        except Exception as exc:
            raise ModelError(
                f"Could not load {str(model_file)!r} with Keras safe mode: {type(exc).__name__}: {exc}. "
                "Expected a .keras file saved by Keras 3 without custom Python code."
            ) from exc
        return cls(model, spec.get("class_names"), spec.get("target_layer"), tuple(spec.get("input_range", (0.0, 1.0))))


def _is_keras_model(obj: Any) -> bool:
    import keras

    return isinstance(obj, keras.Model)


class Explainer:
    """Explain a Keras classifier's predictions with the Grad-CAM family and pixel methods.

    Args:
        model: A ``keras.Model`` (Sequential or functional, nested backbones included), a predictor from
            :func:`neuroxai.load` (its model, class names and default target layer are used), or a path
            to a run directory or ``.keras`` file (loaded in Keras safe mode).
        method: A registered method name (``gradcam``, ``gradcam++``/``gradcampp``, ``layercam``,
            ``hirescam``, ``scorecam``, ``saliency``, ``smoothgrad``, ``integrated_gradients``,
            ``occlusion``, or a plugin's), an :class:`ExplainMethod` subclass or instance.
        target_layer: For CAM methods: a layer name, a tuple path through nested models
            (``("efficientnetb0", "top_conv")``; never a dotted string), or ``None`` for the predictor's
            default, else the last layer with a 4-D output. Ignored by pixel methods.
        class_names: Names for the model's classes (default: the predictor's, else ``"0"``, ``"1"`` ...).
        batch_size: Forward passes per compiled call (images x samples for SmoothGrad and integrated
            gradients; images x channels/patches for Score-CAM and occlusion).
        **method_options: Options of the method (e.g. ``samples=32`` for SmoothGrad).

    Raises:
        ExplainError: Unknown method or option, a target layer that does not exist or is not 4-D
            (the candidates are listed), class names that do not match the model, or an untraceable model.
        ModelError: A model path that cannot be loaded.

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
        batch_size: int = 32,
        **method_options: Any,
    ) -> None:
        import keras

        from neuroxai.explain._graph import TracedModel, resolve_target_layer

        if keras.backend.backend() != "tensorflow":
            raise ExplainError(
                f"neuroxai explanations run on the TensorFlow backend; KERAS_BACKEND is {keras.backend.backend()!r}. "
                "Set KERAS_BACKEND=tensorflow before importing keras."
            )
        if isinstance(model, (str, os.PathLike)):
            model = load_model_source(model)
        self.predictor = None
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

        if class_names is None and self.predictor is not None:
            class_names = getattr(self.predictor, "class_names", None)
        default_layer = getattr(self.predictor, "target_layer", None) if self.predictor is not None else None
        self.input_range = tuple(getattr(self.predictor, "input_range", None) or (0.0, 1.0))

        path = None
        if self.method.uses_layer:
            wanted = target_layer if target_layer is not None else default_layer
            if isinstance(wanted, list):
                wanted = tuple(wanted)
            path = resolve_target_layer(model, wanted)
        self.traced = TracedModel(model, path)
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
        self.class_names = class_names
        self.method.bind(self.traced, self.batch_size)

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
    def score_source(self) -> str:
        """What the gradients are taken of: ``"logits"``, ``"output"`` or ``"probabilities"``."""
        return self.traced.score_source

    # ---- inputs -------------------------------------------------------------------------------
    def _images(self, images: Any) -> np.ndarray:
        if self.predictor is not None and hasattr(self.predictor, "preprocess"):
            is_path = isinstance(images, (str, os.PathLike)) or (
                isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, os.PathLike))
            )
            if is_path:
                images = self.predictor.preprocess(images if isinstance(images, (list, tuple)) else [images])
        try:
            x = np.asarray(images, dtype=np.float32)
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
        if not np.all(np.isfinite(x)):
            raise ExplainError("Images contain NaN or infinite values; expected finite pixel values.")
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

        if isinstance(targets, (str, int, np.integer, np.str_)):
            return np.full(n, one(targets), np.int32)
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
        import tensorflow as tf

        x = self._images(images)
        t = self._targets(targets, len(x))
        per_call = max(1, self.batch_size // max(1, self.method.samples_per_image()))
        maps, probs, used = [], [], []
        for start in range(0, len(x), per_call):
            m, p, r = self.method.explain_batch(
                tf.constant(x[start : start + per_call]), tf.constant(t[start : start + per_call])
            )
            maps.append(m)
            probs.append(p)
            used.append(r)
        if len(x):
            maps_a, probs_a, used_a = np.concatenate(maps), np.concatenate(probs), np.concatenate(used)
        else:
            h, w = x.shape[1:3]
            maps_a, probs_a, used_a = (
                np.zeros((0, h, w), np.float32),
                np.zeros((0, len(self.class_names)), np.float32),
                np.zeros(0, np.int32),
            )
        return Explanation(
            maps=maps_a.astype(np.float32),
            probabilities=probs_a.astype(np.float32),
            predicted=probs_a.argmax(axis=-1).astype(np.int64),
            targets=used_a.astype(np.int64),
            class_names=self.class_names,
            layer=self.layer,
            method=self.method.name,
            images=x,
            metadata={"score": self.traced.score_source, "options": dict(self.method.options), "batch_size": self.batch_size},
        )

    def __call__(self, images: Any, targets: Any = None) -> np.ndarray:
        """Maps only (``explain(images, targets).maps``): the ``explain_fn`` shape evaluation metrics expect."""
        return self.explain(images, targets).maps

    def __repr__(self) -> str:
        return f"Explainer(model={self.model.name!r}, method={self.method!r}, layer={self.layer!r})"
