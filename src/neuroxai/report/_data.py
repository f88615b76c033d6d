"""What a run's report shows, gathered into one typed record: :class:`ReportData` and :func:`collect_report`.

Everything comes from the run directory (``neuroxai.json``, ``metrics.json``, ``history.csv``,
``audit.json``, ``xai_metrics.json``); the gallery of explained scans (and, for a run that predates
recorded calibration, the calibration curves) also needs the run's data, given as a
:class:`~neuroxai.Dataset` or re-read from the path the run recorded. A part whose data the run does
not have is left out with the reason, and the report says "not measured".
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai._records import Record
from neuroxai.data import AuditReport
from neuroxai.errors import DataError, ModelError, NeuroxaiError
from neuroxai.evaluation import XAIReport
from neuroxai.runs import CalibrationReport, EvaluationReport, RunDirectory, RunSpec

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.data import Dataset
    from neuroxai.runs import Predictor

__all__ = ["SECTIONS", "GalleryItem", "ReportData", "collect_report"]

logger = logging.getLogger(__name__)

#: The report's sections, in page order: ``(id, heading)``.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("model", "Model card"),
    ("data", "Data and audit"),
    ("accuracy", "Accuracy"),
    ("per-class", "Per-class results"),
    ("confusion", "Confusion matrix"),
    ("training", "Training curves"),
    ("calibration", "Calibration"),
    ("risk-coverage", "Risk-coverage and prediction sets"),
    ("explanations", "Explanation metrics"),
    ("gallery", "Explained test images"),
)

#: Files of a run directory the report reads besides the spec, the metrics and the history.
AUDIT_FILE = "audit.json"
XAI_FILE = "xai_metrics.json"


@dataclass(frozen=True)
class GalleryItem(Record):
    """One explained test image of the gallery.

    Attributes:
        picture: The picture (:meth:`neuroxai.explain.Explanation.picture`), encoded as ``mime``.
        mime: ``"image/jpeg"`` or ``"image/png"``.
        true_class: The image's class.
        predicted_class: The model's prediction.
        probability: The predicted class's probability.
        correct: Whether the prediction is right.
        outlined: Whether a tumour mask is drawn as an outline.
        source: The file shown (or ``"test image #k"`` for in-memory data).
        scan_size: ``(height, width)`` of the scan as shown.
    """

    picture: bytes
    mime: str
    true_class: str
    predicted_class: str
    probability: float
    correct: bool
    outlined: bool
    source: str
    scan_size: tuple[int, int]


@dataclass(frozen=True)
class ReportData(Record):
    """Everything a run's report shows (each part ``None`` or empty when the run does not have it).

    Attributes:
        run_dir: The run directory.
        generated: When the report was made (UTC, ISO 8601).
        spec: The run's :class:`~neuroxai.runs.RunSpec` (model, input, training settings, data summary).
        evaluation: Test metrics, plain and de-duplicated.
        audit: The data audit the run saved (``audit.json``).
        history: Per-epoch columns of ``history.csv``.
        calibration: Calibration before/after temperature scaling (with reliability bins), risk-coverage and
            conformal prediction sets on the test split, plain and de-duplicated (from ``metrics.json``, or
            computed from the test images for a run that predates them).
        calibration_source: Where :attr:`calibration` came from.
        xai: The explanation metrics the run saved (``xai_metrics.json``).
        gallery: Explained test images, right and wrong, of every class.
        gallery_method: The explanation method of the gallery.
        missing: ``{section id: why it is not measured}`` for the sections (see :data:`SECTIONS`) left empty.
    """

    run_dir: str
    generated: str
    spec: RunSpec | None = None
    evaluation: EvaluationReport | None = None
    audit: AuditReport | None = None
    history: dict[str, list[Any]] = field(default_factory=dict)
    calibration: CalibrationReport | None = None
    calibration_source: str | None = None
    xai: XAIReport | None = None
    gallery: tuple[GalleryItem, ...] = ()
    gallery_method: str | None = None
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """``"neuroxai report: <model> (<run folder>)"``."""
        model = self.spec.model if self.spec is not None else "model"
        return f"neuroxai report: {model} ({Path(self.run_dir).name})"


# ---------------------------------------------------------------------------------------------- reading the run


def _read_history(path: Path) -> dict[str, list[Any]]:
    if not path.is_file():
        return {}
    cols: dict[str, list[Any]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if k is None:
                    continue
                value: Any = v
                if k != "phase":
                    try:
                        value = float(v) if v not in ("", None) else None
                    except ValueError:
                        value = v
                cols.setdefault(k, []).append(value)
    if "epoch" in cols:
        cols["epoch"] = [int(e) if isinstance(e, float) else e for e in cols["epoch"]]
    return cols


def _read_record(path: Path, kind: type[Any], missing: dict[str, str], section: str) -> Any:
    if not path.is_file():
        return None
    try:
        return kind.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, DataError) as exc:
        missing[section] = f"{path.name} could not be read ({exc}); write it again"
        logger.warning("Report: could not read %s: %s", path, exc)
        return None


# ---------------------------------------------------------------------------------------------- the run's data


def _open_dataset(spec: RunSpec | None, data: str | os.PathLike[str] | None, progress: bool) -> tuple[Dataset | None, str | None]:
    """The run's dataset re-read (``data`` or the recorded source), or ``None`` and why not."""
    from neuroxai.data import Dataset

    summary = spec.data if spec is not None else None
    if data is None:
        if summary is None:
            return None, "the run records no data source; pass the data (--data DIR)"
        if summary.layout == "arrays" or not Path(summary.source).exists():
            return None, f"the run's data ({summary.source}) cannot be read again here; pass the data (--data DIR)"
        data = summary.source
    try:
        kw: dict[str, Any] = {}
        if summary is not None:
            kw = {"val_fraction": summary.val_fraction, "test_fraction": summary.test_fraction, "seed": summary.seed}
        ds = Dataset(data, progress=progress, **kw)
        if summary is not None and summary.fold is not None:
            index, k = summary.fold
            ds = ds.kfold(k)[index]
    except NeuroxaiError as exc:
        return None, f"the data at {os.fspath(data)} could not be read ({exc})"
    if spec is not None and ds.class_names != spec.class_names:
        return None, f"the data at {os.fspath(data)} have classes {list(ds.class_names)}, the model {list(spec.class_names)}"
    if summary is not None and ds.counts().get("test") != summary.counts.get("test"):
        return None, (
            f"the test split of {os.fspath(data)} differs from the run's ({ds.counts().get('test')} vs "
            f"{summary.counts.get('test')}): the data changed since training"
        )
    return ds, None


def _pick(y: np.ndarray, pred: np.ndarray, per_class: int, n_classes: int) -> list[int]:
    """Up to ``per_class`` right and ``per_class`` wrong test images of every class, class by class."""
    out: list[int] = []
    for k in range(n_classes):
        mine = y == k
        out.extend(np.flatnonzero(mine & (pred == k))[:per_class].tolist())
        out.extend(np.flatnonzero(mine & (pred != k))[:per_class].tolist())
    return out


def _encode(picture: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="JPEG", quality=88)
    return buf.getvalue()


def _gallery(
    predictor: Predictor,
    ds: Dataset,
    x: np.ndarray,
    y: np.ndarray,
    masks: np.ndarray | None,
    pick: Sequence[int],
    method: str,
    batch_size: int,
) -> tuple[GalleryItem, ...]:
    from neuroxai.explain import Explainer

    if not pick:
        return ()
    exp = Explainer(predictor, method, batch_size=batch_size).explain(x[list(pick)])
    paths = ds.paths("test")
    slices = ds.slices("test")
    mask_paths = ds.mask_paths("test")
    available = ds.mask_available("test")
    items = []
    for n, i in enumerate(pick):
        ref = slices[i]
        # the file at its own resolution; in-memory data and volume slices: the model input
        original: Any = paths[i] if ref is None else None
        mask: Any = None
        if available[i]:
            mask = mask_paths[i] if mask_paths[i] is not None else (masks[i] if masks is not None else None)
        picture = exp.picture(n, original=original, true_label=int(y[i]), mask=mask)
        pred = int(exp.predicted[n])
        items.append(
            GalleryItem(
                picture=_encode(picture),
                mime="image/jpeg",
                true_class=exp.class_names[int(y[i])],
                predicted_class=exp.class_names[pred],
                probability=float(exp.probabilities[n, pred]),
                correct=pred == int(y[i]),
                outlined=mask is not None,
                source=ref.name if ref is not None else str(original) if original is not None else f"test image #{i}",
                scan_size=_scan_size(original, x.shape[1:3]),
            )
        )
    return tuple(items)


def _scan_size(original: Any, model_size: Sequence[int]) -> tuple[int, int]:
    if original is None:
        return (int(model_size[0]), int(model_size[1]))
    from PIL import Image

    with Image.open(original) as img:
        w, h = img.size
    return (int(h), int(w))


# ---------------------------------------------------------------------------------------------- the call


def collect_report(
    run_dir: str | os.PathLike[str],
    *,
    dataset: Dataset | None = None,
    data: str | os.PathLike[str] | None = None,
    gallery: int = 2,
    method: str = "gradcam",
    batch_size: int = 32,
    progress: bool = False,
) -> ReportData:
    """Gather what a run's report shows.

    Args:
        run_dir: The run directory (``neuroxai train`` or ``neuroxai demo`` wrote it).
        dataset: The run's data, for per-image test predictions and the gallery (default: re-read from
            ``data`` or from the source the run recorded, when it can be read here).
        data: A data folder or manifest to read instead of the recorded source.
        gallery: Right and wrong test images to explain per class (0: no gallery).
        method: Explanation method of the gallery.
        batch_size: Batch size of predictions and explanations.
        progress: Show progress bars while reading data.

    Returns:
        A :class:`ReportData`; what could not be measured is listed in ``missing``.

    Raises:
        ModelError: ``run_dir`` is not a run directory, or its model cannot be loaded while it is needed.

    Example:
        >>> data = collect_report("demo-run")  # doctest: +SKIP
        >>> sorted(data.missing)  # doctest: +SKIP
        []
    """
    from neuroxai.runs import evaluate_calibration, load, log_probabilities, predict_array

    run = RunDirectory(run_dir)
    if not run.path.is_dir() or not (run.spec_file.is_file() or run.model_file.is_file()):
        raise ModelError(
            f"{run.path} is not a run directory: expected model.keras and neuroxai.json (as `neuroxai train` or "
            "`neuroxai demo` write them); give the folder of a finished run."
        )
    missing: dict[str, str] = {}
    spec = run.read_spec()
    if spec is None:
        missing["model"] = "the run has no neuroxai.json"
    evaluation = _read_record(run.metrics_file, EvaluationReport, missing, "accuracy")
    if evaluation is None:
        for section in ("accuracy", "per-class", "confusion"):
            missing.setdefault(section, "the run has no test metrics (metrics.json)")
    audit = _read_record(run.path / AUDIT_FILE, AuditReport, missing, "data")
    if spec is None or spec.data is None:
        missing.setdefault("data", "the run records no data summary")
    history = _read_history(run.history_file)
    if not history.get("loss"):
        missing["training"] = "the run has no history.csv"
    xai = _read_record(run.path / XAI_FILE, XAIReport, missing, "explanations")
    if xai is None:
        missing.setdefault(
            "explanations", "the run has no explanation metrics (xai_metrics.json); `neuroxai evaluate-xai RUN_DIR` measures them"
        )

    calibration = evaluation.calibration if evaluation is not None else None
    calibration_source = "metrics.json" if calibration is not None else None
    needs_images = ["gallery"] if gallery > 0 else []
    if calibration is None:
        needs_images = ["calibration", "risk-coverage", *needs_images]
    if gallery <= 0:
        missing["gallery"] = "no gallery was asked for (gallery 0)"
    items: tuple[GalleryItem, ...] = ()
    ds, why = (dataset, None) if dataset is not None or not needs_images else _open_dataset(spec, data, progress)
    if needs_images and ds is None:
        for section in needs_images:
            missing[section] = f"needs the test images: {why or 'no data'}"
    elif needs_images and ds is not None:
        try:
            predictor = load(run.path)
            h, w, c = predictor.input_shape
            with_masks = ds.has_masks
            arrays = ds.arrays("test", image_size=(h, w), channels=c, input_range=predictor.input_range, with_masks=with_masks)
            x, y = arrays[0], arrays[1]
            masks = arrays[2] if with_masks else None
            if not len(y):
                raise DataError("the test split is empty")
            probs = predict_array(predictor.model, x, batch_size, head=predictor.head).astype(np.float64)
            if calibration is None:  # a run from before calibration was recorded: measure it now
                calibration = evaluate_calibration(
                    y, log_probabilities(probs), predictor.calibration, duplicates=ds.duplicate_test_indices()
                )
                calibration_source = f"the {len(y)} test images of {ds.source}, predicted for this report"
            if gallery > 0:
                pick = _pick(y, probs.argmax(axis=1), int(gallery), len(predictor.class_names))
                items = _gallery(predictor, ds, x, y, masks, pick, method, batch_size)
        except NeuroxaiError as exc:
            for section in needs_images:
                missing.setdefault(section, f"could not predict the test images ({exc})")
    return ReportData(
        run_dir=str(run.path),
        generated=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        spec=spec,
        evaluation=evaluation,
        audit=audit,
        history=history,
        calibration=calibration,
        calibration_source=calibration_source,
        xai=xai,
        gallery=items,
        gallery_method=method if items else None,
        missing=missing,
    )
