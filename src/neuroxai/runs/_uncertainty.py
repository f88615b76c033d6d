"""Model-facing calibration: fit a run's calibration on its validation split; test-time augmentation and MC-dropout.

The math lives in :mod:`neuroxai.runs._calibration` (numpy only); this
module runs models. Everything here works on class probabilities as
:func:`neuroxai.models.output_probabilities` gives them (any head but
independent sigmoids, whose scores are not one distribution over classes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai._cache import PerModel
from neuroxai.errors import DataError
from neuroxai.runs._calibration import (
    TEMPERATURE_BOUNDS,
    Calibration,
    all_classified_right,
    calibrate,
    log_probabilities,
    softmax,
)

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from neuroxai.data import Dataset

__all__ = [
    "MIN_CALIBRATION_SAMPLES",
    "TTA_SHIFT",
    "apply_temperature",
    "fit_calibration",
    "has_dropout",
    "tta_passes",
    "tta_probabilities",
]

log = logging.getLogger(__name__)

#: Fewest validation images a temperature is fitted on without a warning; ``neuroxai calibrate`` refuses fewer.
#: One image can always be made "perfectly calibrated" by an extreme temperature (1 image gives the bound 20.0),
#: so a fit on a handful of images says little; 10 is the least for which the fit is more than a guess.
MIN_CALIBRATION_SAMPLES = 10

#: Shift of the test-time augmentation passes, as a fraction of the image's shorter side.
TTA_SHIFT = 0.03
#: (left-right flip, row shift sign, column shift sign) of each test-time augmentation pass, in order;
#: passes beyond these repeat them (only MC-dropout then tells them apart).
_PASSES: tuple[tuple[bool, int, int], ...] = (
    (False, 0, 0),
    (True, 0, 0),
    (False, 0, 1),
    (True, 0, -1),
    (False, 1, 0),
    (True, -1, 0),
    (False, 0, -1),
    (True, 0, 1),
    (False, -1, 0),
    (True, 1, 0),
)

_MC_MODELS: PerModel[tuple[Any, list[Any]] | None] = PerModel()


def apply_temperature(proba: Any, temperature: float | None) -> np.ndarray:
    """Class probabilities after temperature scaling (``float32 [N, K]``; unchanged for ``None`` or 1).

    ``softmax(log(p) / T)``: the same as dividing the logits that gave ``p`` by ``T``.
    """
    p = np.asarray(proba, dtype=np.float32)
    if temperature is None or float(temperature) == 1.0 or p.size == 0:
        return p
    return softmax(log_probabilities(p), float(temperature)).astype(np.float32)


def fit_calibration(
    model: keras.Model,
    dataset: Dataset,
    *,
    input_shape: Sequence[int],
    input_range: Sequence[float],
    batch_size: int = 32,
    split: str = "val",
    head: str = "softmax",
) -> Calibration | None:
    """Fit temperature scaling and the conformal scores of ``model`` on a split of ``dataset`` (the validation split).

    Args:
        model: The trained Keras model.
        dataset: The data it was trained on (the same split seed, so the same validation images).
        input_shape: ``(height, width, channels)`` of the model input.
        input_range: Pixel range of the model input.
        batch_size: Prediction batch size.
        split: The held-out split to fit on.
        head: The model's head (see :mod:`neuroxai.models`); independent sigmoids cannot be calibrated this way.

    Returns:
        A :class:`~neuroxai.runs.Calibration`, or ``None`` when the split is empty or the head is ``"sigmoid"``
        (the reason is logged). A fit on fewer than :data:`MIN_CALIBRATION_SAMPLES` images, or one whose
        temperature ends on a bound of the search (0.05 or 20), is returned with a warning
        that gives the count (``neuroxai calibrate`` refuses fewer images).
    """
    from neuroxai.models._heads import output_probabilities
    from neuroxai.runs._predictor import predict_array, read_split_for_model

    if head == "sigmoid":
        log.info("Not calibrating %s: independent sigmoid outputs are not one distribution over classes", model.name)
        return None
    if len(dataset.labels(split)) == 0:
        log.info("Not calibrating %s: the %r split of %s is empty", model.name, split, dataset.source)
        return None
    read = read_split_for_model(dataset, split, input_shape, input_range)  # a file gone bad is left out, not fatal
    x, y = read.x, read.labels
    if len(y) == 0:
        log.info("Not calibrating %s: no image of the %r split of %s could be read", model.name, split, dataset.source)
        return None
    proba = output_probabilities(predict_array(model, x, batch_size), head)  # type: ignore[arg-type]  # a Head string
    logits = log_probabilities(proba)
    calibration = calibrate(y, logits, split=split)
    if calibration.n < MIN_CALIBRATION_SAMPLES:
        log.warning(
            "Calibrated %s on only %d %s image(s), fewer than %d: its temperature %.3f is little more than a guess; "
            "calibrate on more images (`neuroxai calibrate RUN --data DIR --val-fraction ...`)",
            model.name,
            calibration.n,
            split,
            MIN_CALIBRATION_SAMPLES,
            calibration.temperature,
        )
    elif all_classified_right(y, logits):
        log.info(
            "Every one of the %d %s images is classified right, so temperature scaling has nothing to fit (the NLL "
            "falls without end as the temperature goes to 0): %s keeps temperature 1",
            calibration.n,
            split,
            model.name,
        )
    elif min(abs(calibration.temperature - b) for b in TEMPERATURE_BOUNDS) < 1e-3 * calibration.temperature:
        log.warning(
            "Calibrating %s on %d %s images ended on the temperature bound %.3f (of %s): the fit did not converge",
            model.name,
            calibration.n,
            split,
            calibration.temperature,
            TEMPERATURE_BOUNDS,
        )
    log.info(
        "Calibrated %s on %d %s images: temperature %.3f, NLL %.4f -> %.4f, ECE %.4f -> %.4f",
        model.name,
        calibration.n,
        split,
        calibration.temperature,
        calibration.nll_before,
        calibration.nll_after,
        calibration.ece_before,
        calibration.ece_after,
    )
    return calibration


# --------------------------------------------------------------------------------------------- TTA and MC-dropout
def tta_passes(n: int) -> list[tuple[bool, int, int]]:
    """The ``(flip, row shift sign, column shift sign)`` of ``n`` test-time augmentation passes (the first is identity)."""
    return [_PASSES[i % len(_PASSES)] for i in range(max(1, int(n)))]


def _augment(x: np.ndarray, flip: bool, dy: int, dx: int) -> np.ndarray:
    """``x`` flipped left-right and shifted by ``(dy, dx)`` pixels, the uncovered border repeating the edge."""
    out = x[:, :, ::-1] if flip else x
    if dy or dx:
        h, w = x.shape[1], x.shape[2]
        py, px = abs(dy), abs(dx)
        padded = np.pad(out, ((0, 0), (py, py), (px, px), (0, 0)), mode="edge")
        out = padded[:, py - dy : py - dy + h, px - dx : px - dx + w]
    return np.ascontiguousarray(out)


def has_dropout(model: keras.Model) -> bool:
    """Whether the model's own (top-level) layers include a Dropout layer that MC-dropout can switch on."""
    import keras

    return any(isinstance(layer, keras.layers.Dropout) and float(layer.rate) > 0 for layer in getattr(model, "layers", ()))


def _mc_model(model: keras.Model) -> tuple[Any, list[Any]] | None:
    """A twin of ``model`` sharing its weights whose top-level Dropout layers stay on at inference (cached)."""
    return _MC_MODELS.get(model, _build_mc_model)


def _build_mc_model(model: keras.Model) -> tuple[Any, list[Any]] | None:
    """The twin of :func:`_mc_model` with its dropout layers and their seed states; ``None`` where there is none."""
    import keras

    if not has_dropout(model):
        return None

    class _AlwaysDropout(keras.layers.Dropout):  # type: ignore[misc]  # keras is untyped
        def call(self, inputs: Any, training: Any = None) -> Any:
            return super().call(inputs, training=True)

    dropouts: list[Any] = []

    def clone(layer: Any) -> Any:
        if isinstance(layer, keras.layers.Dropout) and float(layer.rate) > 0:
            twin = _AlwaysDropout.from_config(dict(layer.get_config(), seed=1000 + len(dropouts)))
            dropouts.append(twin)
            return twin
        return layer  # shared: same weights

    try:
        twin = keras.models.clone_model(model, clone_function=clone)
    except (ValueError, TypeError, NotImplementedError) as exc:  # a subclassed model cannot be cloned: no MC-dropout
        log.info("MC-dropout is off for %s: the model cannot be cloned (%s: %s)", model.name, type(exc).__name__, exc)
        return None
    states = [np.asarray(d.seed_generator.state.numpy()) for d in dropouts]
    return twin, list(zip(dropouts, states))


def tta_probabilities(
    model: keras.Model,
    x: np.ndarray,
    n: int,
    *,
    head: str = "softmax",
    temperature: float | None = None,
    batch_size: int = 32,
    mc_dropout: bool = True,
    augment: bool = True,
) -> np.ndarray:
    """Class probabilities averaged over ``n`` passes of test-time augmentation and MC-dropout.

    Pass ``i`` flips and shifts the batch as :func:`tta_passes` says (the
    first pass is the image itself; shifts are :data:`TTA_SHIFT` of the
    shorter side, at least one pixel) and, when the model has Dropout layers
    and ``mc_dropout`` is on, keeps dropout on (Gal & Ghahramani 2016;
    Batch normalization stays in inference mode). Each pass's probabilities
    are temperature-scaled before they are averaged. Dropout masks are drawn
    from fixed seeds, so the same input gives the same result.

    Args:
        model: The Keras model.
        x: Model-ready inputs ``[N, H, W, C]``.
        n: Number of passes (1: one plain pass, with dropout on if ``mc_dropout``).
        head: The model's head.
        temperature: Temperature applied to each pass (``None``: none).
        batch_size: Images per compiled call.
        mc_dropout: Switch dropout on where the model has it.
        augment: Flip and shift (off: MC-dropout alone).

    Returns:
        float32 ``[N, K]``.

    Raises:
        DataError: ``n`` is not a positive integer, or the head is ``"sigmoid"``.
        BackendError: The Keras backend is none of TensorFlow, JAX and PyTorch.
    """
    from neuroxai._keras_backend import EXPLAIN_BACKENDS, require
    from neuroxai.models._heads import output_probabilities
    from neuroxai.runs._predictor import _JAX_RUNS, predict_array

    require("Test-time augmentation (tta > 1)", EXPLAIN_BACKENDS, hint=_JAX_RUNS)

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"Expected the number of test-time augmentation passes to be an integer >= 1, got {n!r}.")
    if head == "sigmoid":
        raise DataError("Test-time augmentation averages class distributions; a model with independent sigmoids has none.")
    x = np.asarray(x, dtype=np.float32)
    mc = _mc_model(model) if mc_dropout else None
    net = model
    if mc is not None:
        net = mc[0]
        for layer, state in mc[1]:  # the same masks every call
            layer.seed_generator.state.assign(state)
    d = max(1, round(TTA_SHIFT * min(x.shape[1], x.shape[2])))
    total = np.zeros((len(x), 0), np.float64)
    for flip, sy, sx in tta_passes(n) if augment else [(False, 0, 0)] * int(n):
        raw = predict_array(net, _augment(x, flip, sy * d, sx * d), batch_size)
        p = apply_temperature(output_probabilities(raw, head), temperature)  # type: ignore[arg-type]  # a Head string
        total = p.astype(np.float64) if total.shape[1] == 0 else total + p
    return (total / int(n)).astype(np.float32)
