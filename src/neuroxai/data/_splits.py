"""Stratified, seeded, duplicate-aware and (optionally) group-aware splitting: the one place splits are carved."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["carve"]


def _targets(n: int, fractions: Sequence[float]) -> list[int]:
    """``round(fraction * n)`` per part, leaving at least one sample for the remainder when ``n >= 2``."""
    targets = [round(f * n) for f in fractions]
    if n >= 2 and sum(targets) >= n:  # always leave one for the remainder
        excess = sum(targets) - (n - 1)
        for k in range(len(targets) - 1, -1, -1):
            cut = min(excess, targets[k])
            targets[k] -= cut
            excess -= cut
    return targets


def carve(
    labels: np.ndarray,
    duplicates: Sequence[str],
    fractions: Sequence[float],
    seed: int,
    groups: Sequence[str | None] | None = None,
) -> list[np.ndarray]:
    """Carve disjoint, stratified parts out of a set of samples.

    Without ``groups``: for each class, byte-identical samples (same
    ``duplicates`` key) are kept together, these units are shuffled with
    ``seed`` and dealt into the parts until each holds
    ``round(fraction * class_count)`` samples; a unit that would overshoot a
    part goes to the remainder (training) instead, so a part is never larger
    than asked.

    With ``groups``: samples sharing a group (e.g. a patient) or a duplicate
    key form one unit, which goes to one side whole, even across classes. The
    units are shuffled with ``seed`` and each goes to the first part it brings
    closer to its per-class targets (the sum over classes of
    ``|filled - target|`` drops), else to the remainder; so every group is on
    one side and each part ends within about half a unit of its target per
    class. A sample whose group is ``None`` is a group of its own.

    In both modes a class with at least two samples keeps at least one sample
    in the remainder.

    Args:
        labels: Integer class per sample.
        duplicates: Duplicate key per sample (e.g. a content hash).
        fractions: Fraction of each class for each carved part.
        seed: Random seed; the same seed gives the same parts.
        groups: Optional group per sample (``None``: no group).

    Returns:
        One array of sample indices per fraction, then the remainder (sorted).
    """
    labels = np.asarray(labels)
    if groups is not None and any(g is not None for g in groups):
        return _carve_grouped(labels, duplicates, fractions, seed, groups)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        by_key: dict[str, list[int]] = {}
        for i in members:
            by_key.setdefault(duplicates[int(i)], []).append(int(i))
        keys = sorted(by_key)
        order = rng.permutation(len(keys))
        targets = _targets(len(members), fractions)
        filled = [0] * len(fractions)
        for j in order:
            unit = by_key[keys[j]]
            for k in range(len(fractions)):
                if filled[k] + len(unit) <= targets[k]:
                    parts[k].extend(unit)
                    filled[k] += len(unit)
                    break
            else:
                parts[-1].extend(unit)
    return [np.array(sorted(p), dtype=np.int64) for p in parts]


def _units(duplicates: Sequence[str], groups: Sequence[str | None]) -> list[list[int]]:
    """Connected sets of samples sharing a group or a duplicate key, ordered by their first sample."""
    parent = list(range(len(duplicates)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, (dup, group) in enumerate(zip(duplicates, groups)):
        for key in (("d", dup), ("g", group)) if group is not None else (("d", dup),):
            j = first.setdefault(key, i)
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    units: dict[int, list[int]] = {}
    for i in range(len(parent)):
        units.setdefault(find(i), []).append(i)
    return [units[r] for r in sorted(units)]


def _carve_grouped(
    labels: np.ndarray, duplicates: Sequence[str], fractions: Sequence[float], seed: int, groups: Sequence[str | None]
) -> list[np.ndarray]:
    classes, codes = np.unique(labels, return_inverse=True)
    totals = np.bincount(codes, minlength=len(classes))
    targets = np.array([_targets(int(t), fractions) for t in totals], dtype=np.int64).T.reshape(len(fractions), len(classes))
    units = _units(duplicates, groups)
    hist = np.stack([np.bincount(codes[u], minlength=len(classes)) for u in units]) if units else np.zeros((0, len(classes)))
    filled = np.zeros((len(fractions), len(classes)), np.int64)
    carved = np.zeros(len(classes), np.int64)
    keep_one = totals >= 2
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for j in np.random.default_rng(seed).permutation(len(units)):
        u = hist[j]
        side = len(fractions)  # the remainder
        if not np.any(keep_one & (u > 0) & (carved + u > totals - 1)):
            for k in range(len(fractions)):
                if np.abs(filled[k] + u - targets[k]).sum() < np.abs(filled[k] - targets[k]).sum():
                    side = k
                    filled[k] += u
                    carved += u
                    break
        parts[side].extend(units[j])
    return [np.array(sorted(p), dtype=np.int64) for p in parts]
