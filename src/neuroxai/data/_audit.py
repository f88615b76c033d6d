"""Data audit: counts, image sizes and modes, unreadable files, exact and near duplicates.

Exact duplicates share the BLAKE2b hash of their file bytes (computed while
indexing). Near duplicates share a 64-bit perceptual hash (pHash: the signs,
against their median, of the 8x8 lowest-frequency DCT coefficients of a 32x32
grayscale thumbnail) up to :data:`NEAR_DUPLICATE_THRESHOLD` differing bits.
Pairs are found by vectorised XOR + popcount over blocks of hashes (no Python
loop over pairs) and grouped with union-find.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from neuroxai._io import display_path, printable
from neuroxai._progress import progress as _progress
from neuroxai._records import Record
from neuroxai.data._copies import CopyReport
from neuroxai.data._files import SkippedFile
from neuroxai.data._summary import GroupReport

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.data._dataset import Dataset

__all__ = ["NEAR_DUPLICATE_THRESHOLD", "AuditReport", "DuplicateReport", "LabelConflict", "near_pairs", "phash"]

#: Two images whose 64-bit pHashes differ in at most this many bits are near
#: duplicates. 4 of 64 bits catches re-encoded, rescaled and contrast-shifted
#: copies of one slice. Measured on the Kaggle brain MRI data: at 4 the largest
#: group has 28 images of one slice; at 6 distinct slices start chaining into
#: groups of 150+ images; at 8 into one group of 2600. (pHash distances are
#: always even here: each hash has a fixed number of set bits.)
NEAR_DUPLICATE_THRESHOLD = 4

_BLOCK = 1024


def phash(thumbs: np.ndarray) -> np.ndarray:
    """64-bit perceptual hashes of grayscale thumbnails.

    Args:
        thumbs: ``[N, 32, 32]`` uint8 (or float) grayscale thumbnails.

    Returns:
        uint64 ``[N]``: bit k is set where DCT coefficient k of the top-left 8x8
        block is above the block's median (DC excluded from the median).
    """
    from scipy.fft import dctn

    if len(thumbs) == 0:
        return np.zeros(0, np.uint64)
    coeffs = dctn(np.asarray(thumbs, np.float32), axes=(1, 2), norm="ortho")[:, :8, :8].reshape(len(thumbs), 64)
    med = np.median(coeffs[:, 1:], axis=1, keepdims=True)
    bits = coeffs > med
    return np.packbits(bits, axis=1).view(">u8").astype(np.uint64).reshape(-1)


def near_pairs(hashes: np.ndarray, threshold: int, *, progress: bool = False) -> np.ndarray:
    """All pairs ``(i, j)``, ``i < j``, whose hashes differ in at most ``threshold`` bits.

    Vectorised: XOR and popcount over ``[block, N]`` slices.

    Returns:
        int64 ``[P, 2]``.
    """
    n = len(hashes)
    out: list[np.ndarray] = []
    starts = range(0, n, _BLOCK)
    for start in _progress(starts, total=len(starts), desc="Comparing hashes", unit="block", enabled=progress and n > 2000):
        block = hashes[start : start + _BLOCK]
        rest = hashes[start:]
        dist = np.bitwise_count(block[:, None] ^ rest[None, :])
        i, j = np.nonzero(dist <= threshold)
        keep = j > i
        out.append(np.stack([i[keep] + start, j[keep] + start], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


def _components(n: int, pairs: np.ndarray) -> list[list[int]]:
    """Connected components (size > 1) of an undirected graph given as edge pairs."""
    if len(pairs) == 0:
        return []
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = defaultdict(list)
    for i, c in enumerate(comp):
        groups[int(c)].append(i)
    return [g for g in groups.values() if len(g) > 1]


@dataclass(frozen=True)
class LabelConflict(Record):
    """A group of duplicates whose labels disagree.

    Attributes:
        kind: ``"exact"`` (same bytes) or ``"near"`` (perceptual hash).
        paths: The files (or ``<split[i]>`` for in-memory data), sorted.
        labels: The class of each, in the same order.
    """

    kind: str
    paths: tuple[str, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class DuplicateReport(Record):
    """Exact and near duplicates found by :meth:`Dataset.audit`.

    Attributes:
        hash: How exact duplicates are found.
        perceptual_hash: How near duplicates are found.
        near_threshold: Largest number of differing pHash bits for a near duplicate.
        distinct_images: Number of distinct file contents.
        exact_within_split: Groups of byte-identical files (paths) inside one split.
        exact_cross_split: Groups of byte-identical files spanning splits.
        near_within_split: Groups of near duplicates (not byte-identical) inside one split.
        near_cross_split: Groups of near duplicates spanning splits.
        test_with_train_copy: Test files byte-identical to a training-side file.
        test_with_train_copy_by_class: The same, per class.
        label_conflicts: Duplicate groups whose labels disagree.
    """

    hash: str
    perceptual_hash: str
    near_threshold: int
    distinct_images: int
    exact_within_split: tuple[tuple[str, ...], ...]
    exact_cross_split: tuple[tuple[str, ...], ...]
    near_within_split: tuple[tuple[str, ...], ...]
    near_cross_split: tuple[tuple[str, ...], ...]
    test_with_train_copy: int
    test_with_train_copy_by_class: dict[str, int]
    label_conflicts: tuple[LabelConflict, ...]


@dataclass(frozen=True)
class AuditReport(Record):
    """The result of :meth:`Dataset.audit`.

    ``to_dict()`` gives the JSON object (the same keys as these attributes);
    :meth:`format` the readable text ``neuroxai audit`` prints.

    Attributes:
        source: The path audited (``"arrays"`` for in-memory data).
        layout: The layout found (see :class:`DatasetSummary`).
        images: Number of images read.
        class_names: Class names, in label order.
        classes: Samples per split and class: ``{split: {class: n}}``.
        skipped: Files not used, with the reason.
        sizes: Histogram of image sizes (``{"WxH": n}``), most common first.
        modes: Histogram of PIL modes.
        formats: Histogram of file formats.
        duplicates: Exact and near duplicates and label conflicts.
        groups: How the groups (patients) fall into the splits, and those on
            more than one side; ``None`` when the data has no groups.
        copies: Images that are copies of another dataset's (``audit(against=...)``), else ``None``.
    """

    source: str
    layout: str
    images: int
    class_names: tuple[str, ...]
    classes: dict[str, dict[str, int]]
    skipped: tuple[SkippedFile, ...]
    sizes: dict[str, int]
    modes: dict[str, int]
    formats: dict[str, int]
    duplicates: DuplicateReport
    groups: GroupReport | None = None
    copies: CopyReport | None = None

    def format(self, max_groups: int = 5) -> str:
        """A readable, multi-line text report.

        Args:
            max_groups: How many duplicate groups, straddling groups and skipped files to list.

        Returns:
            The text, without a trailing newline. File and class names are shown with their control characters
            escaped (:func:`~neuroxai._io.display_path`), so a name cannot forge a line or reverse the text around it.
        """
        dup = self.duplicates
        lines = [
            f"Audit of {display_path(self.source)} ({self.layout} layout)",
            f"  images read: {self.images}, skipped: {len(self.skipped)}",
        ]
        names = self.class_names
        shown = [printable(c) for c in names]
        width = max(max((len(c) for c in shown), default=5), 6) + 2
        lines.append("  " + "split".ljust(6) + "".join(c.rjust(width) for c in shown) + "total".rjust(8))
        for split, counts in self.classes.items():
            total = sum(counts.values())
            if total:
                lines.append("  " + split.ljust(6) + "".join(str(counts[c]).rjust(width) for c in names) + str(total).rjust(8))

        def top(hist: dict[str, int]) -> str:
            text = ", ".join(f"{k}: {v}" for k, v in sorted(hist.items(), key=lambda kv: -kv[1])[:6])
            return text + (" ..." if len(hist) > 6 else "")

        lines.append(f"  sizes: {top(self.sizes)}")
        lines.append(f"  modes: {top(self.modes)}")
        lines.append(f"  formats: {top(self.formats)}")
        if self.skipped:
            lines.append("  skipped files:")
            for s in self.skipped[:max_groups]:
                lines.append(f"    {display_path(s.path)}: {printable(s.reason)}")
            if len(self.skipped) > max_groups:
                lines.append(f"    ... and {len(self.skipped) - max_groups} more (use --format json for all)")
        if self.groups is not None:
            lines.append(self.groups.format(max_groups))
        lines.append(
            f"  exact duplicates (same bytes): {len(dup.exact_within_split)} groups within a split, "
            f"{len(dup.exact_cross_split)} groups across splits"
        )
        by_class = ", ".join(f"{printable(k)} {v}" for k, v in dup.test_with_train_copy_by_class.items() if v)
        lines.append(
            f"  test files with a byte-identical copy in training: {dup.test_with_train_copy}"
            + (f" ({by_class})" if by_class else "")
        )
        if dup.test_with_train_copy:
            lines.append("    -> report accuracy on the de-duplicated test set too (dedup=True)")
        lines.append(
            f"  near duplicates (pHash, <= {dup.near_threshold} of 64 bits): {len(dup.near_within_split)} groups "
            f"within a split, {len(dup.near_cross_split)} groups across splits"
        )
        for g in dup.near_cross_split[:max_groups]:
            lines.append("    " + "  ~  ".join(display_path(p) for p in g))
        lines.append(f"  duplicate groups whose labels disagree: {len(dup.label_conflicts)}")
        for c in dup.label_conflicts[:max_groups]:
            lines.append(
                f"    [{c.kind}] " + ", ".join(f"{display_path(p)} ({printable(lab)})" for p, lab in zip(c.paths, c.labels))
            )
        if self.copies is not None:
            lines.append(self.copies.format(max_groups))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def audit_dataset(ds: Dataset, *, near_threshold: int, progress: bool = True) -> AuditReport:
    """Build the :class:`AuditReport` of a dataset (see :meth:`Dataset.audit`)."""
    n = len(ds)
    splits = ds._splits
    labels = ds._labels
    names = ds.class_names
    ident = ds._sample_names()  # files, volume slices (volume[slice z]) or <split[k]> for in-memory data
    infos = ds._infos
    sizes = Counter(f"{i.width}x{i.height}" for i in infos)
    modes = Counter(i.mode for i in infos)
    formats = Counter(i.format for i in infos)

    def describe(groups: list[list[int]]) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
        within: list[tuple[str, ...]] = []
        cross: list[tuple[str, ...]] = []
        for g in sorted(groups, key=lambda g: ident[g[0]]):
            paths = tuple(ident[i] for i in sorted(g, key=lambda i: ident[i]))
            (cross if len({splits[i] for i in g}) > 1 else within).append(paths)
        return tuple(within), tuple(cross)

    by_digest: dict[str, list[int]] = defaultdict(list)
    for i, dg in enumerate(ds._digests):
        by_digest[dg].append(i)
    exact_groups = [g for g in by_digest.values() if len(g) > 1]
    exact_within, exact_cross = describe(exact_groups)

    hashes = phash(ds._thumbs)
    pairs = near_pairs(hashes, near_threshold, progress=progress)
    near_groups = [g for g in _components(n, pairs) if len({ds._digests[i] for i in g}) > 1]
    near_within, near_cross = describe(near_groups)

    conflicts: list[LabelConflict] = []
    for kind, groups in (("exact", exact_groups), ("near", near_groups)):
        for g in groups:
            if len({int(labels[i]) for i in g}) > 1:
                g = sorted(g, key=lambda i: ident[i])
                conflicts.append(LabelConflict(kind, tuple(ident[i] for i in g), tuple(names[labels[i]] for i in g)))

    dup_test = ds.duplicate_test_indices()
    test_labels = ds.labels("test")[dup_test]
    by_class = {c: int(np.sum(test_labels == k)) for k, c in enumerate(names)}
    return AuditReport(
        source=ds.source,
        layout=ds.layout,
        images=n,
        class_names=tuple(names),
        classes=ds.counts(),
        skipped=tuple(ds.skipped),
        sizes=dict(sizes.most_common()),
        modes=dict(modes.most_common()),
        formats=dict(formats.most_common()),
        duplicates=DuplicateReport(
            hash="blake2b-128 of the file bytes",
            perceptual_hash="pHash-64 (8x8 low-frequency DCT of a 32x32 grayscale thumbnail)",
            near_threshold=int(near_threshold),
            distinct_images=len(by_digest),
            exact_within_split=exact_within,
            exact_cross_split=exact_cross,
            near_within_split=near_within,
            near_cross_split=near_cross,
            test_with_train_copy=len(dup_test),
            test_with_train_copy_by_class=by_class,
            label_conflicts=tuple(conflicts),
        ),
        groups=ds._group_report(),
    )
