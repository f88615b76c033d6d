"""Explanation volumes: one class explained on every brain slice, written back on the scan's own grid.

The heatmap volume has the input's shape and affine (:func:`neuroxai.data.write_nifti`), so it overlays
on the scan in 3D Slicer, ITK-SNAP or FSLeyes. By default each slice's map (in [0, 1], as the method
gives it) is weighted by that slice's probability of the explained class, so slices where the model saw
the class stand out in 3-D and slices where it did not stay dark; skipped slices (no brain) are zero.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from neuroxai._records import Record
from neuroxai.errors import ExplainError
from neuroxai.volumes._predict import (
    DEFAULT_MAX_ASIDE,
    DEFAULT_MIN_KNOWN,
    DEFAULT_MIN_RUN,
    DEFAULT_RULE,
    DEFAULT_SLICE_THRESHOLD,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    NO_TUMOUR_CLASS,
    REFER,
    VolumePrediction,
    _slice_passes,
    model_slices,
    predict_volume,
)

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.data import Volume
    from neuroxai.explain import Explainer, Explanation, MapScaling
    from neuroxai.runs import Predictor

__all__ = ["HEATMAP_SUFFIX", "MONTAGE_SUFFIX", "VolumeExplanation", "VolumeOutputs", "Weighting", "explain_volume"]

logger = logging.getLogger(__name__)

#: How slice maps are combined into the heatmap volume: ``"probability"`` (each slice's map times its
#: probability of the explained class; the default) or ``"none"`` (the maps as the method gives them).
Weighting = Literal["probability", "none"]
#: File name endings :meth:`VolumeExplanation.save` writes after the volume's name.
HEATMAP_SUFFIX = "_heatmap.nii.gz"
MONTAGE_SUFFIX = "_montage.png"


@dataclass(frozen=True)
class VolumeOutputs(Record):
    """Files :meth:`VolumeExplanation.save` wrote.

    Attributes:
        heatmap: The NIfTI heatmap volume (the input's grid and affine).
        montage: The PNG montage of the slices that carried the decision (``None``: no slice was explained).
    """

    heatmap: str
    montage: str | None


#: Pixels of maps resized back to the slices' size at a time (16 MB as float32).
_RESIZE_PIXELS = 1 << 22


def _resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of maps ``[N, h, w]`` to ``size`` in one call (the way the slices were resized, reversed)."""
    if maps.shape[1:] == tuple(size) or len(maps) == 0:
        return maps.astype(np.float32, copy=False)
    import tensorflow as tf

    out = np.asarray(tf.image.resize(tf.constant(maps[..., None], tf.float32), size, method="bilinear"))[..., 0]
    resized: np.ndarray = np.clip(out, 0.0, 1.0).astype(np.float32)
    return resized


@dataclass(frozen=True, eq=False)
class VolumeExplanation:
    """One class explained over a whole volume (frozen: fields cannot be reassigned).

    Attributes:
        volume: The scan explained.
        prediction: Its :class:`VolumePrediction` (the per-volume answer and slice probabilities).
        target: The explained class (``None`` only when no slice held brain and none was asked for).
        heatmap: float32 ``[Z, H, W]`` in [0, 1], display orientation at the slices' own size: each
            explained slice's map (weighted as :attr:`weighting` says), zeros on skipped slices.
        explanation: The :class:`~neuroxai.explain.Explanation` of the classified slices, in the order of
            :attr:`VolumePrediction.slices` (model input size; its probabilities are the prediction's,
            temperature-scaled where the run is calibrated); ``None`` when none was classified.
        method: The explanation method's name.
        weighting: How slice maps were weighted (:data:`Weighting`).
    """

    volume: Volume = field(repr=False)
    prediction: VolumePrediction
    target: str | None
    heatmap: np.ndarray = field(repr=False)
    explanation: Explanation | None = field(repr=False)
    method: str
    weighting: Weighting = "probability"

    @property
    def name(self) -> str:
        """The volume's output stem."""
        return self.prediction.name

    def montage(
        self,
        slices: tuple[int, ...] | None = None,
        *,
        alpha: float = 0.4,
        cmap: str = "jet",
        scaling: MapScaling = "minmax",
    ) -> np.ndarray | None:
        """The slices that carried the decision, each as the scan beside the map over it, in one picture.

        Each row is :meth:`neuroxai.explain.Explanation.picture` of one slice at the slice's own
        resolution, headed with its slice index and its probability of the explained class.

        Args:
            slices: Slice indices (default :attr:`VolumePrediction.carried_by`); each must have been classified.
            alpha: Heatmap weight.
            cmap: Colormap.
            scaling: How each map is scaled for display.

        Returns:
            uint8 RGB ``[H, W, 3]``, or ``None`` when no slice was explained.

        Raises:
            ExplainError: A slice that was not classified.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        exp = self.explanation
        if exp is None or self.target is None:
            return None
        chosen = self.prediction.carried_by if slices is None else tuple(int(s) for s in slices)
        if not chosen and slices is None:  # e.g. referred for too few known slices: the most probable slices of the target
            t = exp.class_names.index(self.target)
            chosen = tuple(int(self.prediction.slices[r]) for r in np.argsort(-exp.probabilities[:, t], kind="stable")[:3])
        if not chosen:
            return None
        order = self.prediction.slices
        aside = set(self.prediction.set_aside)
        missing = [s for s in chosen if s not in order]
        if missing:
            raise ExplainError(
                f"Slice(s) {missing} of {self.prediction.source} were not classified (no brain); "
                f"choose among {order[0]}..{order[-1]}."
            )
        shown = self.volume.slices_uint8()
        rows = [order.index(s) for s in chosen]
        pictures = [exp.picture(r, original=shown[s], alpha=alpha, cmap=cmap, scaling=scaling) for r, s in zip(rows, chosen)]
        t = exp.class_names.index(self.target)
        ph, pw = max(p.shape[0] for p in pictures), max(p.shape[1] for p in pictures)
        # the headline wrapped to the picture's width (at most about 8 px per character at 10 pt), never cut off
        headline = "\n".join(textwrap.fill(part, width=max(24, int(pw / 8))) for part in self._headline().split("\n"))
        head, label, dpi = 16 + 16 * (headline.count("\n") + 1), 24, 100
        fh = head + len(pictures) * (label + ph)
        fig = Figure(figsize=(pw / dpi, fh / dpi), dpi=dpi)
        canvas: Any = FigureCanvasAgg(fig)
        fig.text(0.5, 1 - 8 / fh, headline, ha="center", va="top", fontsize=10)
        for n, (picture, s, r) in enumerate(zip(pictures, chosen, rows)):
            top = head + n * (label + ph)
            ax = fig.add_axes((0, 1 - (top + label + picture.shape[0]) / fh, picture.shape[1] / pw, picture.shape[0] / fh))
            ax.imshow(picture, interpolation="nearest", aspect="auto")
            ax.axis("off")
            p = float(exp.probabilities[r, t])
            fig.text(
                0.5,
                1 - (top + 4) / fh,
                f"slice {s} (of 0-{self.prediction.n_slices - 1}): p({self.target}) = {p:.3f}"
                + (" [set aside: unlike the training data]" if s in aside else ""),
                ha="center",
                va="top",
                fontsize=9,
            )
        canvas.draw()
        return np.array(np.asarray(canvas.buffer_rgba())[..., :3], dtype=np.uint8)

    def _headline(self) -> str:
        pred = self.prediction
        answer = pred.answer if pred.answer is not None else "no answer"
        why = f" ({pred.reason})" if pred.reason else ""
        return f"{pred.name}: volume answer {answer}{why}\n{self.method} of {self.target} (2-D slice classifier, not a diagnosis)"

    def save(
        self,
        directory: str | os.PathLike[str],
        *,
        name: str | None = None,
        overwrite: bool = False,
        alpha: float = 0.4,
        cmap: str = "jet",
        scaling: MapScaling = "minmax",
    ) -> VolumeOutputs:
        """Write ``<name>_heatmap.nii.gz`` (the input's grid and affine) and ``<name>_montage.png``, atomically.

        Args:
            directory: Output folder (created if needed).
            name: File stem (default: the volume's name).
            overwrite: Replace an existing heatmap file (the NIfTI writer never writes over an input).
            alpha: Heatmap weight in the montage.
            cmap: Colormap of the montage.
            scaling: Display scaling of the montage's maps.

        Returns:
            The written files (:class:`VolumeOutputs`); no montage when no slice was explained.
        """
        from PIL import Image, PngImagePlugin

        from neuroxai._io import write_bytes
        from neuroxai.data import write_nifti

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        stem = name or self.name
        heat = out / f"{stem}{HEATMAP_SUFFIX}"
        write_nifti(heat, self.heatmap, self.volume, overwrite=overwrite)
        picture = self.montage(alpha=alpha, cmap=cmap, scaling=scaling)
        montage = None
        if picture is not None:
            info = PngImagePlugin.PngInfo()
            info.add_text("Title", self._headline().replace("\n", "; "))
            info.add_text("Software", "neuroxai")
            buf = io.BytesIO()
            Image.fromarray(picture).save(buf, format="PNG", pnginfo=info)
            montage = str(write_bytes(out / f"{stem}{MONTAGE_SUFFIX}", buf.getvalue()))
        return VolumeOutputs(heatmap=str(heat), montage=montage)


def _default_target(prediction: VolumePrediction) -> str | None:
    """The class a volume is explained for by default: its answer, or for a referred volume the class a reader should check."""
    answer = prediction.answer
    if answer != REFER:
        return answer
    rule = prediction.rule
    if rule.support or rule.evidence:
        return max(rule.evidence, key=lambda c: (rule.support.get(c, 0), rule.evidence[c]))
    candidates = [k for k, c in enumerate(prediction.class_names) if c != rule.no_tumour] or list(
        range(len(prediction.class_names))
    )
    mean = np.asarray(prediction.probabilities, np.float64).mean(axis=0)
    return prediction.class_names[max(candidates, key=lambda k: mean[k])]


def _predictor_of(explainer: Explainer) -> Predictor:
    """The explainer's predictor, or one built from its model (class names, input size and range, head)."""
    from neuroxai.runs import Predictor

    if isinstance(explainer.predictor, Predictor):
        return explainer.predictor
    if len(explainer.input_shape) != 3:
        raise ExplainError(
            f"Model {explainer.model.name!r} takes volumes {explainer.input_shape}; explain_volume explains a 2-D slice "
            "classifier slice by slice. Use neuroxai.volumes.explain_volume_3d for a volume model."
        )
    h, w, c = explainer.input_shape
    if h is None or w is None or c is None:
        raise ExplainError(f"Model {explainer.model.name!r} has no fixed input size; volumes need (H, W, C) with H and W set.")
    return Predictor(explainer.model, explainer.class_names, (h, w, c), explainer.input_range or (0.0, 1.0), head=explainer.head)


def explain_volume(
    explainer: Explainer,
    volume: Volume,
    *,
    target: str | int | None = None,
    prediction: VolumePrediction | None = None,
    weighting: Weighting = "probability",
    calibrated: bool = True,
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
) -> VolumeExplanation:
    """Explain one class on every brain slice of a volume, in batches.

    One class is explained for the whole volume: ``target`` if given, else the per-volume answer
    (:func:`predict_volume`; for a referred volume the tumour class with the most support, the one a
    reader should check), so the heatmap volume shows where the slices hold evidence for that one
    class, and slices can be compared. Maps are resized back to the slices' size; skipped slices (no
    brain) are zero.

    Args:
        explainer: An :class:`~neuroxai.Explainer` (built from a run, so it knows the classes, input size
            and range; a bare Keras model needs ``class_names`` and ``input_range`` on the Explainer).
        volume: A volume from :func:`neuroxai.data.read_volume`.
        target: The class to explain (name or index); default: the volume's answer.
        prediction: The volume's :class:`VolumePrediction` when already computed (else computed here with
            ``calibrated``, the rule settings, ``level`` and ``min_fraction``).
        weighting: ``"probability"`` (default): each slice's map times its probability of the target;
            ``"none"``: maps as the method gives them.
        calibrated: See :func:`predict_volume`.
        rule: See :func:`predict_volume`.
        min_run: See :func:`predict_volume`.
        slice_threshold: See :func:`predict_volume`.
        min_known: See :func:`predict_volume`.
        max_aside: See :func:`predict_volume`.
        top_k: See :func:`predict_volume`.
        threshold: See :func:`predict_volume`.
        no_tumour: See :func:`predict_volume`.
        level: See :func:`predict_volume`.
        min_fraction: See :func:`predict_volume`.

    Returns:
        A :class:`VolumeExplanation`; :meth:`VolumeExplanation.save` writes the NIfTI heatmap and the montage.

    Raises:
        ExplainError: An unknown target or weighting, or a ``prediction`` of another volume.

    Example:
        >>> explainer = Explainer(neuroxai.load("run"), "gradcam")  # doctest: +SKIP
        >>> result = explain_volume(explainer, read_volume("scan.nii.gz"))  # doctest: +SKIP
        >>> result.save("out")  # doctest: +SKIP
        VolumeOutputs(heatmap='out/scan_heatmap.nii.gz', montage='out/scan_montage.png')
    """
    if weighting not in get_args(Weighting):
        raise ExplainError(f"weighting must be one of {', '.join(get_args(Weighting))}; got {weighting!r}.")
    predictor = _predictor_of(explainer)
    if prediction is None:
        prediction = predict_volume(
            predictor,
            volume,
            batch_size=explainer.batch_size,
            calibrated=calibrated,
            rule=rule,
            min_run=min_run,
            slice_threshold=slice_threshold,
            min_known=min_known,
            max_aside=max_aside,
            top_k=top_k,
            threshold=threshold,
            no_tumour=no_tumour,
            level=level,
            min_fraction=min_fraction,
        )
    elif prediction.source != str(volume.source) or prediction.n_slices != volume.n_slices or prediction.name != volume.name:
        raise ExplainError(
            f"The prediction given is of {prediction.source} ({prediction.n_slices} slices), not of {volume.source} "
            f"({volume.n_slices} slices); pass the volume's own prediction or none."
        )
    names = tuple(explainer.class_names)
    if target is None:
        chosen = _default_target(prediction)
    elif isinstance(target, (int, np.integer)) and not isinstance(target, bool) and 0 <= int(target) < len(names):
        chosen = names[int(target)]
    elif isinstance(target, str) and target in names:
        chosen = target
    else:
        raise ExplainError(f"Unknown target class {target!r}; expected one of {list(names)} or an index.")
    shown = volume.slices_uint8()
    heatmap = np.zeros(shown.shape, np.float32)
    index = np.asarray(prediction.slices, dtype=np.int64)
    if chosen is None or len(index) == 0:
        return VolumeExplanation(volume, prediction, chosen, heatmap, None, explainer.method.name, weighting)
    input_range = explainer.input_range or predictor.input_range  # the explainer's when it states one
    proba = np.asarray(prediction.probabilities, np.float32)
    ours = proba.shape == (len(index), len(names))  # one set of numbers: the CSV's (temperature-scaled where calibrated)
    size = (int(shown.shape[1]), int(shown.shape[2]))
    parts: list[Explanation] = []
    start = 0
    for part in _slice_passes(index, explainer.batch_size):  # a few hundred slices at a time: bounded temporaries
        x = model_slices(shown[part], predictor.input_shape, input_range, batch_size=explainer.batch_size)
        exp = explainer.explain(x, targets=chosen)
        del x
        if ours:
            p = proba[start : start + len(part)]
            exp = dataclasses.replace(exp, probabilities=p, predicted=p.argmax(axis=1).astype(np.int64))
        weights = np.clip(exp.probabilities[:, names.index(chosen)], 0.0, 1.0).astype(np.float32)
        step = max(1, _RESIZE_PIXELS // max(1, size[0] * size[1]))
        for i in range(0, len(part), step):  # maps back at the slices' size a few at a time: no pass-sized copies
            maps = _resize_maps(exp.maps[i : i + step], size)
            heatmap[part[i : i + step]] = maps * weights[i : i + step, None, None] if weighting == "probability" else maps
        parts.append(exp)
        start += len(part)
    return VolumeExplanation(volume, prediction, chosen, heatmap, _joined(parts), explainer.method.name, weighting)


def _joined(parts: list[Explanation]) -> Explanation:
    """One :class:`~neuroxai.explain.Explanation` of the slices explained in ``parts`` (in order)."""
    if len(parts) == 1:
        return parts[0]
    return dataclasses.replace(
        parts[0],
        maps=np.concatenate([e.maps for e in parts]),
        probabilities=np.concatenate([e.probabilities for e in parts]),
        predicted=np.concatenate([e.predicted for e in parts]),
        targets=np.concatenate([e.targets for e in parts]),
        images=np.concatenate([e.images for e in parts]),
    )
