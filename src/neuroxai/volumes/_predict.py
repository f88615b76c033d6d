"""One answer per volume: every brain slice classified in batches, then one documented rule.

The rule (:func:`volume_answer`) summarises a 2-D slice classifier over a stack of slices; it is not a
3-D model and not a diagnosis. With the run's no-tumour class present (``notumor`` by default):

1. each tumour class's *evidence* is the mean probability over its ``top_k`` most confident brain slices
   (fewer when the volume has fewer brain slices);
2. the answer is the tumour class with the highest evidence when that evidence reaches ``threshold``,
   else the no-tumour class;
3. the slices that carried the answer are the ``top_k`` slices of the strongest tumour class (for a
   no-tumour answer: the slices that came closest to a tumour answer, the ones a reader should check).

Without a no-tumour class every class is a candidate and the answer is the class with the highest
evidence (no threshold). A volume without a single brain slice gets no answer (``None``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from neuroxai._records import Record
from neuroxai.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.data import Volume
    from neuroxai.runs import Predictor

__all__ = [
    "DEFAULT_THRESHOLD",
    "DEFAULT_TOP_K",
    "NO_TUMOUR_CLASS",
    "VolumeAnswer",
    "VolumePrediction",
    "model_slices",
    "predict_volume",
    "slice_ranges",
    "volume_answer",
]

logger = logging.getLogger(__name__)

#: The class that means "no tumour" in neuroxai's runs (the Kaggle folder name).
NO_TUMOUR_CLASS = "notumor"
#: Brain slices whose probabilities are averaged into a class's evidence.
DEFAULT_TOP_K = 3
#: Evidence a tumour class needs to be the volume's answer.
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class VolumeAnswer(Record):
    """The per-volume rule's result (see :func:`volume_answer`).

    Attributes:
        answer: The volume's class, or ``None`` when no slice was classified.
        evidence: Mean probability over each candidate class's ``top_k`` slices (tumour classes; every
            class when the run has no no-tumour class).
        carried_by: Slice indices (of the volume) that carried the answer, most confident first.
        no_tumour: The no-tumour class the rule used, or ``None`` (rule without one).
        top_k: Slices averaged per class (as asked; fewer were used when fewer slices were classified).
        threshold: Evidence a tumour class needed (``None`` without a no-tumour class).
    """

    answer: str | None
    evidence: Mapping[str, float]
    carried_by: tuple[int, ...]
    no_tumour: str | None
    top_k: int
    threshold: float | None


def _check_rule(class_names: Sequence[str], top_k: int, threshold: float, no_tumour: str | None) -> str | None:
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise DataError(f"top_k must be a whole number >= 1; got {top_k!r}.")
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise DataError(f"threshold must be a probability between 0 and 1; got {threshold!r}.")
    if no_tumour is None or no_tumour in class_names:
        return no_tumour
    if no_tumour != NO_TUMOUR_CLASS:  # a name given on purpose must exist
        raise DataError(
            f"No-tumour class {no_tumour!r} is not one of the run's classes {list(class_names)}; "
            "name one of them, or None for the rule without a no-tumour class."
        )
    logger.info("The run has no %r class; the per-volume rule runs without a no-tumour class.", NO_TUMOUR_CLASS)
    return None


def volume_answer(
    probabilities: np.ndarray,
    slices: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    *,
    top_k: int = DEFAULT_TOP_K,
    threshold: float = DEFAULT_THRESHOLD,
    no_tumour: str | None = NO_TUMOUR_CLASS,
) -> VolumeAnswer:
    """The per-volume rule (module docstring) applied to slice probabilities.

    Args:
        probabilities: float ``[N, K]``: one row per classified slice.
        slices: The volume's slice index of each row.
        class_names: ``K`` class names.
        top_k: Slices averaged into each class's evidence.
        threshold: Evidence a tumour class needs (with a no-tumour class).
        no_tumour: The no-tumour class; the default ``notumor`` is optional (the rule runs without one
            when the run lacks it), any other name must be a class; ``None``: rule without one.

    Returns:
        A :class:`VolumeAnswer`.

    Raises:
        DataError: Bad ``top_k``, ``threshold`` or ``no_tumour``, or shapes that do not match.

    Example:
        >>> p = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
        >>> volume_answer(p, [4, 5, 6], ["glioma", "notumor"], top_k=2).answer
        'glioma'
    """
    names = tuple(str(c) for c in class_names)
    no_tumour = _check_rule(names, top_k, threshold, no_tumour)
    p = np.asarray(probabilities, dtype=np.float64)
    index = np.asarray(slices, dtype=np.int64)
    if p.ndim != 2 or p.shape[1] != len(names) or len(index) != len(p):
        raise DataError(
            f"Expected probabilities [N, {len(names)}] with one slice index per row; got shape {p.shape} and {len(index)} indices."
        )
    threshold_used = float(threshold) if no_tumour is not None else None
    if len(p) == 0:
        return VolumeAnswer(None, {}, (), no_tumour, int(top_k), threshold_used)
    k = min(int(top_k), len(p))
    order = np.argsort(-p, axis=0, kind="stable")[:k]  # [k, K]: each class's most confident rows
    evidence_all = np.take_along_axis(p, order, axis=0).mean(axis=0)
    candidates = [i for i, name in enumerate(names) if name != no_tumour]
    best = max(candidates, key=lambda i: (evidence_all[i], -i))  # ties: the first class
    carried = tuple(int(index[r]) for r in order[:, best])
    evidence = {names[i]: float(evidence_all[i]) for i in candidates}
    if no_tumour is not None and evidence_all[best] < threshold:
        answer = no_tumour
    else:
        answer = names[best]
    return VolumeAnswer(answer, evidence, carried, no_tumour, int(top_k), threshold_used)


def slice_ranges(indices: Sequence[int]) -> str:
    """Slice indices as compact ranges, e.g. ``[0, 1, 2, 7, 9, 10]`` -> ``"0-2|7|9-10"`` ("" for none)."""
    parts: list[str] = []
    values = sorted(int(i) for i in indices)
    start = prev = None
    for v in [*values, None]:
        if start is not None and (v is None or prev is None or v != prev + 1):
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if v is not None and start is None:
            start = v
        prev = v
    return "|".join(parts)


@dataclass(frozen=True, eq=False)
class VolumePrediction(Record):
    """Slice-wise predictions of one volume and its per-volume answer.

    Attributes:
        source: The volume's file or DICOM folder (:attr:`neuroxai.data.Volume.source`).
        name: The volume's output stem (:attr:`neuroxai.data.Volume.name`).
        series: The DICOM SeriesInstanceUID (``None`` for NIfTI).
        class_names: The run's classes, in output order.
        n_slices: Axial slices in the volume.
        slices: Indices of the slices classified (they passed the foreground test), ascending.
        probabilities: float32 ``[len(slices), K]``: class probabilities per classified slice
            (temperature-scaled where the run is calibrated and ``calibrated`` is true).
        rule: The per-volume answer (:class:`VolumeAnswer`).
        calibrated: Whether the run's temperature was applied.

    Example:
        >>> pred = predict_volume(predictor, volume)  # doctest: +SKIP
        >>> pred.answer, pred.evidence, pred.carried_by  # doctest: +SKIP
        ('glioma', {'glioma': 0.93, 'meningioma': 0.04, 'pituitary': 0.02}, (71, 70, 74))
    """

    source: str
    name: str
    series: str | None
    class_names: tuple[str, ...]
    n_slices: int
    slices: tuple[int, ...]
    probabilities: np.ndarray = field(repr=False)
    rule: VolumeAnswer
    calibrated: bool = True

    @property
    def answer(self) -> str | None:
        """The volume's class (``None``: no slice held brain)."""
        return self.rule.answer

    @property
    def evidence(self) -> Mapping[str, float]:
        """Evidence per candidate class (see :class:`VolumeAnswer`)."""
        return self.rule.evidence

    @property
    def carried_by(self) -> tuple[int, ...]:
        """The slice indices that carried the answer, most confident first."""
        return self.rule.carried_by

    @property
    def skipped(self) -> tuple[int, ...]:
        """Slices not classified: they failed the foreground test (no brain)."""
        kept = set(self.slices)
        return tuple(i for i in range(self.n_slices) if i not in kept)

    @property
    def predicted(self) -> tuple[str, ...]:
        """The predicted class of each classified slice."""
        return tuple(self.class_names[int(i)] for i in self.probabilities.argmax(axis=1)) if len(self.slices) else ()

    def slice_probability(self, index: int, class_name: str) -> float:
        """Probability of ``class_name`` on slice ``index`` of the volume.

        Raises:
            DataError: The slice was not classified, or the class is unknown.
        """
        if index not in self.slices or class_name not in self.class_names:
            raise DataError(
                f"Slice {index} of {self.source} was not classified or class {class_name!r} is unknown; "
                f"classified slices: {slice_ranges(self.slices) or 'none'}, classes: {list(self.class_names)}."
            )
        return float(self.probabilities[self.slices.index(index), self.class_names.index(class_name)])

    def summary(self) -> str:
        """One line for people: the answer, its evidence and slices, and how many slices were classified."""
        counted = f"{len(self.slices)} of {self.n_slices} slices classified"
        if self.answer is None:
            return (
                f"{self.name}: no answer: none of the {self.n_slices} slices passed the foreground test "
                "(blank volume, or a window that hides the brain: try another --window)"
            )
        slices = ", ".join(str(i) for i in self.carried_by)
        best = max(self.evidence, key=lambda c: self.evidence[c]) if self.evidence else None
        if self.answer == self.rule.no_tumour and best is not None:
            return (
                f"{self.name}: {self.answer} (no tumour class reached {self.rule.threshold:.2f}; strongest {best} "
                f"{self.evidence[best]:.2f} on slices {slices}; {counted})"
            )
        return f"{self.name}: {self.answer} (evidence {self.evidence[self.answer]:.2f} on slices {slices}; {counted})"


#: Slices converted to model input and classified (or explained) at a time: bounds the model input held in memory
#: (about 150 MB for 256 slices of 224 x 224 x 3), whatever the number of slices.
_SLICES_PER_PASS = 256


def _slice_passes(index: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """``index`` in parts of about ``_SLICES_PER_PASS`` slices (a whole number of batches each)."""
    step = max(1, int(batch_size)) * max(1, _SLICES_PER_PASS // max(1, int(batch_size)))
    return [index[i : i + step] for i in range(0, len(index), step)]


def model_slices(
    slices: np.ndarray, input_shape: Sequence[int], input_range: Sequence[float], *, batch_size: int = 64
) -> np.ndarray:
    """uint8 display slices ``[N, H, W]`` as a model-ready batch: channels, resize and range as for images.

    Gives exactly :func:`neuroxai.data.to_model_input` (the conversions of the training pipeline), in chunks
    of ``batch_size`` slices so big volumes stay within bounded memory. For a 3-channel model the gray slices
    are resized once and then repeated into the channels (the resize treats channels independently, so the
    result is the same at a third of the cost).

    Returns:
        float32 ``[N, h, w, c]`` for ``input_shape = (h, w, c)``.
    """
    from neuroxai.data import to_model_input

    h, w, c = (int(d) for d in input_shape)
    rng = (float(input_range[0]), float(input_range[1]))
    if len(slices) == 0:
        return np.zeros((0, h, w, c), np.float32)
    step = max(1, int(batch_size))
    gray = c == 3 and slices.ndim == 3  # gray slices for an RGB model: resize one channel, then repeat it
    parts = [to_model_input(slices[i : i + step, :, :, None], (h, w), 1 if gray else c, rng) for i in range(0, len(slices), step)]
    x = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return np.repeat(x, 3, axis=-1) if gray else x


def predict_volume(
    predictor: Predictor,
    volume: Volume,
    *,
    batch_size: int = 32,
    calibrated: bool = True,
    tta: int = 1,
    top_k: int = DEFAULT_TOP_K,
    threshold: float = DEFAULT_THRESHOLD,
    no_tumour: str | None = NO_TUMOUR_CLASS,
    level: int = 25,
    min_fraction: float = 0.05,
) -> VolumePrediction:
    """Classify every brain slice of a volume in batches and give the volume one answer.

    Slices are the volume's axial slices windowed to 8 bit (:meth:`~neuroxai.data.Volume.slices_uint8`),
    converted like image files (channels, resize, input range). Slices that fail the foreground test
    (:func:`~neuroxai.data.brain_slices` with ``level`` and ``min_fraction``) are not classified and are
    listed in :attr:`VolumePrediction.skipped`. The answer follows the rule of :func:`volume_answer`.

    Args:
        predictor: A trained run (:func:`neuroxai.load`).
        volume: A volume from :func:`neuroxai.data.read_volume`.
        batch_size: Slices per compiled call.
        calibrated: Apply the run's temperature (see :meth:`~neuroxai.runs.Predictor.predict`).
        tta: Passes of test-time augmentation (1: a plain prediction).
        top_k: Slices averaged into each class's evidence.
        threshold: Evidence a tumour class needs to be the answer.
        no_tumour: The no-tumour class (see :func:`volume_answer`).
        level: Foreground test: pixel level (0..255) counted as brain.
        min_fraction: Foreground test: fraction of a slice's pixels above ``level``.

    Returns:
        A :class:`VolumePrediction`.

    Raises:
        DataError: Bad rule settings (see :func:`volume_answer`).

    Example:
        >>> from neuroxai.data import read_volume
        >>> pred = predict_volume(neuroxai.load("run"), read_volume("scan.nii.gz"))  # doctest: +SKIP
        >>> print(pred.summary())  # doctest: +SKIP
        scan: glioma (evidence 0.93 on slices 71, 70, 74; 120 of 155 slices classified)
    """
    from neuroxai.data import brain_slices

    names = tuple(predictor.class_names)
    _check_rule(names, top_k, threshold, no_tumour)  # before any work
    shown = volume.slices_uint8()
    brain = np.asarray(brain_slices(shown, level=level, min_fraction=min_fraction), dtype=bool)
    index = np.flatnonzero(brain)
    proba = np.zeros((0, len(names)), np.float32)
    for part in _slice_passes(index, batch_size):  # the model input of a few hundred slices at a time, never the volume's
        x = model_slices(shown[part], predictor.input_shape, predictor.input_range, batch_size=batch_size)
        proba = np.concatenate([proba, predictor.predict_batch(x, batch_size, calibrated=calibrated, tta=tta)]).astype(np.float32)
    rule = volume_answer(proba, index, names, top_k=top_k, threshold=threshold, no_tumour=no_tumour)
    logger.info("%s: %d of %d slices classified; answer %s", volume.source, len(index), volume.n_slices, rule.answer)
    return VolumePrediction(
        source=str(volume.source),
        name=str(volume.name),
        series=volume.series,
        class_names=names,
        n_slices=int(volume.n_slices),
        slices=tuple(int(i) for i in index),
        probabilities=proba,
        rule=rule,
        calibrated=bool(calibrated and predictor.calibration is not None),
    )
