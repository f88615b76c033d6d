"""Keeping a model's good explanations while it learns new data that has no masks.

Fine-tuning a model whose heatmaps point at the tumour on data without masks (most users' data) uses
cross-entropy alone, and nothing then stops the evidence from drifting back onto whatever else separates
the classes. :func:`self_masks` lets the model guide itself: before fine-tuning, it explains every
tumour image of the new data for its true class with the model as it is, keeps the maps of the images
it already classifies right, and writes each map, thresholded, as that image's mask. Fine-tuning with
mask guidance (``Trainer(model, guidance="cam")``) on the result then keeps the evidence where the model
already had it, while the labels teach the new data.

The explainer is passed in (any object with ``explain(images, targets=...)`` returning maps, such as an
:class:`~neuroxai.Explainer`), so training does not depend on the explanation layer.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from neuroxai._io import csv_text, write_text
from neuroxai._progress import progress as _progress
from neuroxai._records import Record
from neuroxai.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.data import Dataset

__all__ = ["SELF_MASK_THRESHOLD", "SelfMaskSummary", "self_masks"]

log = logging.getLogger(__name__)

#: A map's pixels at or above this fraction of its range become the mask (the Dice threshold of the metrics).
SELF_MASK_THRESHOLD = 0.5


class _Explainer(Protocol):  # what self_masks needs of an explainer
    predictor: Any
    class_names: Sequence[str]

    def explain(self, images: Any, targets: Any = ...) -> Any: ...


@dataclass(frozen=True)
class SelfMaskSummary(Record):
    """What :func:`self_masks` wrote.

    Attributes:
        manifest: The CSV manifest (every image of the dataset, its split, and a mask where one was made).
        masks: Masks written.
        images: Images listed.
        not_confident: Tumour images left without a mask: the model did not classify them right.
        no_tumour: Images of the no-tumour class (no mask by design).
        threshold: The fraction of each map's range kept.
    """

    manifest: str
    masks: int
    images: int
    not_confident: int
    no_tumour: int
    threshold: float


def _mask_png(heatmap: np.ndarray, image: str, threshold: float) -> bytes:
    """A map thresholded at ``threshold`` of its range, at the image file's own size, as PNG bytes (white: tumour)."""
    from PIL import Image

    lo, hi = float(heatmap.min()), float(heatmap.max())
    keep = heatmap >= lo + threshold * (hi - lo) if hi > lo else np.zeros(heatmap.shape, bool)
    with Image.open(image) as im:
        size = im.size
    png = Image.fromarray((keep * 255).astype(np.uint8)).resize(size, Image.Resampling.NEAREST)
    buf = io.BytesIO()
    png.save(buf, format="PNG")
    return buf.getvalue()


def self_masks(
    dataset: Dataset,
    explainer: _Explainer,
    out_dir: str | os.PathLike[str],
    *,
    threshold: float = SELF_MASK_THRESHOLD,
    no_tumour: str | None = "notumor",
    batch_size: int = 32,
    progress: bool = True,
) -> tuple[Dataset, SelfMaskSummary]:
    """Masks from the model's own maps, for fine-tuning on data without masks (see the module docstring).

    Args:
        dataset: The new data (its images and splits are kept as they are; its own masks are ignored).
        explainer: Explains with the model to fine-tune (e.g. ``Explainer(neuroxai.pretrained(NAME), "gradcam")``);
            its predictor's input size and range are used, and its classes must include the dataset's.
        out_dir: A new or empty folder for the masks and ``manifest.csv`` (never the data's folder).
        threshold: Pixels at or above this fraction of each map's range become tumour, in (0, 1).
        no_tumour: The class whose images get no mask.
        batch_size: Images explained at a time.
        progress: Show a progress bar.

    Returns:
        ``(dataset, summary)``: a :class:`~neuroxai.Dataset` of the same images and splits with the masks (train
        on it with ``Trainer(..., guidance="cam")``), and a :class:`SelfMaskSummary`.

    Raises:
        DataError: A bad threshold, classes the model does not know, or an unreadable split.
        OutputError: ``out_dir`` is inside the data, or holds files neuroxai did not write.

    Example:
        >>> base = neuroxai.pretrained("cnn-mri4-v1")  # doctest: +SKIP
        >>> data, summary = self_masks(Dataset("my-scans"), Explainer(base, "gradcam"), "work/masks")  # doctest: +SKIP
        >>> Trainer(base.model, input_range=base.input_range, guidance="cam", epochs=8).fit(data)  # doctest: +SKIP
    """
    from neuroxai._io import prepare_output_dir, write_bytes
    from neuroxai.data import SPLITS, Dataset, load_images

    if not 0.0 < float(threshold) < 1.0:
        raise DataError(f"Expected a threshold in (0, 1), got {threshold!r}.")
    names = list(explainer.class_names)
    missing = [c for c in dataset.class_names if c not in names]
    if missing:
        raise DataError(f"The model does not know the classes {missing} of {dataset.source}; its classes are {names}.")
    if dataset.paths("train")[:1] == [None]:
        raise DataError("self_masks needs a dataset read from files (a folder or a manifest), not from arrays.")
    predictor = explainer.predictor
    h, w, c = predictor.input_shape
    folder = prepare_output_dir(
        out_dir, command="self-masks", inputs=[dataset.source], overwrite=False, names=("manifest.csv", "masks"), strict=True
    )
    (folder.path / "masks").mkdir(exist_ok=True)
    rows: list[list[str]] = []
    made = not_confident = healthy = 0
    total = sum(len(dataset.labels(s)) for s in SPLITS)
    bar = _progress(total=total, desc="Self-masks", enabled=progress)
    written: list[str] = []
    for split in SPLITS:
        paths = [str(p) for p in dataset.paths(split)]
        labels = dataset.labels(split)
        groups = dataset.groups(split)
        for start in range(0, len(paths), max(1, int(batch_size))):
            chunk = paths[start : start + batch_size]
            x, ok, bad = load_images(chunk, image_size=(h, w), channels=c, input_range=predictor.input_range)
            if bad:
                log.warning("self_masks: %d file(s) of %s could not be read and get no mask", len(bad), split)
            read = {p: i for i, p in enumerate(ok)}
            y = [names.index(dataset.class_names[int(k)]) for k in labels[start : start + batch_size]]
            maps = probs = None
            if len(ok):
                targets = [y[chunk.index(p)] for p in ok]
                exp = explainer.explain(x, targets=targets)
                maps, probs = np.asarray(exp.maps), np.asarray(exp.probabilities)
            for k, path in enumerate(chunk):
                label = names[y[k]]
                mask_cell = ""
                if label == no_tumour:
                    healthy += 1
                elif path in read and maps is not None and probs is not None and int(probs[read[path]].argmax()) == y[k]:
                    name = f"masks/{split}-{start + k:06d}.png"
                    write_bytes(folder.path / name, _mask_png(maps[read[path]], path, threshold))
                    written.append(name)
                    mask_cell = str(folder.path / name)
                    made += 1
                else:
                    not_confident += 1
                group = groups[start + k]
                rows.append([os.path.abspath(path), label, split, mask_cell, "" if group is None else str(group)])
            bar.update(len(chunk))
    bar.close()
    manifest = folder.path / "manifest.csv"
    write_text(manifest, csv_text([["path", "label", "split", "mask", "patient"], *rows]))
    folder.finish([*written, "manifest.csv"])
    summary = SelfMaskSummary(
        manifest=str(manifest),
        masks=made,
        images=len(rows),
        not_confident=not_confident,
        no_tumour=healthy,
        threshold=float(threshold),
    )
    log.info(
        "self_masks: %d masks for %d images (%d tumour images not classified right: no mask)", made, len(rows), not_confident
    )
    return Dataset(Path(manifest), allow_outside_root=True, progress=False), summary
