"""Predictor: a saved model plus its spec, doing its own preprocessing; ``load`` and shared evaluation."""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai.errors import DataError, ModelError

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from neuroxai.data import Dataset

__all__ = ["Predictor", "evaluate_model", "load"]

MODEL_FILE = "model.keras"
SPEC_FILE = "neuroxai.json"


_PREDICT_FNS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _predict_array(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Batched, compiled forward pass on this process's copy of the weights.

    Unlike ``model.predict`` this returns every row also when the model was
    built under a multi-worker strategy (where ``predict`` shards the input).
    """
    import tensorflow as tf

    if len(x) == 0:
        k = int(model.outputs[0].shape[-1])
        return np.zeros((0, k), np.float32)
    fn = _PREDICT_FNS.get(model)
    if fn is None:
        fn = tf.function(lambda t: model(t, training=False), reduce_retracing=True)
        _PREDICT_FNS[model] = fn
    step = max(1, int(batch_size))
    out = [np.asarray(fn(tf.convert_to_tensor(x[i : i + step], tf.float32))) for i in range(0, len(x), step)]
    return np.concatenate(out).astype(np.float32)


def evaluate_model(
    model: keras.Model,
    dataset: Dataset,
    *,
    split: str = "test",
    class_names: Sequence[str],
    input_shape: Sequence[int],
    input_range: Sequence[float],
    batch_size: int = 32,
) -> dict[str, Any]:
    """Metrics of ``model`` on a dataset split, plus the de-duplicated test set where it differs.

    Args:
        model: A Keras model returning class probabilities.
        dataset: The data; its class names must equal ``class_names``.
        split: Split to evaluate.
        class_names: The model's class names, in output order.
        input_shape: ``(height, width, channels)`` of the model input.
        input_range: Pixel range of the model input.
        batch_size: Prediction batch size.

    Returns:
        ``{"class_names": [...], split: metrics, split + "_dedup": metrics (when duplicates exist)}``.

    Raises:
        DataError: Class names differ, or the split is empty.
    """
    from neuroxai.runs._metrics import classification_metrics

    if tuple(dataset.class_names) != tuple(class_names):
        raise DataError(
            f"The model was trained on classes {list(class_names)} but {getattr(dataset, 'source', 'the dataset')} has "
            f"{list(dataset.class_names)}. Evaluate on data with the same class folders."
        )
    y = dataset.labels(split)
    if len(y) == 0:
        raise DataError(f"Split {split!r} of {getattr(dataset, 'source', 'the dataset')} is empty; nothing to evaluate.")
    x, y = dataset.arrays(split, image_size=tuple(input_shape[:2]), channels=int(input_shape[2]), input_range=tuple(input_range))
    proba = _predict_array(model, x, batch_size)
    out: dict[str, Any] = {"class_names": list(class_names), split: classification_metrics(y, proba, class_names)}
    if split == "test":
        dup = np.asarray(dataset.duplicate_test_indices(), dtype=np.int64)
        if dup.size:
            keep = np.ones(len(y), bool)
            keep[dup] = False
            m = classification_metrics(y[keep], proba[keep], class_names)
            m["removed_duplicates"] = int(dup.size)
            out["test_dedup"] = m
    return out


class Predictor:
    """A trained model with its class names and preprocessing: give it files, PIL images or arrays.

    Get one with :func:`neuroxai.load`. Inputs are read, converted to the
    model's channels, resized to its input size and scaled to its input
    range exactly like the training pipeline does.

    Args:
        model: The Keras model (outputs class probabilities).
        class_names: Class names in output order.
        input_shape: ``(height, width, channels)``.
        input_range: Pixel range the model expects.
        target_layer: Default explanation layer (``None``: let the explainer search).
        spec: The full ``neuroxai.json`` content (``{}`` if there was none).
        path: Where the model was loaded from.

    Attributes:
        model, class_names, input_shape, input_range, target_layer, spec, path.

    Example:
        >>> import neuroxai
        >>> predictor = neuroxai.load("demo-run")  # doctest: +SKIP
        >>> predictor.predict_names(["scan.png"])  # doctest: +SKIP
        ['glioma']
    """

    def __init__(
        self,
        model: keras.Model,
        class_names: Sequence[str],
        input_shape: Sequence[int],
        input_range: Sequence[float] = (0.0, 1.0),
        target_layer: str | None = None,
        spec: dict[str, Any] | None = None,
        path: str | Path | None = None,
    ) -> None:
        self.model = model
        self.class_names = tuple(str(c) for c in class_names)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.input_range = (float(input_range[0]), float(input_range[1]))
        self.target_layer = target_layer
        self.spec = dict(spec or {})
        self.path = Path(path) if path is not None else None

    def __repr__(self) -> str:
        return (
            f"Predictor(model={self.model.name!r}, classes={list(self.class_names)}, input_shape={self.input_shape}, "
            f"input_range={self.input_range})"
        )

    def preprocess(self, inputs: Any) -> np.ndarray:
        """Turn files, PIL images or arrays into a model-ready float32 batch.

        Args:
            inputs: A path, a PIL image, an array ``[H,W]``/``[H,W,C]``/``[N,H,W,C]``
                (uint8 on 0..255; floats <= 1 taken as 0..1), or a list mixing them.

        Returns:
            float32 ``[N, H, W, C]`` in :attr:`input_range`.

        Raises:
            DataError: A file cannot be read (all unreadable files are named),
                or an input is not an image.
        """
        from neuroxai.data import load_images, to_model_input

        size, channels = self.input_shape[:2], self.input_shape[2]
        if isinstance(inputs, (str, os.PathLike)):
            items: list[Any] = [inputs]
        elif isinstance(inputs, np.ndarray):
            return to_model_input(inputs, size, channels, self.input_range)
        elif hasattr(inputs, "getbands"):  # PIL image
            items = [inputs]
        else:
            items = list(inputs)
        if not items:
            return np.zeros((0, *self.input_shape), np.float32)
        path_pos = [i for i, it in enumerate(items) if isinstance(it, (str, os.PathLike))]
        out: list[np.ndarray | None] = [None] * len(items)
        if path_pos:
            x, _ok, skipped = load_images(
                [items[i] for i in path_pos], image_size=size, channels=channels, input_range=self.input_range
            )
            if skipped:
                listed = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:5])
                raise DataError(f"Could not read {len(skipped)} of {len(path_pos)} image file(s): {listed}. Fix or drop them.")
            for i, arr in zip(path_pos, x):
                out[i] = arr
        others = [i for i in range(len(items)) if out[i] is None]
        if others:
            x = to_model_input([items[i] for i in others], size, channels, self.input_range)
            for i, arr in zip(others, x):
                out[i] = arr
        return np.stack(out).astype(np.float32)  # type: ignore[arg-type]

    def predict(self, inputs: Any, batch_size: int = 32) -> np.ndarray:
        """Class probabilities.

        Args:
            inputs: See :meth:`preprocess`.
            batch_size: Prediction batch size.

        Returns:
            float32 ``[N, num_classes]``, columns in :attr:`class_names` order.

        Raises:
            DataError: See :meth:`preprocess`.
        """
        return _predict_array(self.model, self.preprocess(inputs), batch_size)

    def predict_classes(self, inputs: Any, batch_size: int = 32) -> np.ndarray:
        """Index of the most probable class per input (``int64 [N]``)."""
        return self.predict(inputs, batch_size=batch_size).argmax(axis=1)

    def predict_names(self, inputs: Any, batch_size: int = 32) -> list[str]:
        """Name of the most probable class per input."""
        return [self.class_names[i] for i in self.predict_classes(inputs, batch_size=batch_size)]

    def evaluate(self, dataset: Dataset, split: str = "test", batch_size: int = 32) -> dict[str, Any]:
        """Metrics on a dataset split, as :meth:`neuroxai.Trainer.evaluate` returns them.

        Raises:
            DataError: The dataset's class names differ or the split is empty.
        """
        return evaluate_model(
            self.model,
            dataset,
            split=split,
            class_names=self.class_names,
            input_shape=self.input_shape,
            input_range=self.input_range,
            batch_size=batch_size,
        )


def load(path: str | os.PathLike[str]) -> Predictor:
    """Load a trained model from a run directory or a ``.keras`` file.

    The model is loaded with Keras safe mode (``safe_mode=True``): a model
    file cannot run code (no ``Lambda`` deserialisation of arbitrary
    Python). Class names, input shape and range and the explanation target
    layer come from ``neuroxai.json`` beside the model; for a bare
    ``.keras`` file without one, the input shape comes from the model, the
    range is (0, 1) and classes are named ``class_0``, ``class_1`` ...

    Args:
        path: A run directory (with ``model.keras``) or a ``.keras`` file.

    Returns:
        A :class:`Predictor`.

    Raises:
        ModelError: Nothing to load at ``path``, or the file is not a valid
            Keras model (or would need unsafe deserialisation).

    Example:
        >>> import neuroxai
        >>> predictor = neuroxai.load("demo-run")  # doctest: +SKIP
        >>> predictor.predict(["scan.png"]).shape  # doctest: +SKIP
        (1, 4)
    """
    import keras

    p = Path(path)
    if p.is_dir():
        model_file, spec_file = p / MODEL_FILE, p / SPEC_FILE
    else:
        model_file, spec_file = p, p.parent / SPEC_FILE
    if not model_file.is_file():
        raise ModelError(
            f"Expected a run directory with {MODEL_FILE} or a .keras file, but {model_file} does not exist. "
            "Train one with `neuroxai train` or Trainer(...).fit(dataset, out_dir=...)."
        )
    try:
        model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as exc:
        raise ModelError(f"Could not load the Keras model {model_file}: {type(exc).__name__}: {exc}") from exc
    spec: dict[str, Any] = {}
    if spec_file.is_file():
        try:
            spec = json.loads(spec_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"Could not read {spec_file}: {exc}. Restore it or delete it to load the bare model.") from exc
    k = int(model.outputs[0].shape[-1])
    shape = spec.get("input_shape") or [int(d) for d in model.input_shape[1:]]
    names = spec.get("class_names") or [f"class_{i}" for i in range(k)]
    if len(names) != k:
        raise ModelError(f"{spec_file} lists {len(names)} classes but the model {model_file} has {k} outputs.")
    return Predictor(
        model,
        class_names=names,
        input_shape=shape,
        input_range=spec.get("input_range") or (0.0, 1.0),
        target_layer=spec.get("target_layer"),
        spec=spec,
        path=p,
    )
