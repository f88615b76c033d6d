"""The :class:`Dataset`: an indexed, validated, split, leak-aware set of labelled images."""

from __future__ import annotations

import copy
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroxai.data._files import SkippedFile
from neuroxai.data._images import ImageInfo, as_uint8, check_model_input, digest_bytes, probe_files, thumbnail
from neuroxai.data._index import Entry, scan
from neuroxai.data._slices import SliceRef
from neuroxai.data._splits import carve
from neuroxai.data._summary import DatasetSummary, DuplicateSummary, GroupReport, group_report
from neuroxai.data._transforms import binarize_mask
from neuroxai.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

    from neuroxai.data._audit import AuditReport
    from neuroxai.data._pipeline import PipelineState, Source

__all__ = ["SPLITS", "Dataset", "SplitImages"]

log = logging.getLogger(__name__)

#: Split names, in order.
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class SplitImages:
    """A split read into memory by :meth:`Dataset.read_split`.

    Attributes:
        x: float32 ``[N, H, W, C]``, the images that could be read.
        labels: int64 ``[N]``, their labels.
        positions: int64 ``[N]``, their positions in the split (into :meth:`Dataset.labels`).
        unreadable: The split's files that could not be read (at indexing or now), with the reason.
    """

    x: np.ndarray
    labels: np.ndarray
    positions: np.ndarray
    unreadable: tuple[SkippedFile, ...]


def _read_entries(
    raw: list[Entry], skipped: list[SkippedFile], *, progress: bool, max_pixels: int | None
) -> tuple[list[Entry], list[ImageInfo | str]]:
    """Read every candidate: image files fully, volumes once each; a volume's entry becomes one entry per slice.

    Returns the entries in the order found (a volume's slices in its place) and, per entry, its
    :class:`ImageInfo` or why it is unusable. Series of a DICOM folder that could not be read while
    others could are added to ``skipped``.
    """
    image_at = [k for k, e in enumerate(raw) if e.volume is None]
    volume_at = [k for k, e in enumerate(raw) if e.volume is not None]
    what = f" and {len(volume_at)} scanner volumes" if volume_at else ""
    log.info("Reading %d image files%s", len(image_at), what)
    image_infos = probe_files([raw[k].path for k in image_at], progress=progress, desc="Reading images", max_pixels=max_pixels)
    if not volume_at:  # plain image data: nothing else to do
        return raw, image_infos
    from neuroxai.data._slices import probe_volumes

    requests = [raw[k].volume for k in volume_at]
    answers, bad_series = probe_volumes([r for r in requests if r is not None], progress=progress)
    skipped.extend(bad_series)
    found: dict[int, Any] = dict(zip(image_at, image_infos))
    found.update(zip(volume_at, answers))
    entries: list[Entry] = []
    infos: list[ImageInfo | str] = []
    for k, entry in enumerate(raw):
        answer = found[k]
        if entry.volume is None or isinstance(answer, str):
            entries.append(entry)
            infos.append(answer)
            continue
        for piece in answer:
            entries.append(replace(entry, volume=None, slice=piece.ref))
            infos.append(piece.info)
    return entries, infos


def _check_fraction(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise DataError(f"{name} must be in [0, 1); got {value}.")
    return value


class Dataset:
    """Labelled brain MRI images, indexed and validated once, split into train / val / test.

    Constructing a ``Dataset`` reads every image file fully (on a thread pool),
    so corrupt, truncated, zero-byte and non-image files are found up front,
    skipped and listed in :attr:`skipped` with the reason; they never reach
    training. Each file's content hash is kept, so test images that are
    byte-identical to a training image can be dropped with ``dedup=True``.

    Layouts read from ``path``:

    - **Kaggle**: ``Training/`` and ``Testing/`` (also ``train``/``test``, any
      case; optionally ``Validation/``), each with one folder per class. The
      test split is the dataset's own; a stratified, seeded validation split of
      ``val_fraction`` is carved from the training folder.
    - **Class folders**: one folder per class; stratified, seeded validation
      and test splits of ``val_fraction`` and ``test_fraction`` are carved.
    - **CSV manifest**: a ``.csv`` file with a header and columns
      ``path,label[,split][,mask][,patient]``; paths are relative to the CSV file. Rows
      with a ``split`` of train / val / test (also training, validation,
      testing) keep it and rows without one count as train; val is carved
      from train when no row says val. Without a split column val and test
      are carved as for class folders.

    Scanner volumes (extra ``neuroxai[medical]``): a class folder's NIfTI files
    and DICOM series folders give one sample per axial slice with brain,
    labelled by the folder; a manifest row may name a NIfTI file, DICOM file
    or series folder with an optional ``slice`` cell (``12``, ``10:20``;
    empty: every slice with brain). Slices of one volume share a group (the
    row's patient, else the volume), so carved splits never cut a volume in
    two; :meth:`slices` says which slice each sample is. See the data guide,
    "Scanner files in a Dataset".

    Class order (:attr:`class_names`) is the sorted class folder names (sorted
    training labels for manifests). Hidden files and folders (``.DS_Store``,
    ``.ipynb_checkpoints``) and non-image files are skipped and listed.

    Masks: in a manifest, the ``mask`` column; in folder layouts, a mask sits
    beside its image with ``_mask`` added to the stem, in any image format
    (``Tr-gl-0001.jpg`` -> ``Tr-gl-0001_mask.png``). Any non-zero pixel is
    tumour (a mask whose values are all <= 1 is read as 0/1). Masks travel with
    their image through splits, the pipeline and augmentation. Images without
    a mask get an empty mask (see :meth:`mask_available`).

    Splits are stratified and seeded, and byte-identical files are kept on the
    same side of a carved split, so carving never leaks a duplicate.

    Groups: a manifest column ``patient`` (or ``group``, ``groups``) gives each
    row a group (``from_arrays(groups=...)`` likewise). Carved splits (val,
    test, :meth:`kfold`) then keep every group on one side, so no patient's
    slices sit in both training and evaluation; splits given by the manifest
    are kept as they are, and :meth:`summary` and :meth:`audit` list the
    groups they put on more than one side. See :meth:`groups`.

    Args:
        path: Kaggle-layout folder, folder of class folders, or CSV manifest.
        val_fraction: Fraction of each training class carved out for validation.
        test_fraction: Fraction of each class carved out for testing, when the
            data has no test split of its own.
        seed: Seed of the split.
        progress: Show a progress bar while reading files.
        allow_outside_root: Let a manifest list files outside its own folder
            (absolute paths or ``../``), and a class folder be a symbolic link
            to a folder outside the data. Off by default: data from elsewhere
            cannot make neuroxai read arbitrary files.
        max_pixels: Largest image (width x height) read; larger files are
            skipped and listed in :attr:`skipped`. Default
            :data:`neuroxai.data.MAX_IMAGE_PIXELS`.

    Raises:
        DataError: If the path is missing or empty, a class folder has no images,
            a test class is unknown to training, no image can be read, a
            class folder is a symbolic link that loops, leads outside the data or to another class
            folder, or a manifest lists paths outside its folder (see
            ``allow_outside_root``).

    Folders neuroxai wrote (a run directory, explanation outputs) are never
    read as classes or samples, even inside the data folder, and symbolic
    links to folders inside a class folder are not followed; both are listed
    in :attr:`skipped`.

    Example:
        >>> from neuroxai.data import write_phantoms, Dataset
        >>> root = write_phantoms("/tmp/phantoms", n_per_class=8, image_size=64)  # doctest: +SKIP
        >>> ds = Dataset(root, progress=False)  # doctest: +SKIP
        >>> ds.class_names  # doctest: +SKIP
        ('glioma', 'meningioma', 'notumor', 'pituitary')
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 1337,
        progress: bool = True,
        allow_outside_root: bool = False,
        max_pixels: int | None = None,
    ) -> None:
        val_fraction = _check_fraction("val_fraction", val_fraction)
        test_fraction = _check_fraction("test_fraction", test_fraction)
        raw = scan(path, allow_outside_root=bool(allow_outside_root))
        skipped = list(raw.skipped)
        entries, infos = _read_entries(raw.entries, skipped, progress=progress, max_pixels=max_pixels)
        mask_paths = sorted({e.mask for e in entries if e.mask})
        mask_infos = dict(
            zip(mask_paths, probe_files(mask_paths, progress=progress, desc="Reading masks", max_pixels=max_pixels))
        )
        keep: list[int] = []
        skipped_split: dict[str, str] = {}
        for i, (entry, info) in enumerate(zip(entries, infos)):
            if isinstance(info, str):
                skipped.append(SkippedFile(entry.path, info))
                if entry.split is not None:
                    skipped_split[entry.path] = entry.split
                continue
            if entry.mask:
                minfo = mask_infos[entry.mask]
                if isinstance(minfo, str):
                    skipped.append(SkippedFile(entry.mask, f"mask unreadable: {minfo}; its image is kept without a mask"))
                    entry.mask = None
            keep.append(i)
        class_names = raw.class_names
        counts = Counter(entries[i].label for i in keep)
        missing = [c for c in class_names if counts[c] == 0]
        if not keep:
            raise DataError(
                f"No readable images under {path} ({len(skipped)} files skipped, e.g. {skipped[0].path}: {skipped[0].reason})."
                if skipped
                else f"No images under {path}."
            )
        if missing and raw.layout != "manifest":
            bad = [s for s in skipped if f"{os.sep}{missing[0]}{os.sep}" in s.path]
            example = f" e.g. {bad[0].path}: {bad[0].reason}" if bad else ""
            raise DataError(
                f"Class {missing[0]!r} has no readable images under {path};{example}. "
                "Replace the broken files or remove the class folder."
            )
        kept = [info for info in infos if not isinstance(info, str)]
        slices = [entries[i].slice for i in keep]
        has_slices = any(ref is not None for ref in slices)
        if skipped:
            log.info("Skipped %d files under %s (see Dataset.skipped for the reasons)", len(skipped), path)
        self._init_common(
            source=str(path),
            layout=raw.layout,
            class_names=class_names,
            labels=np.array([class_names.index(entries[i].label) for i in keep], np.int64),
            given_splits=[None if raw.layout == "train-only" else entries[i].split for i in keep],
            infos=kept,
            groups=[entries[i].group for i in keep],
            group_column=raw.group_column or ("volume" if has_slices else None),
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            seed=seed,
        )
        self._paths: list[str] | None = [entries[i].path for i in keep]
        self._slices: list[SliceRef | None] | None = slices if has_slices else None
        self._mask_paths: list[str | None] = [entries[i].mask for i in keep]
        self._mask_infos: dict[str, ImageInfo] = {k: v for k, v in mask_infos.items() if not isinstance(v, str)}
        self._images: list[np.ndarray] | None = None
        self._masks: list[np.ndarray | None] | None = None
        self.skipped: list[SkippedFile] = skipped
        self._skipped_split = skipped_split

    # ------------------------------------------------------------------ construction helpers
    def _init_common(
        self,
        *,
        source: str,
        layout: str,
        class_names: Sequence[str],
        labels: np.ndarray,
        given_splits: Sequence[str | None],
        infos: list[ImageInfo],
        groups: Sequence[str | None] | None,
        group_column: str | None,
        val_fraction: float,
        test_fraction: float,
        seed: int,
    ) -> None:
        self.class_names: tuple[str, ...] = tuple(str(c) for c in class_names)
        self.source = source
        self.layout = layout
        self.seed = int(seed)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.fold: tuple[int, int] | None = None
        self._labels = labels
        self._infos = infos
        self._digests = [i.digest for i in infos]
        self._thumbs = np.stack([i.thumb for i in infos])
        has_groups = groups is not None and group_column is not None and any(g is not None for g in groups)
        self._groups: list[str | None] | None = list(groups) if has_groups and groups is not None else None
        self._group_column = group_column if has_groups else None
        splits = np.array([s or "" for s in given_splits], dtype=object)
        any_given = bool(np.any(splits != ""))
        has_val = bool(np.any(splits == "val"))
        # Carve val from train when there is no val; carve test only when no split was given at all.
        fracs: list[float] = []
        names: list[str] = []
        if not has_val:
            fracs.append(val_fraction)
            names.append("val")
        if not any_given:
            fracs.append(test_fraction)
            names.append("test")
        pool = np.flatnonzero((splits == "") | (splits == "train"))
        if names and len(pool):
            parts = carve(
                labels[pool],
                [self._digests[i] for i in pool],
                fracs,
                self.seed,
                None if self._groups is None else [self._groups[i] for i in pool],
            )
            for name, part in zip(names, parts[:-1]):
                splits[pool[part]] = name
            splits[pool[parts[-1]]] = "train"
        splits[splits == ""] = "train"
        self._splits = splits.astype(str)
        self._val_carved = not has_val
        report = self._group_report()
        if report is not None and report.straddling:
            log.warning(
                "%s: %d %s have samples on more than one side of the given splits (e.g. %s); "
                "Dataset.audit() lists them. Carve the splits instead (no split column) to keep them apart.",
                source,
                len(report.straddling),
                report.noun,
                report.straddling[0].group,
            )

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray | Sequence[Any],
        labels: Sequence[int] | np.ndarray,
        *,
        class_names: Sequence[str],
        masks: np.ndarray | Sequence[Any] | None = None,
        splits: Sequence[str] | None = None,
        groups: Sequence[Any] | np.ndarray | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 1337,
    ) -> Dataset:
        """Build a dataset from in-memory images.

        Args:
            images: ``[N,H,W]``, ``[N,H,W,C]`` array or a list of ``[H,W(,C)]`` arrays or PIL
                images (uint8 0..255, uint16, or float 0..1).
            labels: Integer class per image, in ``range(len(class_names))``.
            class_names: Class names, in label order.
            masks: Optional ``[N,H,W]`` masks or a list with ``None`` for "no mask".
                Non-zero is tumour; a mask whose values are all <= 1 is read as 0/1
                (tumour above 0.5).
            splits: Optional split name per image ("train", "val", "test"). Without
                it val and test are carved; with it, val is carved from train when
                no image is marked "val", and test is never carved.
            groups: Optional group per image (e.g. a patient id; ``None`` for none).
                Carved splits keep every group on one side.
            val_fraction: Fraction carved for validation.
            test_fraction: Fraction carved for testing (when ``splits`` has no "test").
            seed: Split seed.

        Returns:
            A :class:`Dataset` whose :meth:`paths` are ``None``.

        Raises:
            DataError: On mismatched lengths, labels out of range or unknown split names.

        Example:
            >>> import numpy as np
            >>> x = np.zeros((20, 32, 32), np.uint8); y = np.arange(20) % 2
            >>> ds = Dataset.from_arrays(x, y, class_names=["a", "b"], seed=0)
            >>> sum(ds.counts()[s]["a"] for s in ("train", "val", "test"))
            10
        """
        items = [as_uint8(im) for im in (list(images) if not isinstance(images, np.ndarray) else images)]
        n = len(items)
        y = np.asarray(labels).astype(np.int64).reshape(-1)
        names = tuple(str(c) for c in class_names)
        if len(y) != n:
            raise DataError(f"from_arrays: got {n} images but {len(y)} labels; give one label per image.")
        if n == 0:
            raise DataError("from_arrays: no images given; expected at least one image.")
        if len(names) < 1 or len(set(names)) != len(names):
            raise DataError(f"from_arrays: class_names must be unique and non-empty; got {list(class_names)}.")
        if y.min() < 0 or y.max() >= len(names):
            raise DataError(
                f"from_arrays: labels must be in 0..{len(names) - 1} for {len(names)} classes; got {y.min()}..{y.max()}."
            )
        mask_list: list[np.ndarray | None] | None = None
        if masks is not None:
            given_masks = [None if m is None else np.asarray(m) for m in masks]
            if len(given_masks) != n:
                raise DataError(f"from_arrays: got {n} images but {len(given_masks)} masks.")
            mask_list = []
            for k, (im, m) in enumerate(zip(items, given_masks)):
                if m is None:
                    mask_list.append(None)
                    continue
                m2 = m[..., 0] if m.ndim == 3 else m
                if m2.shape != im.shape[:2]:
                    raise DataError(f"from_arrays: mask {k} has shape {m.shape}, image {k} has {im.shape[:2]}; they must match.")
                mask_list.append(binarize_mask(m2))
        given: list[str | None] = [None] * n
        if splits is not None:
            given = []
            for s in splits:
                norm = {"training": "train", "validation": "val", "valid": "val", "testing": "test"}.get(
                    str(s).lower(), str(s).lower()
                )
                if norm not in SPLITS:
                    raise DataError(f"from_arrays: unknown split {s!r}; use 'train', 'val' or 'test'.")
                given.append(norm)
            if len(given) != n:
                raise DataError(f"from_arrays: got {n} images but {len(given)} split names.")
        group_list: list[str | None] | None = None
        if groups is not None:
            group_list = [None if g is None or (isinstance(g, str) and not g) else str(g) for g in groups]
            if len(group_list) != n:
                raise DataError(f"from_arrays: got {n} images but {len(group_list)} groups; give one group per image.")
        infos = [
            ImageInfo(
                "array",
                "L" if (im.ndim == 2 or im.shape[-1] == 1) else ("RGB" if im.shape[-1] == 3 else "RGBA"),
                int(im.shape[1]),
                int(im.shape[0]),
                digest_bytes(np.ascontiguousarray(im).tobytes() + str(im.shape).encode()),
                thumbnail(im),
            )
            for im in items
        ]
        self = cls.__new__(cls)
        self._init_common(
            source="arrays",
            layout="arrays",
            class_names=names,
            labels=y,
            given_splits=given,
            infos=infos,
            groups=group_list,
            group_column="groups",
            val_fraction=_check_fraction("val_fraction", val_fraction),
            test_fraction=_check_fraction("test_fraction", test_fraction),
            seed=seed,
        )
        self._paths = None
        self._slices = None
        self._mask_paths = [None] * n
        self._mask_infos = {}
        self._images = items
        self._masks = mask_list
        self.skipped = []
        self._skipped_split = {}
        return self

    @classmethod
    def phantoms(cls, n_per_class: int = 100, image_size: int = 128, seed: int = 0, **options: Any) -> Dataset:
        """Synthetic MRI phantoms (NOT medical data); see :func:`neuroxai.data.phantoms`."""
        from neuroxai.data._phantoms import phantoms

        return phantoms(n_per_class=n_per_class, image_size=image_size, seed=seed, **options)

    # ------------------------------------------------------------------ basic accessors
    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def has_masks(self) -> bool:
        """True when at least one image has a segmentation mask."""
        if self._masks is not None:
            return True
        return any(m is not None for m in self._mask_paths)

    def __len__(self) -> int:
        return len(self._labels)

    def __repr__(self) -> str:
        c = self.counts()
        sizes = ", ".join(f"{s}={sum(c[s].values())}" for s in SPLITS)
        return f"Dataset({self.source!r}, classes={list(self.class_names)}, {sizes}, skipped={len(self.skipped)})"

    def _check_split(self, split: str) -> str:
        if split not in SPLITS:
            raise DataError(f"Unknown split {split!r}; expected one of {', '.join(SPLITS)}.")
        return split

    def _indices(self, split: str, dedup: bool = False) -> np.ndarray:
        idx = np.flatnonzero(self._splits == self._check_split(split))
        if dedup and split == "test":
            train = {self._digests[i] for i in np.flatnonzero(self._splits != "test")}
            idx = np.array([i for i in idx if self._digests[i] not in train], dtype=np.int64)
        elif dedup and split == "val":
            train = {self._digests[i] for i in np.flatnonzero(self._splits == "train")}
            idx = np.array([i for i in idx if self._digests[i] not in train], dtype=np.int64)
        return idx.astype(np.int64)

    def labels(self, split: str, *, dedup: bool = False) -> np.ndarray:
        """Integer labels of a split, in the split's fixed order.

        Args:
            split: "train", "val" or "test".
            dedup: Drop samples byte-identical to a training-side image (test: any
                image from the training folder, train or val; val: a train image).

        Returns:
            int64 array of class indices into :attr:`class_names`.

        Raises:
            DataError: On an unknown split name.
        """
        out: np.ndarray = self._labels[self._indices(split, dedup)].copy()
        return out

    def paths(self, split: str, *, dedup: bool = False) -> list[str | None]:
        """File paths of a split, in the same order as :meth:`labels` (``None`` for in-memory data)."""
        idx = self._indices(split, dedup)
        if self._paths is None:
            return [None] * len(idx)
        return [self._paths[i] for i in idx]

    def slices(self, split: str, *, dedup: bool = False) -> list[SliceRef | None]:
        """Which volume slice each sample of a split is, in the order of :meth:`labels` (``None`` for an image file).

        A sample read from a scanner volume has its volume as its :meth:`paths` entry; this says which
        slice of it (:class:`~neuroxai.data.SliceRef`: the volume, the DICOM series when its folder holds
        several, and the axial slice index in the display orientation of :attr:`Volume.voxels`).

        Example:
            >>> import numpy as np
            >>> Dataset.from_arrays(np.zeros((4, 8, 8), np.uint8), [0, 1, 0, 1], class_names=["a", "b"],
            ...                     splits=["train"] * 4).slices("train")
            [None, None, None, None]
        """
        idx = self._indices(split, dedup)
        if self._slices is None:
            return [None] * len(idx)
        return [self._slices[i] for i in idx]

    def _sample_names(self) -> list[str]:
        """A readable, unique-per-sample name of every sample (file, ``volume[slice z]``, or ``<split[k]>`` in memory)."""
        if self._paths is None:
            pos: Counter[str] = Counter()
            names = []
            for s in self._splits:
                names.append(f"<{s}[{pos[s]}]>")
                pos[s] += 1
            return names
        if self._slices is None:
            return list(self._paths)
        return [p if ref is None else ref.name for p, ref in zip(self._paths, self._slices)]

    def groups(self, split: str, *, dedup: bool = False) -> list[str | None]:
        """Group (e.g. patient id) of each sample of a split, in the order of :meth:`labels`.

        Groups come from a manifest's ``patient`` (or ``group``, ``groups``)
        column or from ``from_arrays(groups=...)``; ``None`` where a sample has
        none (every sample of a folder layout).

        Example:
            >>> import numpy as np
            >>> x = np.arange(8, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
            >>> ds = Dataset.from_arrays(x, [0, 1] * 4, class_names=["a", "b"], groups=["p1", "p1", "p2", "p2"] * 2,
            ...                          splits=["train"] * 8, val_fraction=0.0)
            >>> ds.groups("train")[:3]
            ['p1', 'p1', 'p2']
        """
        idx = self._indices(split, dedup)
        if self._groups is None:
            return [None] * len(idx)
        return [self._groups[i] for i in idx]

    def mask_paths(self, split: str, *, dedup: bool = False) -> list[str | None]:
        """Mask file of each sample of a split (``None`` where there is none)."""
        return [self._mask_paths[i] for i in self._indices(split, dedup)]

    def mask_available(self, split: str, *, dedup: bool = False) -> np.ndarray:
        """Boolean per sample of a split: True when the sample has a real mask (not the empty stand-in)."""
        idx = self._indices(split, dedup)
        if self._masks is not None:
            return np.array([self._masks[i] is not None for i in idx], dtype=bool)
        return np.array([self._mask_paths[i] is not None for i in idx], dtype=bool)

    def counts(self, *, dedup: bool = False) -> dict[str, dict[str, int]]:
        """Number of samples per split and class: ``{split: {class: n}}``."""
        out: dict[str, dict[str, int]] = {}
        for split in SPLITS:
            y = self.labels(split, dedup=dedup)
            binc = np.bincount(y, minlength=self.num_classes)
            out[split] = {c: int(binc[k]) for k, c in enumerate(self.class_names)}
        return out

    def class_weights(self, split: str = "train") -> dict[int, float]:
        """Balanced class weights for Keras ``class_weight``: scikit-learn's ``compute_class_weight("balanced")``.

        Each class present gets ``n / (classes present * n_c)``; a class absent
        from the split gets weight 1.0.

        Example:
            >>> import numpy as np
            >>> ds = Dataset.from_arrays(np.zeros((4, 8, 8), np.uint8), [0, 0, 0, 1], class_names=["a", "b"],
            ...                          splits=["train"] * 4)
            >>> ds.class_weights()
            {0: 0.6666666666666666, 1: 2.0}
        """
        from sklearn.utils.class_weight import compute_class_weight

        y = self.labels(split)
        weights = dict.fromkeys(range(self.num_classes), 1.0)
        present = np.unique(y)
        if len(present):
            balanced = compute_class_weight("balanced", classes=present, y=y)
            weights.update({int(k): float(w) for k, w in zip(present, balanced)})
        return weights

    def duplicate_test_indices(self) -> np.ndarray:
        """Indices into the test split whose file is byte-identical to a training-side file.

        "Training side" is everything that is not test (train and val, i.e. the
        dataset's training folder). ``dedup=True`` elsewhere drops exactly these.

        Returns:
            Sorted int64 positions within ``paths("test")`` / ``labels("test")``.
        """
        train = {self._digests[i] for i in np.flatnonzero(self._splits != "test")}
        test = self._indices("test")
        return np.array([k for k, i in enumerate(test) if self._digests[i] in train], dtype=np.int64)

    def _group_report(self) -> GroupReport | None:
        if self._groups is None or self._group_column is None:
            return None
        return group_report(self._group_column, self._groups, list(self._splits))

    def summary(self) -> DatasetSummary:
        """A typed description for run specs and logs (``.to_dict()`` for JSON).

        Returns:
            A :class:`~neuroxai.data.DatasetSummary`: source, layout, class names,
            counts per split and class, number of skipped files, whether masks
            exist, the number of test samples duplicated in training, the split
            seed and fractions, and how the groups (patients) fall into the splits.

        Example:
            >>> import numpy as np
            >>> ds = Dataset.from_arrays(np.zeros((4, 8, 8), np.uint8), [0, 0, 1, 1], class_names=["a", "b"],
            ...                          splits=["train", "train", "train", "test"])
            >>> s = ds.summary()
            >>> s.counts["test"], s.duplicates.test_in_train
            ({'a': 0, 'b': 1}, 1)
        """
        return DatasetSummary(
            source=self.source,
            layout=self.layout,
            class_names=self.class_names,
            counts=self.counts(),
            skipped=len(self.skipped),
            has_masks=self.has_masks,
            duplicates=DuplicateSummary(test_in_train=len(self.duplicate_test_indices())),
            seed=self.seed,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            groups=self._group_report(),
            fold=self.fold,
        )

    def kfold(self, k: int = 5, *, seed: int | None = None) -> list[Dataset]:
        """Stratified (and grouped) k-fold cross-validation over the training side; the test split is untouched.

        The training side (train and val together) is carved into ``k`` folds
        with the same rules as the val split: stratified by class, seeded,
        byte-identical files together and, when the data has groups
        (patients), every group in one fold.

        Args:
            k: Number of folds (at least 2).
            seed: Seed of the folds (default: the dataset's :attr:`seed`).

        Returns:
            ``k`` datasets sharing this one's files: in dataset ``i`` the split
            "val" is fold ``i`` and "train" the other ``k - 1`` folds; "test" is
            the same in all. Each has ``fold == (i, k)``.

        Raises:
            DataError: ``k`` is not an integer >= 2, or larger than the number
                of training-side samples.

        Example:
            >>> import numpy as np
            >>> x = np.arange(30, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
            >>> ds = Dataset.from_arrays(x, np.arange(30) % 2, class_names=["a", "b"], splits=["train"] * 30)
            >>> [len(f.labels("val")) for f in ds.kfold(3, seed=0)]
            [10, 10, 10]
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
            raise DataError(f"kfold: k must be an integer >= 2; got {k!r}.")
        pool = np.flatnonzero(self._splits != "test")
        if k > len(pool):
            raise DataError(f"kfold: k={k} folds but only {len(pool)} training-side samples; use a smaller k.")
        parts = carve(
            self._labels[pool],
            [self._digests[i] for i in pool],
            [1.0 / k] * (k - 1),
            self.seed if seed is None else int(seed),
            None if self._groups is None else [self._groups[i] for i in pool],
        )
        folds: list[Dataset] = []
        for i, part in enumerate(parts):
            fold = copy.copy(self)
            splits = self._splits.copy()
            splits[pool] = "train"
            splits[pool[part]] = "val"
            fold._splits = splits
            fold._val_carved = True
            fold.fold = (i, int(k))
            folds.append(fold)
        return folds

    # ------------------------------------------------------------------ pipeline
    def pipeline(
        self,
        split: str,
        *,
        image_size: tuple[int, int],
        channels: int,
        input_range: tuple[float, float] = (0.0, 1.0),
        batch_size: int = 32,
        augment: bool | None = None,
        shuffle: bool | None = None,
        cache: bool | str = True,
        with_masks: bool = False,
        dedup: bool = False,
        seed: int | None = None,
        state: PipelineState | None = None,
    ) -> tf.data.Dataset:
        """A batched ``tf.data.Dataset`` of one split, ready for ``model.fit``.

        Decoding runs in parallel (``tf.io`` for JPEG and PNG, PIL for TIFF, BMP,
        16-bit and other modes), images are converted to ``channels``, resized to
        ``image_size`` (bilinear, antialiased), cached decoded and resized
        (before augmentation), shuffled, batched, augmented on the fly (random
        left-right flip; for half the images a rotation up to 10 degrees and a zoom
        of 0.9-1.1; brightness and contrast; masks get the same geometry), scaled to
        ``input_range`` and prefetched.
        A file that became unreadable after indexing is dropped with a logged
        warning (see ``state`` to list them); in a shuffled split, samples of the
        next pass take its place so every epoch has the same number of batches.

        Args:
            split: "train", "val" or "test".
            image_size: ``(height, width)``.
            channels: 1 or 3.
            input_range: Output value range; ``(0, 1)`` divides by 255, ``(0, 255)`` keeps 8-bit values.
            batch_size: Batch size (the last batch may be smaller).
            augment: Augment batches; default True for "train" only.
            shuffle: Shuffle every epoch; default True for "train" only.
            cache: True caches in memory, a string caches to that file, False does not cache.
            with_masks: Also yield masks float32 ``[B,H,W,1]`` in {0, 1}.
            dedup: Drop test (or val) images byte-identical to a training image.
            seed: Seed for shuffling and augmentation (None: a fresh one each time).
                Epoch ``e`` of a seeded pipeline is shuffled and augmented the same
                way in every process.
            state: A :class:`~neuroxai.data.PipelineState` for this split
                (``PipelineState(len(ds.labels(split)))``): set the epoch whose
                randomness the next pass draws, and learn which files failed to
                decode (the :class:`~neuroxai.Trainer` uses one).

        Returns:
            ``tf.data.Dataset`` of ``(images float32 [B,H,W,C], labels int32 [B])``,
            or ``(images, labels, masks)`` with ``with_masks=True``.

        Raises:
            DataError: On a bad split, size, channel count or range, or
                ``with_masks=True`` on a dataset without masks.

        Example:
            >>> from neuroxai.data import phantoms
            >>> ds = phantoms(n_per_class=4, image_size=32)
            >>> x, y = next(iter(ds.pipeline("val", image_size=(32, 32), channels=1)))
            >>> x.shape[1:]
            TensorShape([32, 32, 1])
        """
        from neuroxai.data._pipeline import build_pipeline

        size, channels, rng = check_model_input(image_size, channels, input_range)
        if int(batch_size) < 1:
            raise DataError(f"batch_size must be >= 1; got {batch_size}.")
        if with_masks and not self.has_masks:
            raise DataError(
                f"with_masks=True but {self.source} has no masks; add <image>_mask.png files beside the images "
                "or a 'mask' column to the manifest."
            )
        augment = (split == "train") if augment is None else bool(augment)
        shuffle = (split == "train") if shuffle is None else bool(shuffle)
        idx = self._indices(split, dedup)
        source = self._source(idx)
        return build_pipeline(
            source,
            image_size=size,
            channels=channels,
            input_range=rng,
            batch_size=int(batch_size),
            augment=augment,
            shuffle=shuffle,
            cache=cache,
            with_masks=with_masks,
            seed=seed,
            state=state,
        )

    def _source(self, idx: np.ndarray) -> Source:
        from neuroxai.data._pipeline import Source

        labels = self._labels[idx]
        if self._paths is None:
            assert self._images is not None
            masks = [self._masks[i] for i in idx] if self._masks is not None else None
            return Source(labels=labels, images=[self._images[i] for i in idx], masks=masks)
        mpaths = [self._mask_paths[i] for i in idx]
        minfo = [self._mask_infos[m] if m else None for m in mpaths]
        return Source(
            labels=labels,
            paths=[self._paths[i] for i in idx],
            slices=None if self._slices is None else [self._slices[i] for i in idx],
            tf_ok=np.array([self._infos[i].tf_decodable for i in idx], dtype=bool),
            colour=np.array([self._infos[i].channels == 3 for i in idx], dtype=bool),
            mask_paths=mpaths,
            mask_tf_ok=np.array([m is not None and m.tf_decodable for m in minfo], dtype=bool),
            mask_colour=np.array([m is not None and m.channels == 3 for m in minfo], dtype=bool),
        )

    def arrays(
        self,
        split: str,
        *,
        image_size: tuple[int, int],
        channels: int,
        input_range: tuple[float, float] = (0.0, 1.0),
        dedup: bool = False,
        with_masks: bool = False,
        batch_size: int = 64,
    ) -> tuple[np.ndarray, ...]:
        """A whole split as numpy arrays (no augmentation, no shuffling, fixed order).

        Args:
            split: "train", "val" or "test".
            image_size: ``(height, width)``.
            channels: 1 or 3.
            input_range: Output value range.
            dedup: Drop duplicates of training images (see :meth:`labels`).
            with_masks: Also return masks.
            batch_size: Decode batch size.

        Returns:
            ``(x float32 [N,H,W,C], y int64 [N])`` or ``(x, y, masks bool [N,H,W])``,
            in the order of :meth:`paths` and :meth:`labels`.

        Raises:
            DataError: If files changed on disk since indexing and can no longer be read.
        """

        size, channels, rng = check_model_input(image_size, channels, input_range)
        if with_masks and not self.has_masks:
            raise DataError(f"with_masks=True but {self.source} has no masks.")
        idx = self._indices(split, dedup)
        y = self._labels[idx].copy()
        if len(idx) == 0:
            x = np.zeros((0, size[0], size[1], channels), np.float32)
            return (x, y, np.zeros((0, size[0], size[1]), bool)) if with_masks else (x, y)
        pipe = self._ordered_pipeline(idx, size, channels, rng, batch_size, with_masks=with_masks, ignore_errors=False)
        xs, ms = [], []
        try:
            for batch in pipe:
                xs.append(batch[0].numpy())
                if with_masks:
                    ms.append(batch[2].numpy()[..., 0] > 0.5)
        except Exception as exc:  # tf.errors.* from a file that went bad after indexing
            raise DataError(
                f"Reading split {split!r} of {self.source} failed: {str(exc).splitlines()[0]}. "
                "A file changed since the dataset was indexed; rebuild the Dataset."
            ) from exc
        x = np.concatenate(xs)
        return (x, y, np.concatenate(ms)) if with_masks else (x, y)

    def skipped_in(self, split: str) -> list[SkippedFile]:
        """The files skipped at indexing that the layout put in ``split`` (e.g. unreadable files under ``Testing/``).

        Files of a carved split have no split before they are read, so only
        splits given by the layout (Kaggle folders, a manifest's ``split``
        column) can list any.
        """
        split = self._check_split(split)
        return [s for s in self.skipped if self._skipped_split.get(s.path) == split]

    def _ordered_pipeline(
        self,
        idx: np.ndarray,
        size: tuple[int, int],
        channels: int,
        rng: tuple[float, float],
        batch_size: int,
        **options: Any,
    ) -> Any:
        """The samples ``idx`` in order, unaugmented and uncached: what :meth:`arrays` and :meth:`read_split` read."""
        from neuroxai.data._pipeline import build_pipeline  # imports TensorFlow: only on use

        return build_pipeline(
            self._source(idx),
            image_size=size,
            channels=channels,
            input_range=rng,
            batch_size=batch_size,
            augment=False,
            shuffle=False,
            cache=False,
            seed=0,
            **options,
        )

    def read_split(
        self,
        split: str,
        *,
        image_size: tuple[int, int],
        channels: int,
        input_range: tuple[float, float] = (0.0, 1.0),
        batch_size: int = 64,
    ) -> SplitImages:
        """A whole split as arrays, leaving out (and listing) the files that can no longer be read.

        Unlike :meth:`arrays`, a file that went bad after indexing does not
        stop the reading: it is left out and listed in
        :attr:`SplitImages.unreadable` with the reason, together with the
        split's files skipped at indexing (:meth:`skipped_in`).

        Args:
            split: "train", "val" or "test".
            image_size: ``(height, width)``.
            channels: 1 or 3.
            input_range: Output value range.
            batch_size: Decode batch size.

        Returns:
            A :class:`SplitImages`.
        """
        from neuroxai.data._images import probe_file
        from neuroxai.data._pipeline import PipelineState
        from neuroxai.data._slices import slice_problem

        size, channels, rng = check_model_input(image_size, channels, input_range)
        idx = self._indices(split)
        n = len(idx)
        xs: list[np.ndarray] = []
        read = np.zeros(0, np.int64)
        if n:
            state = PipelineState(n)
            pipe = self._ordered_pipeline(idx, size, channels, rng, batch_size, with_masks=False, state=state)
            xs = [batch[0].numpy() for batch in pipe]
            read = np.flatnonzero(state.read())
        x = np.concatenate(xs) if xs else np.zeros((0, size[0], size[1], channels), np.float32)
        unreadable = list(self.skipped_in(split))
        if self._paths is not None:
            for k in sorted(set(range(n)) - set(read.tolist())):
                path = self._paths[int(idx[k])]
                ref = None if self._slices is None else self._slices[int(idx[k])]
                if ref is not None:
                    path, reason = ref.name, slice_problem(ref)
                else:
                    why = probe_file(path)
                    reason = why if isinstance(why, str) else "could not be decoded by the tf.data pipeline"
                unreadable.append(SkippedFile(path, f"{reason}; it became unreadable after indexing and was left out"))
                log.warning("%r: %s", path, unreadable[-1].reason)
        return SplitImages(x=x, labels=self._labels[idx][read], positions=read, unreadable=tuple(unreadable))

    # ------------------------------------------------------------------ audit
    def audit(
        self,
        progress: bool = True,
        *,
        near_threshold: int | None = None,
        against: Dataset | str | os.PathLike[str] | None = None,
    ) -> AuditReport:
        """Audit the data: counts, sizes, modes, unreadable files, exact and near duplicates, straddling groups.

        Args:
            progress: Show a progress bar while comparing hashes.
            near_threshold: Maximum Hamming distance between 64-bit perceptual
                hashes for two images to count as near duplicates (default
                :data:`neuroxai.data.NEAR_DUPLICATE_THRESHOLD`).
            against: A second dataset (a :class:`Dataset`, or a path read with
                no carved splits): the report's ``copies`` then lists the images
                of this one that are copies of its images, resized, re-encoded or
                contrast-stretched (:func:`neuroxai.data.find_copies`), with their
                split and patient there.

        Returns:
            An :class:`~neuroxai.data.AuditReport` (attributes, ``.to_dict()``, ``.format()``).
        """
        from neuroxai.data._audit import NEAR_DUPLICATE_THRESHOLD, audit_dataset
        from neuroxai.data._copies import find_copies

        thr = NEAR_DUPLICATE_THRESHOLD if near_threshold is None else int(near_threshold)
        report = audit_dataset(self, near_threshold=thr, progress=progress)
        if against is None:
            return report
        other = (
            against if isinstance(against, Dataset) else Dataset(against, val_fraction=0.0, test_fraction=0.0, progress=progress)
        )
        return replace(report, copies=find_copies(self, other, progress=progress))
