"""Knowing what the model does not know: an out-of-distribution score per image, fitted with the run.

A classifier answers every input with a class, confidently or not: a photograph, a chest X-ray, or a healthy brain
slice at a level (temporal poles, cerebellum) that its training data hardly shows can come back as "meningioma 0.99".
The probabilities cannot say that the input is unlike anything the model was trained on; the model's own features
can.

**Score.** Class-conditional Mahalanobis distance in the model's penultimate features (Lee et al., "A simple unified
framework for detecting out-of-distribution samples and adversarial attacks", NeurIPS 2018): the features are the
input of the layer named ``logits`` (for the built-in models, the globally pooled last feature map); each class's
training features get their mean, all classes share one covariance (Ledoit-Wolf shrinkage, so it is well
conditioned with few images per dimension), and an image's score is its squared distance to the nearest class
mean, divided by the feature dimension: in-distribution images score about 1, images unlike the training data
score more.

**Threshold.** Chosen on the validation split, after training: the score exceeded by at most
:data:`DEFAULT_FLAG_RATE` (2%) of the validation images. Above it an image is *outside what the model knows*: its
prediction is still reported, but the per-volume answer does not count it (:mod:`neuroxai.volumes`) and the
command line marks it.

The statistics live in the run's ``neuroxai.json`` (:attr:`RunSpec.ood <neuroxai.runs.RunSpec>`), as base64 float32
arrays: plain numbers, nothing that can run code. Only numpy and scikit-learn compute them; the features come from
one compiled forward pass that also gives the class probabilities.
"""

from __future__ import annotations

import base64
import functools
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai._cache import PerModel
from neuroxai._keras_backend import compile_model_function, current, to_numpy
from neuroxai._records import Record
from neuroxai.errors import DataError, ModelError

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from neuroxai.data import Dataset

__all__ = [
    "DEFAULT_FLAG_RATE",
    "FEATURE_LAYER",
    "OODDetector",
    "feature_model",
    "features_and_outputs",
    "fit_ood",
    "fit_ood_detector",
]

log = logging.getLogger(__name__)

#: Share of in-distribution validation images allowed above the threshold.
DEFAULT_FLAG_RATE = 0.02
#: The layer whose input are the features (the built-in models end in ``logits`` -> ``probabilities``).
FEATURE_LAYER = "logits"

_FEATURE_FNS: PerModel[Any] = PerModel()


def _encode(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def _decode(text: str, count: int) -> np.ndarray:
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    a = np.frombuffer(raw, dtype="<f4")
    if a.size != count:
        raise ModelError(
            f"Stored out-of-distribution statistics hold {a.size} numbers, expected {count}: the run's spec is damaged."
        )
    return a.astype(np.float64)


@functools.lru_cache(maxsize=8)
def _arrays(means: str, precision: str, classes: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Decoded ``(means [C, D], whitening [D, D])`` (cached: decoding costs more than scoring a batch)."""
    mu = _decode(means, classes * dim).reshape(classes, dim)
    upper = _decode(precision, dim * (dim + 1) // 2)
    p = np.zeros((dim, dim))
    p[np.triu_indices(dim)] = upper
    p = p + np.triu(p, 1).T
    # P = L L^T (Cholesky): ||(f - mu) L||^2 = (f - mu)^T P (f - mu); eigenvalues clipped in case of rounding
    w, v = np.linalg.eigh(p)
    whiten = v * np.sqrt(np.clip(w, 0.0, None))
    return mu @ whiten, whiten


@dataclass(frozen=True)
class OODDetector(Record):
    """A run's out-of-distribution score and threshold (see :mod:`neuroxai.runs._ood`).

    Attributes:
        method: ``"mahalanobis"``.
        layer: The layer whose input are the features.
        dim: Feature dimension.
        classes: Number of classes (class means stored).
        means: Class means of the training features, base64 float32 ``[classes, dim]``.
        precision: Upper triangle of the shared precision matrix, base64 float32.
        threshold: Scores above it are out of distribution.
        flag_rate: The share of validation images the threshold was chosen to leave above it.
        flagged: The share of validation images actually above it.
        split: Where the threshold was chosen (``"val"``).
        n_fit: Training images the means and covariance were fitted on.
        n_threshold: Images of ``split``.
        shrinkage: The Ledoit-Wolf shrinkage of the covariance.
    """

    method: str
    layer: str
    dim: int
    classes: int
    means: str
    precision: str
    threshold: float
    flag_rate: float
    flagged: float
    split: str
    n_fit: int
    n_threshold: int
    shrinkage: float = 0.0

    def __repr__(self) -> str:  # the arrays would fill a screen
        return (
            f"OODDetector(method={self.method!r}, layer={self.layer!r}, dim={self.dim}, threshold={self.threshold:.3f}, "
            f"flagged={self.flagged:.3f} of {self.n_threshold} {self.split} images)"
        )

    def scores(self, features: Any) -> np.ndarray:
        """Out-of-distribution scores of penultimate features.

        Args:
            features: ``[N, dim]`` features (the input of :attr:`layer`).

        Returns:
            float32 ``[N]``: squared Mahalanobis distance to the nearest class mean over ``dim`` (about 1 in distribution).

        Raises:
            ModelError: The features do not have :attr:`dim` columns.
        """
        f = np.asarray(features, np.float64)
        if f.ndim != 2 or f.shape[1] != self.dim:
            raise ModelError(f"Expected features of shape [N, {self.dim}] for the out-of-distribution score, got {f.shape}.")
        mu_w, whiten = _arrays(self.means, self.precision, self.classes, self.dim)
        z = f @ whiten
        d2 = (z * z).sum(axis=1)[:, None] - 2.0 * z @ mu_w.T + (mu_w * mu_w).sum(axis=1)[None, :]
        return np.asarray(np.clip(d2.min(axis=1), 0.0, None) / self.dim, np.float32)

    def flags(self, scores: Any) -> np.ndarray:
        """``True`` where a score is above :attr:`threshold` (outside what the model knows)."""
        return np.asarray(scores, np.float64) > self.threshold


def fit_ood_detector(
    train_features: Any,
    train_labels: Any,
    val_features: Any,
    *,
    classes: int,
    layer: str = FEATURE_LAYER,
    flag_rate: float = DEFAULT_FLAG_RATE,
    split: str = "val",
) -> OODDetector:
    """Fit the class means and shared covariance on training features, and the threshold on validation features.

    Args:
        train_features: ``[N, D]`` features of the training images.
        train_labels: ``[N]`` their classes (``0..classes-1``).
        val_features: ``[M, D]`` features of held-out in-distribution images (the threshold's).
        classes: Number of classes.
        layer: The features' layer (recorded).
        flag_rate: Share of validation images to leave above the threshold, in (0, 0.5).
        split: Name of the held-out split (recorded).

    Returns:
        An :class:`OODDetector`.

    Raises:
        DataError: Too few images (fewer than two per class present, or no validation image), a bad
            ``flag_rate``, or features that are not finite.
    """
    from sklearn.covariance import ledoit_wolf

    if not 0.0 < float(flag_rate) < 0.5:
        raise DataError(f"Expected flag_rate in (0, 0.5), got {flag_rate!r}.")
    f = np.asarray(train_features, np.float64)
    y = np.asarray(train_labels, np.int64)
    v = np.asarray(val_features, np.float64)
    if f.ndim != 2 or len(f) != len(y) or v.ndim != 2 or v.shape[1:] != f.shape[1:]:
        raise DataError(
            f"Expected features [N, D] with N labels and validation features [M, D]; got {f.shape}, {y.shape}, {v.shape}."
        )
    if len(v) == 0:
        raise DataError("No validation image to choose the out-of-distribution threshold on.")
    if not (np.isfinite(f).all() and np.isfinite(v).all()):
        raise DataError("The model's features are not finite (NaN or infinity); the out-of-distribution score cannot be fitted.")
    present = np.unique(y)
    counts = np.bincount(y, minlength=classes)
    if len(present) < 2 or counts[present].min() < 2:
        raise DataError(f"Need at least two training images in each of two or more classes; got counts {counts.tolist()}.")
    dim = f.shape[1]
    means = np.zeros((classes, dim))
    for k in present:
        means[k] = f[y == k].mean(axis=0)
    centred = f - means[y]
    cov, shrinkage = ledoit_wolf(centred, assume_centered=True)
    precision = np.linalg.pinv(cov, hermitian=True)
    precision = (precision + precision.T) / 2.0
    # classes without training images get no mean: their distance must never win
    far = np.full(dim, 1e6)
    for k in set(range(classes)) - set(present.tolist()):
        means[k] = far
    draft = OODDetector(
        method="mahalanobis",
        layer=layer,
        dim=dim,
        classes=classes,
        means=_encode(means),
        precision=_encode(precision[np.triu_indices(dim)]),
        threshold=float("inf"),
        flag_rate=float(flag_rate),
        flagged=0.0,
        split=split,
        n_fit=len(f),
        n_threshold=len(v),
        shrinkage=float(shrinkage),
    )
    val_scores = draft.scores(v)
    threshold = float(np.quantile(val_scores.astype(np.float64), 1.0 - float(flag_rate), method="higher"))
    from dataclasses import replace

    return replace(draft, threshold=threshold, flagged=float(np.mean(val_scores > threshold)))


# ---------------------------------------------------------------------------------------------------- features
def feature_model(model: keras.Model, layer: str = FEATURE_LAYER) -> keras.Model:
    """A model sharing ``model``'s weights that outputs ``(features, outputs)``: the input of ``layer`` and the output.

    Raises:
        ModelError: ``model`` has no layer ``layer`` reachable in its graph (a subclassed model, or another head).
    """
    import keras

    try:
        features = model.get_layer(layer).input
        return keras.Model(model.inputs, [features, model.outputs[0]], name=f"{model.name}_features")
    except (ValueError, AttributeError, IndexError, TypeError) as exc:
        raise ModelError(
            f"Model {model.name!r} has no layer {layer!r} whose input the out-of-distribution score can use "
            f"({type(exc).__name__}: {exc}). The built-in models end in a 'logits' Dense layer; name yours so, "
            "or go without the score."
        ) from exc


def _compiled(model: keras.Model, layer: str) -> tuple[keras.Model, Any]:
    """``(feature model, its compiled forward)``: kept per model, traced once for any batch size on TensorFlow."""
    sub = feature_model(model, layer)
    ref = weakref.ref(sub)

    def forward(t: Any) -> Any:
        live = ref()
        if live is None:  # pragma: no cover - the cache entry holds the sub-model
            raise ModelError("The model of this compiled forward pass no longer exists.")
        return live(t, training=False)

    if current() != "tensorflow":
        return sub, compile_model_function(sub, forward)
    import tensorflow as tf

    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)
    return sub, tf.function(forward, input_signature=[spec])


def features_and_outputs(
    model: keras.Model, x: np.ndarray, batch_size: int, *, layer: str = FEATURE_LAYER
) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features and raw outputs of ``x`` in one compiled forward pass per batch.

    Args:
        model: A model with a layer ``layer`` (see :func:`feature_model`).
        x: float32 inputs ``[N, H, W, C]``.
        batch_size: Images per compiled call.
        layer: The features' layer.

    Returns:
        ``(features float32 [N, D], outputs float32 [N, K])``.

    Raises:
        ModelError: See :func:`feature_model`.
    """
    sub, fn = _FEATURE_FNS.get(model, lambda m: _compiled(m, layer))
    step = max(1, int(batch_size))
    feats = [np.zeros((0, int(np.prod(sub.outputs[0].shape[1:]))), np.float32)]
    outs = [np.zeros((0, int(sub.outputs[1].shape[-1])), np.float32)]
    for i in range(0, len(x), step):
        chunk = np.asarray(x[i : i + step], np.float32)
        f, o = fn(chunk)
        feats.append(np.asarray(to_numpy(f), np.float32).reshape(len(chunk), -1))
        outs.append(np.asarray(to_numpy(o), np.float32))
    return np.concatenate(feats), np.concatenate(outs)


def _split_features(
    model: keras.Model,
    dataset: Dataset,
    split: str,
    input_shape: Sequence[int],
    input_range: Sequence[float],
    batch_size: int,
    layer: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of a whole split, streamed batch by batch (only the features are kept)."""
    pipe = dataset.pipeline(
        split,
        image_size=(int(input_shape[0]), int(input_shape[1])),
        channels=int(input_shape[2]),
        input_range=(float(input_range[0]), float(input_range[1])),
        batch_size=batch_size,
        augment=False,
        shuffle=False,
        cache=False,
    )
    feats: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for batch in pipe:
        f, _ = features_and_outputs(model, batch[0].numpy(), batch_size, layer=layer)
        feats.append(f)
        labels.append(np.asarray(batch[1].numpy(), np.int64))
    if not feats:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(feats), np.concatenate(labels)


def fit_ood(
    model: keras.Model,
    dataset: Dataset,
    *,
    input_shape: Sequence[int],
    input_range: Sequence[float],
    batch_size: int = 32,
    layer: str = FEATURE_LAYER,
    flag_rate: float = DEFAULT_FLAG_RATE,
) -> OODDetector | None:
    """Fit a run's :class:`OODDetector`: means and covariance on the training split, threshold on the validation split.

    Args:
        model: The trained model (with a layer ``layer``).
        dataset: The data it was trained on (same split seed).
        input_shape: ``(height, width, channels)`` of the model input.
        input_range: Its pixel range.
        batch_size: Images per forward pass.
        layer: The features' layer.
        flag_rate: Share of validation images to leave above the threshold.

    Returns:
        The detector, or ``None`` (with the reason logged) when the model has no such layer or a split is empty.
    """
    try:
        feature_model(model, layer)
    except ModelError as exc:
        log.info("No out-of-distribution score for %s: %s", model.name, exc)
        return None
    if len(dataset.labels("train")) == 0 or len(dataset.labels("val")) == 0:
        log.info("No out-of-distribution score for %s: its train or val split is empty", model.name)
        return None
    f, y = _split_features(model, dataset, "train", input_shape, input_range, batch_size, layer)
    v, _ = _split_features(model, dataset, "val", input_shape, input_range, batch_size, layer)
    try:
        detector = fit_ood_detector(f, y, v, classes=int(model.outputs[0].shape[-1]), layer=layer, flag_rate=flag_rate)
    except DataError as exc:
        log.info("No out-of-distribution score for %s: %s", model.name, exc)
        return None
    log.info(
        "Out-of-distribution score of %s fitted on %d training images; threshold %.3f leaves %.1f%% of %d validation images above it",
        model.name,
        detector.n_fit,
        detector.threshold,
        100 * detector.flagged,
        detector.n_threshold,
    )
    return detector
