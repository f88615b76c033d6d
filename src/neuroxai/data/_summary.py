"""Typed descriptions of a dataset: :class:`DatasetSummary` (for run specs and logs) and :class:`GroupReport`."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from neuroxai._io import display_path
from neuroxai._records import Record
from neuroxai.data._files import SkippedFile

__all__ = ["DatasetSummary", "DuplicateSummary", "GroupReport", "StraddlingGroup", "group_report"]

_SPLIT_ORDER = ("train", "val", "test")


@dataclass(frozen=True)
class StraddlingGroup(Record):
    """A group (patient) with samples on more than one side of the splits.

    Attributes:
        group: The group's name (e.g. the patient id).
        counts: Number of its samples per split, for the splits it is in.
    """

    group: str
    counts: dict[str, int]


@dataclass(frozen=True)
class GroupReport(Record):
    """How the samples' groups (patients) fall into the splits.

    Attributes:
        column: Where the groups came from: the manifest column (``"patient"``,
            ``"group"`` or ``"groups"``) or ``"groups"`` for ``from_arrays(groups=...)``.
        groups: Number of distinct groups.
        ungrouped: Number of samples without a group (each counts as its own group when splitting).
        per_split: Number of groups with at least one sample in each split.
        straddling: The groups with samples in more than one split (empty when
            every split was carved; only splits given by a manifest or by
            ``splits=`` can put a group on two sides).
    """

    column: str
    groups: int
    ungrouped: int
    per_split: dict[str, int]
    straddling: tuple[StraddlingGroup, ...] = ()

    @property
    def noun(self) -> str:
        """``"patients"`` for a patient column, else ``"groups"`` (for messages)."""
        return "patients" if self.column == "patient" else "groups"

    def format(self, max_groups: int = 5) -> str:
        """Two or more lines of text: groups per split, and the groups that straddle splits.

        Args:
            max_groups: How many straddling groups to list by name.
        """
        split_text = ", ".join(f"{s} {self.per_split.get(s, 0)}" for s in _SPLIT_ORDER)
        extra = f"; {self.ungrouped} samples without one" if self.ungrouped else ""
        lines = [f"  {self.noun} ({self.column} column): {self.groups} ({split_text}){extra}"]
        lines.append(f"  {self.noun} on more than one side of the splits: {len(self.straddling)}")
        for g in self.straddling[:max_groups]:
            lines.append(f"    {display_path(g.group)}: " + ", ".join(f"{s} {n}" for s, n in g.counts.items()))
        if len(self.straddling) > max_groups:
            lines.append(f"    ... and {len(self.straddling) - max_groups} more (use --format json for all)")
        if self.straddling:
            lines.append(
                f"    -> the given splits share {self.noun}; carve them instead (drop the split column) to keep them apart"
            )
        return "\n".join(lines)


def group_report(column: str, groups: Sequence[str | None], splits: Sequence[str]) -> GroupReport:
    """Build the :class:`GroupReport` of samples with ``groups`` placed in ``splits`` (one entry per sample)."""
    per_group: dict[str, Counter[str]] = defaultdict(Counter)
    ungrouped = 0
    for g, s in zip(groups, splits):
        if g is None:
            ungrouped += 1
        else:
            per_group[g][str(s)] += 1
    per_split = {s: sum(1 for c in per_group.values() if c[s]) for s in _SPLIT_ORDER}
    straddling = tuple(
        StraddlingGroup(g, {s: c[s] for s in _SPLIT_ORDER if c[s]}) for g, c in sorted(per_group.items()) if len(c) > 1
    )
    return GroupReport(column=column, groups=len(per_group), ungrouped=ungrouped, per_split=per_split, straddling=straddling)


@dataclass(frozen=True)
class DuplicateSummary(Record):
    """Duplicates that matter for evaluation.

    Attributes:
        test_in_train: Number of test samples byte-identical to a training-side
            sample (``dedup=True`` drops them).
    """

    test_in_train: int


@dataclass(frozen=True)
class DatasetSummary(Record):
    """What :meth:`Dataset.summary` reports: a dataset's source, classes, splits and settings.

    Attributes:
        source: The path read (``"arrays"`` for in-memory data).
        layout: ``"kaggle"``, ``"train-only"``, ``"class-folders"``, ``"manifest"`` or ``"arrays"``.
        class_names: Class names, in label order.
        counts: Samples per split and class: ``{split: {class: n}}``.
        skipped: Number of files skipped (see :attr:`Dataset.skipped`).
        has_masks: True when at least one sample has a segmentation mask.
        duplicates: Test samples with a byte-identical copy on the training side.
        seed: Seed of the carved splits.
        val_fraction: Fraction of each class carved for validation (when carved).
        test_fraction: Fraction of each class carved for testing (when carved).
        groups: How the groups (patients) fall into the splits; ``None`` without groups.
        fold: ``(index, k)`` for a dataset made by :meth:`Dataset.kfold`, else ``None``.
        used: Images a run actually used per split (``{"train": n, "val": n, "test": n}``):
            the counts less the files that failed to decode while training or
            evaluating. Empty in :meth:`Dataset.summary`; the
            :class:`~neuroxai.Trainer` fills it in for ``neuroxai.json``.
        unreadable: The files that failed while a run read them (after
            indexing), with the reason; see :attr:`neuroxai.Trainer.unreadable_`.
    """

    source: str
    layout: str
    class_names: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    skipped: int
    has_masks: bool
    duplicates: DuplicateSummary
    seed: int
    val_fraction: float
    test_fraction: float
    groups: GroupReport | None = None
    fold: tuple[int, int] | None = None
    used: dict[str, int] = field(default_factory=dict)
    unreadable: tuple[SkippedFile, ...] = ()
