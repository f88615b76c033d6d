"""Copies of one dataset's images in another: resized, re-encoded, grey or colour, contrast-stretched.

Public collections are often merged from others: the Kaggle "Brain Tumor MRI Dataset" holds figshare slices as
224 px JPEGs, while a figshare copy may be 256 px PNG exports of the same slices. A model trained on one and tested on
the other has seen its test images, and a patient split of one means nothing if the other holds that patient's
slices. :func:`find_copies` finds them.

**Signature.** Every sample is read through the dataset's own pipeline as grayscale at :data:`SIGNATURE_SIZE`
(64x64, the training resize), and reduced to the magnitude of its forward-difference gradient, centred and scaled to
unit length. Two images then compare by the dot product of their signatures (a correlation in [-1, 1]): one
number that does not move when an image is resized, re-encoded, turned from RGB into grey or its contrast and
brightness are stretched linearly, and moves a lot between two different slices, even adjacent slices of one
patient (the gradient keeps the anatomy's edges and drops the smooth intensity differences that make distinct
slices of similar heads look alike).

**Thresholds, measured** (every Kaggle image against every figshare slice, 7019 x 3064): the best match of each
Kaggle image scores either >= 0.99 (1686 images: the same slice) or <= 0.94, with nothing between, so
:data:`COPY_THRESHOLD` = 0.95 sits in an empty gap. Below it, scores between 0.80 and 0.94 are, by eye,
neighbouring slices of the same patient or another export of one slice; the 1996 Kaggle ``notumor`` images, which
cannot be figshare slices (figshare has no healthy class), all score below 0.80, so
:data:`RELATED_THRESHOLD` = 0.80 flags "probably the same patient" with no false match among them.

Memory stays bounded: signatures are float16 (7.9 kB per image) and the comparison runs over blocks of rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from neuroxai._io import display_path
from neuroxai._progress import progress as _progress
from neuroxai._records import Record
from neuroxai.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.data._dataset import Dataset

__all__ = [
    "COPY_THRESHOLD",
    "RELATED_THRESHOLD",
    "SIGNATURE_SIZE",
    "CopyMatch",
    "CopyReport",
    "find_copies",
    "image_signatures",
    "signature_similarity",
]

#: Side of the grayscale image a signature is computed from.
SIGNATURE_SIZE = 64
#: Signature similarity at and above which two images are copies of one slice (see the module docstring).
COPY_THRESHOLD = 0.95
#: Signature similarity at and above which (below :data:`COPY_THRESHOLD`) two images are probably neighbouring
#: slices of one patient, or one slice exported differently.
RELATED_THRESHOLD = 0.80

_ROWS = 512  # rows of the similarity matrix computed at once


def image_signatures(images: np.ndarray) -> np.ndarray:
    """Copy-detection signatures of grayscale images.

    Args:
        images: ``[N, H, W]`` or ``[N, H, W, 1]`` grayscale images at :data:`SIGNATURE_SIZE` (any value range).

    Returns:
        float16 ``[N, (H-1)*(W-1)]``: the forward-difference gradient magnitude of each image, centred and scaled to
        unit length (all zeros for a flat image).
    """
    x = np.asarray(images, np.float32)
    if x.ndim == 4:
        x = x[..., 0]
    if x.ndim != 3:
        raise DataError(f"Expected images of shape [N, H, W] or [N, H, W, 1], got {x.shape}.")
    gx = np.diff(x, axis=2)[:, :-1, :]
    gy = np.diff(x, axis=1)[:, :, :-1]
    g = np.hypot(gx, gy).reshape(len(x), -1)
    g -= g.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(g, axis=1, keepdims=True)
    g /= np.maximum(norm, 1e-6)
    return g.astype(np.float16)


def signature_similarity(a: np.ndarray, b: np.ndarray, *, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Best match in ``b`` of every signature in ``a``.

    Args:
        a: ``[N, D]`` signatures (:func:`image_signatures`).
        b: ``[M, D]`` signatures.
        progress: Show a progress bar over blocks of ``a``.

    Returns:
        ``(index int64 [N], score float32 [N])``: for each row of ``a``, the row of ``b`` it resembles most and
        their similarity (``-1`` and ``-inf`` where ``b`` is empty).
    """
    n = len(a)
    best = np.full(n, -np.inf, np.float32)
    where = np.full(n, -1, np.int64)
    if n == 0 or len(b) == 0:
        return where, best
    bt = np.asarray(b, np.float32).T
    starts = range(0, n, _ROWS)
    for start in _progress(starts, total=len(starts), desc="Comparing images", unit="block", enabled=progress and n > 4 * _ROWS):
        sim = np.asarray(a[start : start + _ROWS], np.float32) @ bt
        where[start : start + _ROWS] = sim.argmax(axis=1)
        best[start : start + _ROWS] = sim.max(axis=1)
    return where, best


def _dataset_signatures(ds: Dataset, idx: np.ndarray, progress: bool) -> np.ndarray:
    """Signatures of the samples ``idx`` of ``ds``, read through its ordered pipeline batch by batch."""
    if len(idx) == 0:
        return np.zeros((0, (SIGNATURE_SIZE - 1) ** 2), np.float16)
    pipe = ds._ordered_pipeline(idx, (SIGNATURE_SIZE, SIGNATURE_SIZE), 1, (0.0, 255.0), 128, with_masks=False)
    out: list[np.ndarray] = []
    bar = _progress(total=len(idx), desc=f"Reading {ds.source}", enabled=progress)
    try:
        for batch in pipe:
            images = batch[0].numpy()
            out.append(image_signatures(images))
            bar.update(len(images))
    except Exception as exc:  # tf.errors.* from a file that went bad after indexing
        raise DataError(
            f"Reading {ds.source} for the copy search failed: {str(exc).splitlines()[0]}. "
            "A file changed since the dataset was indexed; rebuild the Dataset."
        ) from exc
    finally:
        bar.close()
    return np.concatenate(out)


@dataclass(frozen=True)
class CopyMatch(Record):
    """One sample of a dataset and its closest image in another.

    Attributes:
        name: The sample (its path, or ``volume[slice z]``).
        split: Its split.
        label: Its class.
        other: The closest sample of the other dataset.
        other_split: That sample's split.
        other_label: Its class.
        other_group: Its group (patient), or ``None`` where the other dataset has none.
        score: Signature similarity (1.0: the same image).
    """

    name: str
    split: str
    label: str
    other: str
    other_split: str
    other_label: str
    other_group: str | None
    score: float


@dataclass(frozen=True)
class CopyReport(Record):
    """Which images of one dataset are copies of images in another (:func:`find_copies`).

    Attributes:
        source: The dataset searched.
        other_source: The dataset searched in.
        method: How images are compared.
        copy_threshold: Similarity from which a match is a copy.
        related_threshold: Similarity from which a match is probably the same patient.
        images: Samples of ``source`` compared.
        other_images: Samples of ``other_source`` compared.
        copies: Samples with a copy in the other dataset (score >= ``copy_threshold``), most similar first.
        related: Samples whose closest match scores in [``related_threshold``, ``copy_threshold``).
        copies_by_split: Copies per split and class of ``source``: ``{split: {class: n}}``.
        copies_by_other_split: Copies per split of the other dataset their match sits in.
        copies_by_group: Copies per group (patient) of the other dataset; empty where it has no groups.
        related_by_group: The same for the related matches.
        label_disagreements: Copies whose two labels differ (by name).
    """

    source: str
    other_source: str
    method: str
    copy_threshold: float
    related_threshold: float
    images: int
    other_images: int
    copies: tuple[CopyMatch, ...]
    related: tuple[CopyMatch, ...]
    copies_by_split: dict[str, dict[str, int]]
    copies_by_other_split: dict[str, int]
    copies_by_group: dict[str, int]
    related_by_group: dict[str, int]
    label_disagreements: int

    def names(self, *, related: bool = False, other_splits: tuple[str, ...] | None = None) -> set[str]:
        """The samples of ``source`` that are copies (and, with ``related``, probable same-patient matches).

        Args:
            related: Include the related matches.
            other_splits: Only matches whose image sits in one of these splits of the other dataset.

        Returns:
            Sample names of ``source``.
        """
        matches = self.copies + (self.related if related else ())
        return {m.name for m in matches if other_splits is None or m.other_split in other_splits}

    def format(self, max_rows: int = 5) -> str:
        """A readable, multi-line text report (without a trailing newline)."""
        lines = [
            f"  copies of {display_path(self.other_source)} ({self.other_images} images) among these {self.images}: "
            f"{len(self.copies)} (similarity >= {self.copy_threshold:g}), and {len(self.related)} probably of the same "
            f"patient (>= {self.related_threshold:g})"
        ]
        for split, counts in self.copies_by_split.items():
            text = ", ".join(f"{c} {n}" for c, n in counts.items() if n)
            if text:
                lines.append(f"    in {split}: {sum(counts.values())} ({text})")
        if self.copies_by_other_split:
            text = ", ".join(f"{s} {n}" for s, n in self.copies_by_other_split.items())
            lines.append(f"    their originals sit in the other set's splits: {text}")
        if self.copies_by_group:
            lines.append(f"    of {len(self.copies_by_group)} patients of the other set")
        if self.label_disagreements:
            lines.append(f"    copies whose labels disagree: {self.label_disagreements}")
        for m in self.copies[:max_rows]:
            lines.append(f"    {display_path(m.name)}  =  {display_path(m.other)}  ({m.score:.3f})")
        if len(self.copies) > max_rows:
            lines.append(f"    ... and {len(self.copies) - max_rows} more (use --format json for all)")
        return "\n".join(lines)


def find_copies(
    ds: Dataset,
    other: Dataset,
    *,
    splits: tuple[str, ...] | None = None,
    other_splits: tuple[str, ...] | None = None,
    copy_threshold: float = COPY_THRESHOLD,
    related_threshold: float = RELATED_THRESHOLD,
    progress: bool = True,
) -> CopyReport:
    """Find the samples of ``ds`` that are copies of samples of ``other`` (see the module docstring).

    Args:
        ds: The dataset searched.
        other: The dataset searched in (may be ``ds`` itself, with other splits).
        splits: Splits of ``ds`` searched (default: all).
        other_splits: Splits of ``other`` searched in (default: all).
        copy_threshold: Similarity from which a match is a copy.
        related_threshold: Similarity from which a match is reported as probably the same patient.
        progress: Show progress bars.

    Returns:
        A :class:`CopyReport`.

    Raises:
        DataError: A threshold is outside (0, 1], ``related_threshold`` is above ``copy_threshold``, or a file went
            bad after indexing.
    """
    if not (0.0 < related_threshold <= copy_threshold <= 1.0):
        raise DataError(
            f"Expected 0 < related_threshold <= copy_threshold <= 1, got {related_threshold!r} and {copy_threshold!r}."
        )
    from neuroxai.data._dataset import SPLITS

    def chosen(d: Dataset, names: tuple[str, ...] | None) -> np.ndarray:
        wanted = SPLITS if names is None else tuple(d._check_split(s) for s in names)
        return np.concatenate([d._indices(s) for s in wanted]) if wanted else np.zeros(0, np.int64)

    idx, other_idx = chosen(ds, splits), chosen(other, other_splits)
    sig = _dataset_signatures(ds, idx, progress)
    other_sig = sig if other is ds and np.array_equal(idx, other_idx) else _dataset_signatures(other, other_idx, progress)
    where, score = signature_similarity(sig, other_sig, progress=progress)

    names, other_names = ds._sample_names(), other._sample_names()
    split_of, other_split_of = ds._splits, other._splits
    groups = other._groups if other._groups is not None else None

    def match(k: int) -> CopyMatch:
        i, j = int(idx[k]), int(other_idx[where[k]])
        return CopyMatch(
            name=names[i],
            split=str(split_of[i]),
            label=ds.class_names[int(ds._labels[i])],
            other=other_names[j],
            other_split=str(other_split_of[j]),
            other_label=other.class_names[int(other._labels[j])],
            other_group=None if groups is None or groups[j] is None else str(groups[j]),
            score=round(float(score[k]), 4),
        )

    order = np.argsort(-score, kind="stable")
    copies = tuple(match(int(k)) for k in order if score[k] >= copy_threshold)
    related = tuple(match(int(k)) for k in order if related_threshold <= score[k] < copy_threshold)
    by_split: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        counts = Counter(m.label for m in copies if m.split == split)
        if counts:
            by_split[split] = {c: counts[c] for c in ds.class_names}
    by_group: dict[str, int] = defaultdict(int)
    related_by_group: dict[str, int] = defaultdict(int)
    for m in copies:
        if m.other_group is not None:
            by_group[m.other_group] += 1
    for m in related:
        if m.other_group is not None:
            related_by_group[m.other_group] += 1
    other_split_counts = Counter(m.other_split for m in copies)
    return CopyReport(
        source=ds.source,
        other_source=other.source,
        method=(
            f"correlation of gradient-magnitude signatures of {SIGNATURE_SIZE}x{SIGNATURE_SIZE} grayscale images "
            "(invariant to resizing, re-encoding, RGB/grey and linear contrast changes)"
        ),
        copy_threshold=float(copy_threshold),
        related_threshold=float(related_threshold),
        images=len(idx),
        other_images=len(other_idx),
        copies=copies,
        related=related,
        copies_by_split=by_split,
        copies_by_other_split={s: other_split_counts[s] for s in SPLITS if other_split_counts[s]},
        copies_by_group=dict(sorted(by_group.items())),
        related_by_group=dict(sorted(related_by_group.items())),
        label_disagreements=sum(m.label != m.other_label for m in copies),
    )
