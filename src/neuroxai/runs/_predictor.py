"""Predictor: a saved model plus its spec, doing its own preprocessing; ``load`` and shared evaluation."""

from __future__ import annotations

import json
import logging
import os
import weakref
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai._cache import PerModel
from neuroxai._keras_backend import EXPLAIN_BACKENDS, compile_model_function, current, require, to_numpy
from neuroxai.errors import DataError, ModelError
from neuroxai.models._heads import Head, check_head, head_classes, output_probabilities
from neuroxai.runs._run import MODEL_FILE, RunDirectory, RunSpec, check_spec_against_model

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from neuroxai.data import Dataset, SplitImages
    from neuroxai.runs._calibration import Calibration, CalibrationReport
    from neuroxai.runs._metrics import EvaluationReport
    from neuroxai.runs._ood import OODDetector

log = logging.getLogger(__name__)

__all__ = ["Predictor", "evaluate_model", "load", "predict_array", "pretrained", "read_split_for_model"]

_PREDICT_FNS: PerModel[Any] = PerModel()
#: What a saved run can do on the JAX and PyTorch backends (the hint of every refusal in this layer).
_JAX_RUNS = "On JAX and PyTorch a saved run loads (neuroxai.load), predicts (also with test-time augmentation) and evaluates."


def _forward(model: keras.Model, spec: Any) -> Any:
    """A compiled forward pass of ``model`` that holds the model weakly (so the cache entry dies with it).

    ``tf.function`` with ``spec`` on TensorFlow; on JAX ``jax.jit`` over the model's variables
    (:class:`~neuroxai._keras_backend.StatelessJit`, one trace per batch shape; ``spec`` unused); on
    PyTorch eager under ``torch.no_grad`` (:class:`~neuroxai._keras_backend.TorchEager`).
    """
    ref = weakref.ref(model)

    def forward(t: Any) -> Any:
        live = ref()
        if live is None:  # pragma: no cover - the cache entry goes with the model
            raise ModelError("The model of this compiled forward pass no longer exists.")
        return live(t, training=False)

    if current() != "tensorflow":
        return compile_model_function(model, forward)
    import tensorflow as tf

    return tf.function(forward, input_signature=[spec])


def predict_array(model: keras.Model, x: np.ndarray, batch_size: int, *, head: Head | None = None) -> np.ndarray:
    """The model's outputs for ``x``: a batched, compiled forward pass on this process's copy of the weights.

    Unlike ``model.predict`` this returns every row also when the model was
    built under a multi-worker strategy (where ``predict`` shards the input).
    The compiled function is kept per model (on TensorFlow traced once for any
    batch size; on JAX once per batch shape; eager on PyTorch).

    Args:
        model: A Keras model with one output.
        x: float32 inputs ``[N, H, W, C]``.
        batch_size: Images per compiled call.
        head: ``None``: the raw outputs. A head (:data:`~neuroxai.models.Head`): class
            probabilities as it defines them (:func:`~neuroxai.models.output_probabilities`;
            two columns for a one-unit binary output).

    Returns:
        float32 ``[N, K]`` (``[N, C]`` probabilities with ``head``).
    """
    if len(x) == 0:
        k = int(model.outputs[0].shape[-1])
        return np.zeros((0, k if head is None else head_classes(head, k)), np.float32)
    step = max(1, int(batch_size))
    if current() != "tensorflow":
        fn = _PREDICT_FNS.get(model, lambda m: _forward(m, None))
        x32 = np.asarray(x, np.float32)
        out = [to_numpy(fn(x32[i : i + step])) for i in range(0, len(x), step)]
    else:
        import tensorflow as tf

        spec = tf.TensorSpec((None, *x.shape[1:]), tf.float32)  # any batch size: one trace per model
        fn = _PREDICT_FNS.get(model, lambda m: _forward(m, spec))
        out = [np.asarray(fn(tf.convert_to_tensor(x[i : i + step], tf.float32))) for i in range(0, len(x), step)]
    raw = np.concatenate(out).astype(np.float32)
    return raw if head is None else output_probabilities(raw, head)


def read_split_for_model(dataset: Dataset, split: str, input_shape: Sequence[int], input_range: Sequence[float]) -> SplitImages:
    """``dataset.read_split(split)`` at a model's input size, channels and pixel range.

    Files that went bad since indexing are left out and listed in its ``unreadable``, not fatal.
    """
    return dataset.read_split(
        split,
        image_size=(int(input_shape[0]), int(input_shape[1])),
        channels=int(input_shape[2]),
        input_range=(float(input_range[0]), float(input_range[1])),
    )


def evaluate_model(
    model: keras.Model,
    dataset: Dataset,
    *,
    split: str = "test",
    class_names: Sequence[str],
    input_shape: Sequence[int],
    input_range: Sequence[float],
    batch_size: int = 32,
    calibration: Calibration | None = None,
    head: Head = "softmax",
) -> EvaluationReport:
    """Metrics of ``model`` on a dataset split, plus the de-duplicated test set where it differs.

    On every backend the split is decoded by the ``tf.data`` pipeline into numpy arrays, which the
    compiled forward pass (:func:`predict_array`: ``tf.function`` or ``jax.jit``) predicts in batches.

    Args:
        model: A Keras model (its outputs become class probabilities as ``head`` says).
        dataset: The data; its class names must equal ``class_names``.
        split: Split to evaluate.
        class_names: The model's class names, in output order.
        input_shape: ``(height, width, channels)`` of the model input.
        input_range: Pixel range of the model input.
        batch_size: Prediction batch size.
        calibration: The run's :class:`~neuroxai.runs.Calibration`: the report's
            ``calibration`` part then also measures the temperature-scaled
            probabilities and the conformal prediction sets (``None``: only the
            model's own probabilities).
        head: What the model outputs (:data:`~neuroxai.models.Head`; default softmax probabilities).

    Returns:
        An :class:`~neuroxai.runs.EvaluationReport`.

    Raises:
        DataError: Class names differ, or the split is empty.
        BackendError: The Keras backend is none of TensorFlow, JAX and PyTorch.
    """
    require("Evaluating a model on a dataset split", EXPLAIN_BACKENDS, hint=_JAX_RUNS)
    from neuroxai.runs._metrics import EvaluationReport, classification_metrics

    if tuple(dataset.class_names) != tuple(class_names):
        raise DataError(
            f"The model was trained on classes {list(class_names)} but {dataset.source} has "
            f"{list(dataset.class_names)}. Evaluate on data with the same class folders."
        )
    y = dataset.labels(split)
    if len(y) == 0:
        raise DataError(f"Split {split!r} of {dataset.source} is empty; nothing to evaluate.")
    read = read_split_for_model(dataset, split, input_shape, input_range)  # files gone bad: left out and listed
    x, y = read.x, read.labels
    if len(y) == 0:
        first = read.unreadable[0] if read.unreadable else None
        raise DataError(
            f"None of the {len(dataset.labels(split))} images of split {split!r} of {dataset.source} could be read"
            + (f" (e.g. {first.path!r}: {first.reason})" if first is not None else "")
            + "; rebuild the Dataset from intact files."
        )
    proba = predict_array(model, x, batch_size, head=head)
    names = tuple(str(c) for c in class_names)
    dedup = None
    removed = 0
    if split == "test":
        dup = np.isin(read.positions, np.asarray(dataset.duplicate_test_indices(), dtype=np.int64))
        if dup.any():
            dedup = classification_metrics(y[~dup], proba[~dup], names)
            removed = int(dup.sum())
    return EvaluationReport(
        split=split,
        class_names=names,
        metrics=classification_metrics(y, proba, names),
        dedup=dedup,
        removed_duplicates=removed,
        unreadable=read.unreadable,
        calibration=_calibration_report(y, proba, head, calibration, np.flatnonzero(dup) if split == "test" else ()),
    )


def _calibration_report(
    y: np.ndarray, proba: np.ndarray, head: Head, calibration: Calibration | None, duplicates: Any
) -> CalibrationReport | None:
    """Calibration, risk-coverage and conformal sets of one evaluated split (see :mod:`neuroxai.runs._calibration`).

    ``None`` for independent sigmoids: their scores are not one distribution over the classes.
    """
    from neuroxai.runs._calibration import evaluate_calibration, log_probabilities

    if head == "sigmoid":
        return None
    return evaluate_calibration(y, log_probabilities(proba), calibration, duplicates=duplicates)


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
        calibration: Temperature and conformal scores (default: the spec's
            :attr:`~neuroxai.runs.RunSpec.calibration`). With one,
            :meth:`predict` returns temperature-scaled probabilities
            (``calibrated=False`` for the model's own) and :meth:`predict_sets`
            works.
        head: What the model outputs (:data:`~neuroxai.models.Head`: ``"softmax"``, ``"logits"``,
            ``"sigmoid"``, ``"binary"``); ``None``: read from its last layer
            (:func:`~neuroxai.models.detect_head`). :meth:`predict` returns probabilities for
            every head; a one-unit binary output has two classes (negative, positive).
        ood: The out-of-distribution score (default: the spec's :attr:`~neuroxai.runs.RunSpec.ood`). With one,
            :meth:`ood_scores` and :meth:`predict_with_ood` say which inputs are unlike the training data.

    Attributes:
        model, class_names, input_shape, input_range, target_layer, spec, path, calibration, head, ood.

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
        calibration: Calibration | None = None,
        head: Head | None = None,
        ood: OODDetector | None = None,
    ) -> None:
        self.model = model
        self.head: Head = _model_head(model, head)
        self.class_names = tuple(str(c) for c in class_names)
        units = _units(model)
        if units is not None and len(self.class_names) != head_classes(self.head, units):
            raise ModelError(
                f"Model {model.name!r} with a {self.head!r} head of {units} output unit(s) has "
                f"{head_classes(self.head, units)} classes, but {len(self.class_names)} class names were given."
            )
        h, w, c = (int(d) for d in input_shape)
        self.input_shape: tuple[int, int, int] = (h, w, c)
        self.input_range = (float(input_range[0]), float(input_range[1]))
        self.target_layer = target_layer
        self.spec = spec
        self.path = Path(path) if path is not None else None
        self.calibration = calibration if calibration is not None else (spec.calibration if spec is not None else None)
        self.ood = ood if ood is not None else (spec.ood if spec is not None else None)

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

    def predict(self, inputs: Any, batch_size: int = 32, *, calibrated: bool = True, tta: int = 1) -> np.ndarray:
        """Class probabilities (temperature-scaled where the run is calibrated).

        Args:
            inputs: See :meth:`preprocess`.
            batch_size: Prediction batch size.
            calibrated: Apply the run's temperature (no effect without a
                :attr:`calibration`); ``False`` gives the model's own probabilities.
            tta: Passes of test-time augmentation averaged (flips, small shifts
                and MC-dropout where the model has dropout; see
                :func:`~neuroxai.runs.tta_probabilities`); 1 is a plain prediction.

        Returns:
            float32 ``[N, num_classes]``, columns in :attr:`class_names` order.

        Raises:
            DataError: See :meth:`preprocess`; ``tta`` below 1.
        """
        return self.predict_batch(self.preprocess(inputs), batch_size, calibrated=calibrated, tta=tta)

    @property
    def temperature(self) -> float | None:
        """The run's temperature (``None`` when it has no :attr:`calibration`)."""
        return self.calibration.temperature if self.calibration is not None else None

    def predict_batch(self, x: np.ndarray, batch_size: int = 32, *, calibrated: bool = True, tta: int = 1) -> np.ndarray:
        """:meth:`predict` for a batch that is already model-ready (the output of :meth:`preprocess`)."""
        from neuroxai.runs._uncertainty import apply_temperature, tta_probabilities

        temperature = self.temperature if calibrated else None
        if tta != 1:
            return tta_probabilities(self.model, x, tta, head=self.head, temperature=temperature, batch_size=batch_size)
        return apply_temperature(predict_array(self.model, x, batch_size, head=self.head), temperature)

    def predict_with_ood(
        self, x: np.ndarray, batch_size: int = 32, *, calibrated: bool = True, tta: int = 1
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`predict_batch` and the out-of-distribution scores of the same model-ready batch.

        Without test-time augmentation one compiled forward pass gives both; with it, the scores come from the
        plain pass.

        Args:
            x: float32 ``[N, H, W, C]`` (the output of :meth:`preprocess`).
            batch_size: Images per forward pass.
            calibrated: Apply the run's temperature.
            tta: Passes of test-time augmentation (1: none).

        Returns:
            ``(probabilities float32 [N, K], scores float32 [N])``; scores are ``None`` when the run has no
            :attr:`ood` (``neuroxai calibrate RUN_DIR --data DIR`` fits one).
        """
        from neuroxai.runs._ood import features_and_outputs
        from neuroxai.runs._uncertainty import apply_temperature

        if self.ood is None:
            return self.predict_batch(x, batch_size, calibrated=calibrated, tta=tta), None
        features, raw = features_and_outputs(self.model, x, batch_size, layer=self.ood.layer)
        if tta != 1:
            proba = self.predict_batch(x, batch_size, calibrated=calibrated, tta=tta)
        else:
            proba = apply_temperature(output_probabilities(raw, self.head), self.temperature if calibrated else None)
        return proba, self.ood.scores(features)

    def ood_scores(self, inputs: Any, batch_size: int = 32) -> np.ndarray:
        """Out-of-distribution scores: about 1 for images like the training data, higher for images unlike it.

        Above :attr:`ood.threshold <neuroxai.runs.OODDetector.threshold>` an image is outside what the model
        knows (``predictor.ood.flags(scores)``); see :mod:`neuroxai.runs._ood`.

        Args:
            inputs: See :meth:`preprocess`.
            batch_size: Images per forward pass.

        Returns:
            float32 ``[N]``.

        Raises:
            ModelError: The run has no out-of-distribution score.
            DataError: An input cannot be read.
        """
        if self.ood is None:
            where = f" {self.path}" if self.path is not None else ""
            raise ModelError(
                f"The run{where} has no out-of-distribution score. Fit one on its data: "
                f"neuroxai calibrate{where or ' RUN_DIR'} --data DIR (runs trained with this version have one)."
            )
        scores = self.predict_with_ood(self.preprocess(inputs), batch_size)[1]
        assert scores is not None  # self.ood is set
        return scores

    def predict_sets(
        self, inputs: Any, coverage: float = 0.95, method: str = "lac", batch_size: int = 32
    ) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities and split-conformal prediction sets.

        Each set holds the true class with probability at least ``coverage``
        (over images like the validation split's; see
        :mod:`neuroxai.runs._calibration`). A set with several classes, or
        none, marks an image the model cannot decide alone.

        Args:
            inputs: See :meth:`preprocess`.
            coverage: Target coverage, e.g. 0.95.
            method: ``"lac"`` (default: smallest sets) or ``"aps"`` (adaptive sets).
            batch_size: Prediction batch size.

        Returns:
            ``(probabilities float32 [N, K], sets bool [N, K])``.

        Raises:
            ModelError: The run has no calibration (``neuroxai calibrate RUN_DIR --data DIR`` adds one).
            DataError: Bad coverage or method, or an input cannot be read.
        """
        from neuroxai.runs._calibration import prediction_sets

        threshold = self.conformal_threshold(coverage, method)
        proba = self.predict(inputs, batch_size)
        return proba, prediction_sets(proba, threshold, method)

    def conformal_threshold(self, coverage: float = 0.95, method: str = "lac") -> float:
        """The threshold of :meth:`predict_sets` (see :func:`~neuroxai.runs.conformal_threshold`).

        Raises:
            ModelError: The run has no calibration.
            DataError: Bad coverage or method.
        """
        if self.calibration is None:
            where = f" {self.path}" if self.path is not None else ""
            raise ModelError(
                f"The run{where} has no calibration, so it cannot give prediction sets. Fit one on its validation split: "
                f"neuroxai calibrate{where or ' RUN_DIR'} --data DIR (runs trained with this version have one)."
            )
        return self.calibration.threshold(method, coverage)

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
            calibration=self.calibration,
            head=self.head,
        )


def _units(model: keras.Model) -> int | None:
    """The last dimension of the model's (first) output, ``None`` when unknown."""
    try:
        dim = model.outputs[0].shape[-1]
    except (AttributeError, IndexError, ValueError, TypeError):
        return None
    return None if dim is None else int(dim)


def _model_head(model: keras.Model, head: Head | None) -> Head:
    """The head stated (checked against the output) or read from the last layer."""
    from neuroxai.models import detect_head

    if head is not None:
        return check_head(head, _units(model), name=f"head of model {model.name!r}")
    return detect_head(model)[0]


#: Largest ``config.json`` read from a ``.keras`` archive to name the layers safe mode refused.
_MAX_CONFIG_BYTES = 64 << 20


def _layers(config: Any, is_layer: bool = True) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(name, class_name, entry)`` of the model and every layer in a Keras config (nested models' layers included)."""
    if isinstance(config, dict):
        cls, inner = config.get("class_name"), config.get("config")
        if is_layer and isinstance(cls, str) and isinstance(inner, dict):
            yield str(config.get("name") or inner.get("name") or "?"), cls, config
        for key, value in config.items():
            if key == "layers" and isinstance(value, list):
                for item in value:
                    yield from _layers(item, True)
            else:
                yield from _layers(value, False)
    elif isinstance(config, list):
        for value in config:
            yield from _layers(value, False)


def _code_layers(model_file: Path) -> list[str]:
    """The layers of a ``.keras`` archive that need code to load (``Lambda``, classes not registered here), described.

    Read from the archive's ``config.json`` as plain JSON: nothing is deserialised.
    """
    import keras

    try:
        with zipfile.ZipFile(model_file) as archive:
            if archive.getinfo("config.json").file_size > _MAX_CONFIG_BYTES:
                return []
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return []
    found: list[str] = []
    for name, cls, entry in _layers(config):
        module = entry.get("module")
        registered = entry.get("registered_name") or cls
        if cls == "Lambda":
            found.append(f"layer {name!r} is a Lambda layer (Python code)")
        elif not (isinstance(module, str) and module.startswith("keras")) and (
            keras.saving.get_registered_object(str(registered)) is None
        ):
            found.append(f"layer {name!r} is of class {str(registered)!r}, which no installed package registers")
    return list(dict.fromkeys(found))


def _load_problem(model_file: Path, exc: Exception) -> str:
    """Why Keras could not load ``model_file``, in one line (Keras' own message can hold kilobytes of config)."""
    code = _code_layers(model_file)
    if code:
        more = f" (and {len(code) - 1} more)" if len(code) > 1 else ""
        return (
            f"it needs code to load: {code[0]}{more}. neuroxai loads models in Keras safe mode, so a model file cannot run "
            "code. Rebuild the model with built-in layers (e.g. Rescaling instead of a Lambda), or install and import the "
            "package that registers the class."
        )
    text = " ".join(str(exc).split())
    for cut in (" config=", " Full object config", " Exception encountered"):
        text = text.split(cut)[0]
    return f"{type(exc).__name__}: {text[:300]}{'...' if len(text) > 300 else ''}"


def _not_an_archive(model_file: Path) -> str | None:
    """Why ``model_file`` is not a ``.keras`` archive (a zip file), or None when it is one."""
    try:
        with open(model_file, "rb") as fh:
            head = fh.read(8)
        if zipfile.is_zipfile(model_file):
            return None
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not head:
        return "is empty (0 bytes)"
    if head.startswith(b"\x89HDF"):
        return "is an HDF5 file (a legacy .h5 model), not a .keras archive; load it in Keras and save it as .keras"
    return "is not a Keras archive (a .keras file is a zip archive written by model.save('name.keras'))"


def load(path: str | os.PathLike[str], *, head: Head | None = None) -> Predictor:
    """Load a trained model from a run directory or a ``.keras`` file.

    The model is loaded with Keras safe mode (``safe_mode=True``): a model
    file cannot run code (no ``Lambda`` deserialisation of arbitrary
    Python). Class names, input shape and range and the explanation target
    layer come from ``neuroxai.json`` beside the model. A run directory
    without one is refused: its classes and input range are unknown, and a
    guess (``class_0`` ..., the range 0..1) silently gives wrong results for a
    model trained on 0..255. A bare ``.keras`` file named on its own may lack
    it: then the input shape comes from the model, the range is (0, 1),
    classes are named ``class_0``, ``class_1`` ... and there is no calibration
    (logged at info level).

    Args:
        path: A run directory (with ``model.keras``) or a ``.keras`` file.
        head: What the model outputs (``"softmax"``, ``"logits"``, ``"sigmoid"``, ``"binary"``);
            ``None``: read from its last layer. A bare one-unit model gets two classes.

    Returns:
        A :class:`Predictor`.

    Raises:
        ModelError: Nothing to load at ``path``, a run directory without
            ``neuroxai.json``, or the file is not a Keras archive (or would
            need unsafe deserialisation: the layer is named), or the spec
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
    if (why := _not_an_archive(model_file)) is not None:
        raise ModelError(f"Could not load the Keras model {model_file}: it {why}.")
    for _attempt in range(3):  # a run committed while we read it is read again: never its model beside another's spec
        run.ready_for_reading()
        before = run.snapshot()
        try:
            model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
        except Exception as exc:  # Keras raises many types for a bad file; all mean "not loadable"
            raise ModelError(f"Could not load the Keras model {model_file}: {_load_problem(model_file, exc)}") from exc
        spec = run.read_spec()
        if not run.commit_pending() and run.snapshot() == before:
            break
    k = int(model.outputs[0].shape[-1])
    used = _model_head(model, head)
    if spec is None:
        shape = [int(d) for d in model.input_shape[1:]]
        names = [f"class_{i}" for i in range(head_classes(used, k))]
        assumed = f"classes {names[0]}..{names[-1]}, input range 0..1, no calibration"
        if p.is_dir():  # a run directory always has its spec: without it, a guess could be silently wrong
            raise ModelError(
                f"{p} holds {MODEL_FILE} but no neuroxai.json, so the model's class names, input range and calibration "
                f"are unknown (guessing {assumed} gives wrong results for a model trained on 0..255). Restore the run's "
                f"neuroxai.json; or, for a model from elsewhere, load the file itself ({model_file}: {assumed}) and give its "
                "input range and classes (explain --input-range; Explainer(model, class_names=..., input_range=...) or "
                "Predictor(model, class_names, input_shape, input_range) in Python)."
            )
        log.info("%s has no neuroxai.json beside it: %s (assumed)", model_file, assumed)
        return Predictor(model, class_names=names, input_shape=shape, path=p, head=used)
    check_spec_against_model(spec, model, spec_file=run.spec_file, model_file=model_file)
    return Predictor(
        model,
        class_names=spec.class_names,
        input_shape=spec.input_shape,
        input_range=spec.input_range,
        target_layer=spec.target_layer,
        spec=spec,
        path=p,
        head=used,
    )


def pretrained(name: str, *, head: Head | None = None) -> Predictor:
    """Load a pretrained model shipped with neuroxai (or an installed plugin) by name: no network, no training.

    The same :class:`Predictor` as :func:`load` on a run directory (it works with
    :class:`~neuroxai.Explainer`, calibration, prediction sets, volumes and the
    out-of-distribution score where the model has one). Every file is checked
    against its SHA-256 digest first, then loaded in Keras safe mode (no code runs
    from the file). :func:`neuroxai.list_pretrained` gives the names; the model
    card (:meth:`neuroxai.models.PretrainedModel.card`) says what it was trained
    on, how well it does and what it is not for.

    Args:
        name: A pretrained model's name (``neuroxai models`` lists them).
        head: As for :func:`load`.

    Returns:
        A :class:`Predictor` (its :attr:`~Predictor.path` is the installed run directory: read it, do not write to it).

    Raises:
        UnknownPretrainedError: No such name (the message lists the available ones).
        ModelError: A file is missing or fails its checksum.

    Example:
        >>> import neuroxai
        >>> model = neuroxai.pretrained("cnn-mri4-v1")  # doctest: +SKIP
        >>> model.predict_names(["scan.jpg"])  # doctest: +SKIP
        ['meningioma']
    """
    from neuroxai.models import pretrained_model

    return load(pretrained_model(name).verified_folder(), head=head)
