"""Predictor: a saved model plus its spec, doing its own preprocessing; ``load`` and shared evaluation."""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai.errors import DataError, ModelError
from neuroxai.runs._run import MODEL_FILE, RunDirectory, RunSpec

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from neuroxai.data import Dataset
    from neuroxai.runs._metrics import EvaluationReport

__all__ = ["Predictor", "evaluate_model", "load", "predict_array"]

_PREDICT_FNS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def predict_array(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's outputs for ``x``: a batched, compiled forward pass on this process's copy of the weights.

    Unlike ``model.predict`` this returns every row also when the model was
    built under a multi-worker strategy (where ``predict`` shards the input).

    Args:
        model: A Keras model with one output.
        x: float32 inputs ``[N, H, W, C]``.
        batch_size: Images per compiled call.

    Returns:
        float32 ``[N, K]``.
    """
    import tensorflow as tf

    if len(x) == 0:
        k = int(model.outputs[0].shape[-1])
        return np.zeros((0, k), np.float32)
    fn = _PREDICT_FNS.get(model)
    if fn is None:
        spec = tf.TensorSpec((None, *x.shape[1:]), tf.float32)  # any batch size: one trace per model
        fn = tf.function(lambda t: model(t, training=False), input_signature=[spec])
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
) -> EvaluationReport:
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
        An :class:`~neuroxai.runs.EvaluationReport`.

    Raises:
        DataError: Class names differ, or the split is empty.
    """
    from neuroxai.runs._metrics import EvaluationReport, classification_metrics

    if tuple(dataset.class_names) != tuple(class_names):
        raise DataError(
            f"The model was trained on classes {list(class_names)} but {dataset.source} has "
            f"{list(dataset.class_names)}. Evaluate on data with the same class folders."
        )
    y = dataset.labels(split)
    if len(y) == 0:
        raise DataError(f"Split {split!r} of {dataset.source} is empty; nothing to evaluate.")
    x, y = dataset.arrays(
        split,
        image_size=(int(input_shape[0]), int(input_shape[1])),
        channels=int(input_shape[2]),
        input_range=(float(input_range[0]), float(input_range[1])),
    )
    proba = predict_array(model, x, batch_size)
    names = tuple(str(c) for c in class_names)
    dedup = None
    removed = 0
    if split == "test":
        dup = np.asarray(dataset.duplicate_test_indices(), dtype=np.int64)
        if dup.size:
            keep = np.ones(len(y), bool)
            keep[dup] = False
            dedup = classification_metrics(y[keep], proba[keep], names)
            removed = int(dup.size)
    return EvaluationReport(
        split=split, class_names=names, metrics=classification_metrics(y, proba, names), dedup=dedup, removed_duplicates=removed
    )


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
        spec: The run's :class:`~neuroxai.runs.RunSpec` (``None`` for a bare ``.keras`` file).
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
        spec: RunSpec | None = None,
        path: str | Path | None = None,
    ) -> None:
        self.model = model
        self.class_names = tuple(str(c) for c in class_names)
        h, w, c = (int(d) for d in input_shape)
        self.input_shape: tuple[int, int, int] = (h, w, c)
        self.input_range = (float(input_range[0]), float(input_range[1]))
        self.target_layer = target_layer
        self.spec = spec
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

        size, channels = (self.input_shape[0], self.input_shape[1]), self.input_shape[2]
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
        out: list[np.ndarray | None] = [None] * len(items)  # filled in below: paths first, then arrays and PIL images
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
        return np.stack([a for a in out if a is not None]).astype(np.float32)

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
        return predict_array(self.model, self.preprocess(inputs), batch_size)

    def predict_classes(self, inputs: Any, batch_size: int = 32) -> np.ndarray:
        """Index of the most probable class per input (``int64 [N]``)."""
        return np.asarray(self.predict(inputs, batch_size=batch_size).argmax(axis=1), dtype=np.int64)

    def predict_names(self, inputs: Any, batch_size: int = 32) -> list[str]:
        """Name of the most probable class per input."""
        return [self.class_names[i] for i in self.predict_classes(inputs, batch_size=batch_size)]

    def evaluate(self, dataset: Dataset, split: str = "test", batch_size: int = 32) -> EvaluationReport:
        """Metrics on a dataset split (an :class:`~neuroxai.runs.EvaluationReport`), as :meth:`neuroxai.Trainer.evaluate` returns them.

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
            Keras model (or would need unsafe deserialisation), or the spec
            beside it does not fit the model.

    Example:
        >>> import neuroxai
        >>> predictor = neuroxai.load("demo-run")  # doctest: +SKIP
        >>> predictor.predict(["scan.png"]).shape  # doctest: +SKIP
        (1, 4)
    """
    import keras

    p = Path(path)
    if p.is_dir():
        run = RunDirectory(p)
        model_file = run.model_file
    else:
        run = RunDirectory(p.parent)
        model_file = p
    if not model_file.is_file():
        raise ModelError(
            f"Expected a run directory with {MODEL_FILE} or a .keras file, but {model_file} does not exist. "
            "Train one with `neuroxai train` or Trainer(...).fit(dataset, out_dir=...)."
        )
    try:
        model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad file; all mean "not loadable"
        raise ModelError(f"Could not load the Keras model {model_file}: {type(exc).__name__}: {exc}") from exc
    spec = run.read_spec()
    k = int(model.outputs[0].shape[-1])
    if spec is None:
        shape = [int(d) for d in model.input_shape[1:]]
        return Predictor(model, class_names=[f"class_{i}" for i in range(k)], input_shape=shape, path=p)
    if len(spec.class_names) != k:
        raise ModelError(f"{run.spec_file} lists {len(spec.class_names)} classes but the model {model_file} has {k} outputs.")
    return Predictor(
        model,
        class_names=spec.class_names,
        input_shape=spec.input_shape,
        input_range=spec.input_range,
        target_layer=spec.target_layer,
        spec=spec,
        path=p,
    )
