"""Stratified, seeded, duplicate-aware splitting."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["carve"]


def carve(
    labels: np.ndarray,
    groups: Sequence[str],
    fractions: Sequence[float],
    seed: int,
) -> list[np.ndarray]:
    """Carve disjoint, stratified parts out of a set of samples.

    For each class, byte-identical samples (same ``groups`` key) are kept
    together, groups are shuffled with ``seed`` and dealt into the parts until
    each holds ``round(fraction * class_count)`` samples; a group of duplicates
    that would overshoot a part goes to the remainder (training) instead, so a
    part is never larger than asked. A class with at least two samples keeps at
    least one sample in the remainder.

    Args:
        labels: Integer class per sample.
        groups: Duplicate key per sample (e.g. a content hash).
        fractions: Fraction of each class for each carved part.
        seed: Random seed; the same seed gives the same parts.

    Returns:
        One array of sample indices per fraction, then the remainder (sorted).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        by_group: dict[str, list[int]] = {}
        for i in members:
            by_group.setdefault(groups[i], []).append(int(i))
        keys = sorted(by_group)
        order = rng.permutation(len(keys))
        n = len(members)
        targets = [round(f * n) for f in fractions]
        if n >= 2 and sum(targets) >= n:  # always leave one for the remainder
            excess = sum(targets) - (n - 1)
            for k in range(len(targets) - 1, -1, -1):
                cut = min(excess, targets[k])
                targets[k] -= cut
                excess -= cut
        filled = [0] * len(fractions)
        for j in order:
            group = by_group[keys[j]]
            for k in range(len(fractions)):
                if filled[k] + len(group) <= targets[k]:
                    parts[k].extend(group)
                    filled[k] += len(group)
                    break
            else:
                parts[-1].extend(group)
    return [np.array(sorted(p), dtype=np.int64) for p in parts]
