"""Stratified, seeded, duplicate-aware splits (hypothesis properties)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroxai.data import Dataset
from neuroxai.data._splits import carve


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(1, 40), min_size=1, max_size=5),
    val=st.floats(0.0, 0.5),
    test=st.floats(0.0, 0.4),
    seed=st.integers(0, 2**31 - 1),
)
def test_carve_partitions_stratifies_and_is_seeded(counts: list[int], val: float, test: float, seed: int) -> None:
    labels = np.concatenate([np.full(n, k) for k, n in enumerate(counts)])
    groups = [f"g{i}" for i in range(len(labels))]  # all distinct
    parts = carve(labels, groups, [val, test], seed)
    allidx = np.concatenate(parts)
    assert sorted(allidx.tolist()) == list(range(len(labels)))  # a partition
    for k, n in enumerate(counts):
        got_val = int(np.sum(labels[parts[0]] == k))
        got_test = int(np.sum(labels[parts[1]] == k))
        left = int(np.sum(labels[parts[2]] == k))
        # each class split in the requested proportions (rounded), one always kept for training
        if n >= 2:
            assert left >= 1
            assert got_val <= round(val * n) and got_test <= round(test * n)
            if round(val * n) + round(test * n) < n:
                assert got_val == round(val * n) and got_test == round(test * n)
    again = carve(labels, groups, [val, test], seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


@settings(max_examples=25, deadline=None)
@given(n_dup=st.integers(2, 6), seed=st.integers(0, 10_000))
def test_carve_keeps_byte_identical_files_on_one_side(n_dup: int, seed: int) -> None:
    labels = np.zeros(30, int)
    groups = [f"u{i}" for i in range(30)]
    for i in range(n_dup):
        groups[i] = "same"
    parts = carve(labels, groups, [0.3], seed)
    sides = {int(np.searchsorted(np.sort(np.concatenate(list(parts))), 0))}
    where = [k for k, p in enumerate(parts) for i in range(n_dup) if i in set(p.tolist())]
    assert len(set(where)) == 1 and len(where) == n_dup and sides


def test_dataset_split_is_deterministic_per_seed_and_differs_across_seeds() -> None:
    x = (np.arange(60)[:, None, None] * np.ones((1, 4, 4))).astype(np.uint8)  # 60 distinct images
    y = np.arange(60) % 3
    a = Dataset.from_arrays(x, y, class_names=["a", "b", "c"], seed=5)
    b = Dataset.from_arrays(x, y, class_names=["a", "b", "c"], seed=5)
    c = Dataset.from_arrays(x, y, class_names=["a", "b", "c"], seed=6)
    assert np.array_equal(a._splits, b._splits)
    assert not np.array_equal(a._splits, c._splits)
    assert a.counts()["val"] == {"a": 3, "b": 3, "c": 3}
