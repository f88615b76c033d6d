"""One answer per volume: every brain slice classified in batches, then one documented rule.

The rule (:func:`volume_answer`) summarises a 2-D slice classifier over a stack of slices; it is not a
3-D model and not a diagnosis. Most scans are healthy, and a slice classifier is confident about slices it
has never seen the like of, so a tumour answer needs *consistent* evidence from slices the model knows.

Rule ``"consistent"`` (the default), with the run's no-tumour class present (``notumor``):

1. **Set aside** the brain slices outside what the model knows: those whose out-of-distribution score is
   above the run's threshold (:class:`~neuroxai.runs.OODDetector`; a run without one sets none aside).
   The others are the *known* slices.
2. More than ``max_aside`` (half) of the brain slices set aside, or fewer than ``min_known`` known slices:
   **refer** (the model cannot judge this scan: a scan most of whose slices look like nothing in the
   training data comes from another sequence, protocol or population, and its remaining slices are
   shifted too, only less visibly).
3. A tumour class is *supported* by a run of adjacent known slices (consecutive slice indices) whose
   probability of that class is at least ``slice_threshold``; its support is the longest such run. The
   class with the longest run of at least ``min_run`` slices is the answer (ties: the higher mean
   probability over the run), carried by that run's slices.
4. Otherwise, when at least half of the known slices are predicted as the no-tumour class: **no tumour**.
5. Otherwise: **refer** (too little consistent evidence either way).

Every answer comes with a one-line reason. Without a no-tumour class, step 4 is skipped and the rule
answers the class with the longest run (refer when none reaches ``min_run``).

Rule ``"top-k"`` (the rule of earlier releases, kept for comparison): a tumour class's evidence is its
mean probability over its ``top_k`` most confident known slices; the strongest class is the answer when
its evidence reaches ``threshold``, else the no-tumour class.

A volume without a single brain slice gets no answer (``None``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from neuroxai._records import Record
from neuroxai.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.data import Volume
    from neuroxai.runs import Predictor

__all__ = [
    "DEFAULT_MAX_ASIDE",
    "DEFAULT_MIN_KNOWN",
    "DEFAULT_MIN_RUN",
    "DEFAULT_RULE",
    "DEFAULT_SLICE_THRESHOLD",
    "DEFAULT_THRESHOLD",
    "DEFAULT_TOP_K",
    "NO_TUMOUR_CLASS",
    "REFER",
    "RULES",
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
#: The answer when the model cannot judge a volume: a reader should look at it.
REFER = "refer"
#: The per-volume rules.
RULES = ("consistent", "top-k")
#: The default rule.
DEFAULT_RULE = "consistent"
#: Rule "consistent": adjacent known slices a tumour class needs.
DEFAULT_MIN_RUN = 3
#: Rule "consistent": probability each of those slices needs.
DEFAULT_SLICE_THRESHOLD = 0.9
#: Rule "consistent": known (in-distribution) brain slices a volume needs for any answer but refer.
DEFAULT_MIN_KNOWN = 3
#: Rule "consistent": above this share of brain slices set aside, the whole scan is referred.
DEFAULT_MAX_ASIDE = 0.5
#: Rule "top-k": brain slices whose probabilities are averaged into a class's evidence.
DEFAULT_TOP_K = 3
#: Rule "top-k": evidence a tumour class needs to be the volume's answer.
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class VolumeAnswer(Record):
    """The per-volume rule's result (see :func:`volume_answer`).

    Attributes:
        answer: A class, :data:`REFER`, or ``None`` when no slice was classified.
        evidence: Per candidate class: the mean probability over its longest supporting run (rule
            ``"consistent"``; 0 where no slice reaches the slice threshold) or over its ``top_k`` most
            confident known slices (rule ``"top-k"``).
        carried_by: Slice indices (of the volume) that carried the answer, most confident first.
        no_tumour: The no-tumour class the rule used, or ``None`` (rule without one).
        top_k: Rule "top-k": slices averaged per class.
        threshold: Rule "top-k": evidence a tumour class needed (``None`` without a no-tumour class).
        rule: ``"consistent"`` or ``"top-k"``.
        reason: One line: why this answer.
        support: Rule "consistent": per candidate class, its longest run of adjacent known slices at or above
            the slice threshold.
        set_aside: Slices outside what the model knows (out-of-distribution), not counted.
        min_run: Rule "consistent": adjacent slices a tumour class needed.
        slice_threshold: Rule "consistent": probability each needed.
        min_known: Rule "consistent": known slices needed for an answer other than refer.
        max_aside: Rule "consistent": the largest share of brain slices set aside before the scan is referred.
    """

    answer: str | None
    evidence: Mapping[str, float]
    carried_by: tuple[int, ...]
    no_tumour: str | None
    top_k: int
    threshold: float | None
    rule: str = "top-k"
    reason: str = ""
    support: Mapping[str, int] = field(default_factory=dict)
    set_aside: tuple[int, ...] = ()
    min_run: int = DEFAULT_MIN_RUN
    slice_threshold: float = DEFAULT_SLICE_THRESHOLD
    min_known: int = DEFAULT_MIN_KNOWN
    max_aside: float = DEFAULT_MAX_ASIDE


def _whole(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise DataError(f"{name} must be a whole number >= {low}; got {value!r}.")
    return int(value)


def _probability(name: str, value: object) -> float:
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise DataError(f"{name} must be a probability between 0 and 1; got {value!r}.")
    return float(value)


def _check_rule(
    class_names: Sequence[str],
    top_k: int,
    threshold: float,
    no_tumour: str | None,
    rule: str = DEFAULT_RULE,
    min_run: int = DEFAULT_MIN_RUN,
    slice_threshold: float = DEFAULT_SLICE_THRESHOLD,
    min_known: int = DEFAULT_MIN_KNOWN,
    max_aside: float = DEFAULT_MAX_ASIDE,
) -> str | None:
    if rule not in RULES:
        raise DataError(f"Unknown per-volume rule {rule!r}; expected one of {', '.join(RULES)}.")
    _whole("top_k", top_k, 1)
    _probability("threshold", threshold)
    _whole("min_run", min_run, 1)
    _probability("slice_threshold", slice_threshold)
    _whole("min_known", min_known, 1)
    _probability("max_aside", max_aside)
    if no_tumour is None or no_tumour in class_names:
        return no_tumour
    if no_tumour != NO_TUMOUR_CLASS:  # a name given on purpose must exist
        raise DataError(
            f"No-tumour class {no_tumour!r} is not one of the run's classes {list(class_names)}; "
            "name one of them, or None for the rule without a no-tumour class."
        )
    logger.info("The run has no %r class; the per-volume rule runs without a no-tumour class.", NO_TUMOUR_CLASS)
    return None


def _longest_runs(above: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of ``above`` ``[N, K]`` (rows in slice order): the longest run of consecutive slice indices all True.

    Returns:
        ``(length [K], start row [K], end row [K])`` (end exclusive; length 0 where a column has no True row).
    """
    n, k = above.shape
    length = np.zeros(k, np.int64)
    start = np.zeros(k, np.int64)
    end = np.zeros(k, np.int64)
    current = np.zeros(k, np.int64)
    for row in range(n):  # one pass over the slices, vectorised over the classes
        adjacent = row > 0 and index[row] == index[row - 1] + 1
        current = np.where(above[row], (current + 1) if adjacent else 1, 0)
        better = current > length
        length = np.where(better, current, length)
        end = np.where(better, row + 1, end)
        start = np.where(better, row + 1 - current, start)
    return length, start, end


def volume_answer(
    probabilities: np.ndarray,
    slices: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    *,
    rule: str = DEFAULT_RULE,
    ood: Sequence[bool] | np.ndarray | None = None,
    min_run: int = DEFAULT_MIN_RUN,
    slice_threshold: float = DEFAULT_SLICE_THRESHOLD,
    min_known: int = DEFAULT_MIN_KNOWN,
    max_aside: float = DEFAULT_MAX_ASIDE,
    top_k: int = DEFAULT_TOP_K,
    threshold: float = DEFAULT_THRESHOLD,
    no_tumour: str | None = NO_TUMOUR_CLASS,
) -> VolumeAnswer:
    """The per-volume rule (module docstring) applied to slice probabilities.

    Args:
        probabilities: float ``[N, K]``: one row per classified slice.
        slices: The volume's slice index of each row.
        class_names: ``K`` class names.
        rule: ``"consistent"`` (default) or ``"top-k"``.
        ood: ``[N]`` booleans: slices outside what the model knows (set aside). ``None``: none.
        min_run: Rule "consistent": adjacent known slices a tumour class needs.
        slice_threshold: Rule "consistent": probability each of them needs.
        min_known: Rule "consistent": known slices needed for an answer other than refer.
        max_aside: Rule "consistent": the largest share of brain slices set aside before the scan is referred.
        top_k: Rule "top-k": slices averaged into each class's evidence.
        threshold: Rule "top-k": evidence a tumour class needs (with a no-tumour class).
        no_tumour: The no-tumour class; the default ``notumor`` is optional (the rule runs without one
            when the run lacks it), any other name must be a class; ``None``: rule without one.

    Returns:
        A :class:`VolumeAnswer`.

    Raises:
        DataError: Bad settings, or shapes that do not match.

    Example:
        >>> p = np.array([[0.95, 0.05], [0.97, 0.03], [0.92, 0.08], [0.1, 0.9]])
        >>> volume_answer(p, [4, 5, 6, 7], ["glioma", "notumor"]).answer
        'glioma'
        >>> volume_answer(p, [4, 5, 6, 7], ["glioma", "notumor"], ood=[False, True, False, False]).answer
        'refer'
    """
    names = tuple(str(c) for c in class_names)
    no_tumour = _check_rule(names, top_k, threshold, no_tumour, rule, min_run, slice_threshold, min_known, max_aside)
    p = np.asarray(probabilities, dtype=np.float64)
    index = np.asarray(slices, dtype=np.int64)
    flags = np.zeros(len(index), bool) if ood is None else np.asarray(ood, dtype=bool)
    if p.ndim != 2 or p.shape[1] != len(names) or len(index) != len(p) or flags.shape != index.shape:
        raise DataError(
            f"Expected probabilities [N, {len(names)}] with one slice index (and out-of-distribution flag) per row; got "
            f"shape {p.shape}, {len(index)} indices and {flags.shape[0]} flags."
        )
    order = np.argsort(index, kind="stable")
    p, index, flags = p[order], index[order], flags[order]
    set_aside = tuple(int(i) for i in index[flags])
    blank = VolumeAnswer(  # the settings; each return fills in the answer
        answer=None,
        evidence={},
        carried_by=(),
        no_tumour=no_tumour,
        top_k=int(top_k),
        threshold=float(threshold) if no_tumour is not None and rule == "top-k" else None,
        rule=rule,
        set_aside=set_aside,
        min_run=int(min_run),
        slice_threshold=float(slice_threshold),
        min_known=int(min_known),
        max_aside=float(max_aside),
    )
    if len(p) == 0:
        return replace(blank, reason="no slice holds brain")
    known = ~flags
    kp, kindex = p[known], index[known]
    candidates = [i for i, name in enumerate(names) if name != no_tumour]
    aside = f"; {len(set_aside)} of {len(index)} brain slices set aside as unlike the training data" if set_aside else ""
    if rule == "top-k":
        return _top_k(kp, kindex, names, candidates, aside, blank)
    if len(set_aside) > max_aside * len(index):
        reason = (
            f"{len(set_aside)} of {len(index)} brain slices are unlike the training data (more than {max_aside:.0%}): the "
            "scan differs from what the model was trained on (another sequence, protocol or population?)"
        )
        return replace(blank, answer=REFER, reason=reason)
    if len(kp) < min_known:
        reason = (
            f"only {len(kp)} of {len(index)} brain slices are like the training data (needs {min_known}): "
            "the model cannot judge this scan"
        )
        return replace(blank, answer=REFER, reason=reason)
    length, start, end = _longest_runs(kp >= slice_threshold, kindex)
    evidence = {names[c]: float(kp[start[c] : end[c], c].mean()) if length[c] else 0.0 for c in candidates}
    support = {names[c]: int(length[c]) for c in candidates}
    best = max(candidates, key=lambda c: (length[c], evidence[names[c]], -c))
    if length[best] >= min_run:
        rows = np.arange(start[best], end[best])
        rows = rows[np.argsort(-kp[rows, best], kind="stable")]
        carried = tuple(int(kindex[r]) for r in rows)
        reason = (
            f"{names[best]} on {int(length[best])} adjacent slices ({slice_ranges(carried)}) at p >= {slice_threshold:g}, "
            f"mean {evidence[names[best]]:.2f}{aside}"
        )
        return replace(blank, answer=names[best], evidence=evidence, carried_by=carried, reason=reason, support=support)
    nearest = tuple(int(kindex[r]) for r in np.argsort(-kp[:, best], kind="stable")[: min(3, len(kp))])
    strongest = f"longest tumour run {int(length[best])} slice(s) ({names[best]}), {min_run} needed"
    if no_tumour is not None:
        share = float(np.mean(kp.argmax(axis=1) == names.index(no_tumour)))
        if share >= 0.5:
            reason = f"{no_tumour} on {share:.0%} of {len(kp)} known slices; {strongest}{aside}"
            return replace(blank, answer=no_tumour, evidence=evidence, carried_by=nearest, reason=reason, support=support)
        reason = f"too little consistent evidence: {no_tumour} on only {share:.0%} of {len(kp)} known slices; {strongest}{aside}"
    else:
        reason = f"too little consistent evidence: {strongest}{aside}"
    return replace(blank, answer=REFER, evidence=evidence, carried_by=nearest, reason=reason, support=support)


def _top_k(
    p: np.ndarray, index: np.ndarray, names: tuple[str, ...], candidates: list[int], aside: str, blank: VolumeAnswer
) -> VolumeAnswer:
    """Rule "top-k" over the known slices (``blank``: the settings)."""
    if len(p) == 0:
        return replace(blank, answer=REFER, reason=f"no brain slice is like the training data{aside}")
    k = min(blank.top_k, len(p))
    order = np.argsort(-p, axis=0, kind="stable")[:k]  # [k, K]: each class's most confident rows
    evidence_all = np.take_along_axis(p, order, axis=0).mean(axis=0)
    best = max(candidates, key=lambda i: (evidence_all[i], -i))  # ties: the first class
    carried = tuple(int(index[r]) for r in order[:, best])
    evidence = {names[i]: float(evidence_all[i]) for i in candidates}
    threshold = blank.threshold
    if blank.no_tumour is not None and threshold is not None and evidence_all[best] < threshold:
        reason = f"no tumour class reached {threshold:.2f}; strongest {names[best]} {evidence_all[best]:.2f}{aside}"
        return replace(blank, answer=blank.no_tumour, evidence=evidence, carried_by=carried, reason=reason)
    reason = f"{names[best]} evidence {evidence_all[best]:.2f} over its {k} most confident slices{aside}"
    return replace(blank, answer=names[best], evidence=evidence, carried_by=carried, reason=reason)


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
        ood_scores: float32 ``[len(slices)]``: each classified slice's out-of-distribution score
            (``None`` when the run has no :class:`~neuroxai.runs.OODDetector`).
        ood_threshold: The run's threshold on those scores (``None`` without one).

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
    ood_scores: np.ndarray | None = field(default=None, repr=False)
    ood_threshold: float | None = None

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
    def reason(self) -> str:
        """Why the rule gave this answer (one line)."""
        return self.rule.reason

    @property
    def set_aside(self) -> tuple[int, ...]:
        """Brain slices outside what the model knows (out-of-distribution): predicted, but not counted."""
        return self.rule.set_aside

    @property
    def ood(self) -> np.ndarray:
        """``[len(slices)]`` booleans: which classified slices were set aside."""
        aside = set(self.set_aside)
        return np.asarray([i in aside for i in self.slices], dtype=bool)

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
        """One line for people: the answer, its evidence, the slices it rests on, and what was set aside or not classified."""
        if self.answer is None:
            return (
                f"{self.name}: no answer: none of the {self.n_slices} slices passed the foreground test "
                "(blank volume, or a window that hides the brain: try another --window)"
            )
        counted = f"{len(self.slices)} of {self.n_slices} slices classified"
        if self.set_aside:
            counted += f", {len(self.set_aside)} set aside as unlike the training data"
        return f"{self.name}: {self.answer} ({self.reason}; {counted})"


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
    rule: str = DEFAULT_RULE,
    min_run: int = DEFAULT_MIN_RUN,
    slice_threshold: float = DEFAULT_SLICE_THRESHOLD,
    min_known: int = DEFAULT_MIN_KNOWN,
    max_aside: float = DEFAULT_MAX_ASIDE,
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
    listed in :attr:`VolumePrediction.skipped`. Where the run has an out-of-distribution score, the same
    forward pass scores every slice, and slices above the run's threshold are set aside. The answer
    follows :func:`volume_answer`.

    Args:
        predictor: A trained run (:func:`neuroxai.load` or :func:`neuroxai.pretrained`).
        volume: A volume from :func:`neuroxai.data.read_volume`.
        batch_size: Slices per compiled call.
        calibrated: Apply the run's temperature (see :meth:`~neuroxai.runs.Predictor.predict`).
        tta: Passes of test-time augmentation (1: a plain prediction).
        rule: ``"consistent"`` (default) or ``"top-k"`` (see :func:`volume_answer`).
        min_run: Rule "consistent": adjacent known slices a tumour class needs.
        slice_threshold: Rule "consistent": probability each of them needs.
        min_known: Rule "consistent": known slices needed for an answer other than refer.
        max_aside: Rule "consistent": the largest share of brain slices set aside before the scan is referred.
        top_k: Rule "top-k": slices averaged into each class's evidence.
        threshold: Rule "top-k": evidence a tumour class needs to be the answer.
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
        scan: glioma (glioma on 5 adjacent slices (70-74) at p >= 0.9; 120 of 155 slices classified)
    """
    from neuroxai.data import brain_slices

    names = tuple(predictor.class_names)
    _check_rule(names, top_k, threshold, no_tumour, rule, min_run, slice_threshold, min_known, max_aside)  # before any work
    shown = volume.slices_uint8()
    brain = np.asarray(brain_slices(shown, level=level, min_fraction=min_fraction), dtype=bool)
    index = np.flatnonzero(brain)
    probas = [np.zeros((0, len(names)), np.float32)]
    parts_scores = [np.zeros(0, np.float32)]
    for part in _slice_passes(index, batch_size):  # the model input of a few hundred slices at a time, never the volume's
        x = model_slices(shown[part], predictor.input_shape, predictor.input_range, batch_size=batch_size)
        part_proba, part_scores = predictor.predict_with_ood(x, batch_size, calibrated=calibrated, tta=tta)
        probas.append(np.asarray(part_proba, np.float32))
        if part_scores is not None:
            parts_scores.append(np.asarray(part_scores, np.float32))
    proba = np.concatenate(probas)
    scores = np.concatenate(parts_scores) if predictor.ood is not None else None
    flags = predictor.ood.flags(scores) if predictor.ood is not None and scores is not None else None
    answer = volume_answer(
        proba,
        index,
        names,
        rule=rule,
        ood=flags,
        min_run=min_run,
        slice_threshold=slice_threshold,
        min_known=min_known,
        max_aside=max_aside,
        top_k=top_k,
        threshold=threshold,
        no_tumour=no_tumour,
    )
    logger.info("%s: %d of %d slices classified; answer %s", volume.source, len(index), volume.n_slices, answer.answer)
    return VolumePrediction(
        source=str(volume.source),
        name=str(volume.name),
        series=volume.series,
        class_names=names,
        n_slices=int(volume.n_slices),
        slices=tuple(int(i) for i in index),
        probabilities=proba,
        rule=answer,
        calibrated=bool(calibrated and predictor.calibration is not None),
        ood_scores=None if scores is None else np.asarray(scores, np.float32),
        ood_threshold=None if predictor.ood is None else float(predictor.ood.threshold),
    )
