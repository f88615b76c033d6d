"""Grouped (patient-wise) splits: no group on two sides of a carved split, roughly stratified, seeded."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from datatest_helpers import pattern, write_image
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroxai.data import Dataset, DatasetSummary
from neuroxai.data._splits import carve
from neuroxai.errors import DataError


def _sides(parts: list[np.ndarray]) -> dict[int, int]:
    return {int(i): k for k, p in enumerate(parts) for i in p}


@st.composite
def grouped_samples(draw: st.DrawFn) -> tuple[np.ndarray, list[str | None], list[str], int]:
    """Samples in groups of 1..max_size (mostly one class each, sometimes two), some ungrouped, a few duplicates."""
    n_classes = draw(st.integers(1, 4))
    max_size = draw(st.integers(1, 6))
    n_groups = draw(st.integers(1, 60))
    labels: list[int] = []
    groups: list[str | None] = []
    for g in range(n_groups):
        cls = draw(st.integers(0, n_classes - 1))
        size = draw(st.integers(1, max_size))
        mixed = draw(st.booleans()) and draw(st.integers(0, 9)) == 0  # a few groups span two classes
        for k in range(size):
            labels.append((cls + (k % 2 if mixed else 0)) % n_classes)
            groups.append(None if draw(st.integers(0, 19)) == 0 else f"g{g}")
    dups = [f"u{i}" for i in range(len(labels))]
    for _ in range(draw(st.integers(0, 3))):  # byte-identical copies, possibly across groups
        i, j = draw(st.integers(0, len(labels) - 1)), draw(st.integers(0, len(labels) - 1))
        dups[j] = dups[i]
    return np.array(labels), groups, dups, max_size


@settings(max_examples=60, deadline=None)
@given(data=grouped_samples(), val=st.floats(0.0, 0.4), test=st.floats(0.0, 0.4), seed=st.integers(0, 2**31 - 1))
def test_grouped_carve_never_puts_a_group_on_two_sides(
    data: tuple[np.ndarray, list[str | None], list[str], int], val: float, test: float, seed: int
) -> None:
    labels, groups, dups, max_size = data
    parts = carve(labels, dups, [val, test], seed, groups)
    side = _sides(parts)
    assert sorted(side) == list(range(len(labels)))  # a partition
    by_group: dict[str, set[int]] = defaultdict(set)
    by_dup: dict[str, set[int]] = defaultdict(set)
    for i, (g, d) in enumerate(zip(groups, dups)):
        if g is not None:
            by_group[g].add(side[i])
        by_dup[d].add(side[i])
    assert all(len(s) == 1 for s in by_group.values())  # no group on two sides
    assert all(len(s) == 1 for s in by_dup.values())  # byte-identical copies together
    # roughly stratified: each part within one (largest) group of its per-class target, when there is room
    for k, frac in enumerate((val, test)):
        for c in np.unique(labels):
            n = int(np.sum(labels == c))
            got = int(np.sum(labels[parts[k]] == c))
            target = round(frac * n)
            if round(val * n) + round(test * n) <= n - 3 * max_size:
                assert abs(got - target) <= 2 * max_size, (k, c, got, target)
            if n >= 2:
                assert int(np.sum(labels[parts[-1]] == c)) >= 1  # training keeps every class
    assert all(np.array_equal(a, b) for a, b in zip(parts, carve(labels, dups, [val, test], seed, groups)))


def test_grouped_carve_hits_the_fractions_on_many_groups() -> None:
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 25, 300)
    labels = np.concatenate([np.full(s, rng.integers(0, 3)) for s in sizes])
    groups: list[str | None] = [f"p{g}" for g, s in enumerate(sizes) for _ in range(s)]
    parts = carve(labels, [str(i) for i in range(len(labels))], [0.15, 0.15], 1337, groups)
    for k in (0, 1):
        for c in range(3):
            n = int(np.sum(labels == c))
            assert abs(int(np.sum(labels[parts[k]] == c)) / n - 0.15) < 0.02


def test_carve_without_groups_is_unchanged() -> None:
    labels = np.arange(40) % 3
    dups = [str(i) for i in range(40)]
    plain = carve(labels, dups, [0.2, 0.2], 7)
    assert all(np.array_equal(a, b) for a, b in zip(plain, carve(labels, dups, [0.2, 0.2], 7, [None] * 40)))


def _patients(n_patients: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 7, n_patients)
    labels = np.concatenate([np.full(s, p % 3) for p, s in enumerate(sizes)])
    groups = [f"pt{p:03d}" for p, s in enumerate(sizes) for _ in range(s)]
    images = np.stack([np.full((6, 6), i % 256, np.uint8) + np.eye(6, dtype=np.uint8) * (i // 256) for i in range(len(labels))])
    return images, labels, groups


def _assert_patient_disjoint(ds: Dataset) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for split in ("train", "val", "test"):
        for g in ds.groups(split):
            assert g is not None
            seen[g].add(split)
    assert all(len(s) == 1 for s in seen.values()), {g: s for g, s in seen.items() if len(s) > 1}
    return seen


def test_from_arrays_groups_keep_patients_on_one_side() -> None:
    images, labels, groups = _patients()
    ds = Dataset.from_arrays(images, labels, class_names=["a", "b", "c"], groups=groups, seed=3)
    seen = _assert_patient_disjoint(ds)
    assert {s for sides in seen.values() for s in sides} == {"train", "val", "test"}
    assert len(ds.groups("train")) == len(ds.labels("train"))
    summary = ds.summary()
    assert summary.groups is not None and summary.groups.groups == 24 and summary.groups.straddling == ()
    assert summary.groups.per_split["train"] + summary.groups.per_split["val"] + summary.groups.per_split["test"] == 24
    assert DatasetSummary.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary
    other = Dataset.from_arrays(images, labels, class_names=["a", "b", "c"], groups=groups, seed=3)
    assert ds.paths("val") == other.paths("val") and ds.groups("val") == other.groups("val")  # seeded
    with pytest.raises(DataError, match="one group per image"):
        Dataset.from_arrays(images, labels, class_names=["a", "b", "c"], groups=groups[:-1])


def test_given_splits_are_kept_and_straddlers_reported(caplog: pytest.LogCaptureFixture) -> None:
    images, labels, groups = _patients()
    splits = ["test" if i % 7 == 0 else "train" for i in range(len(labels))]  # ignores patients on purpose
    with caplog.at_level("WARNING", logger="neuroxai"):
        ds = Dataset.from_arrays(images, labels, class_names=["a", "b", "c"], groups=groups, splits=splits)
    assert [s for s in splits if s == "test"] == ["test"] * len(ds.labels("test"))  # given test kept as is
    report = ds.summary().groups
    assert report is not None and len(report.straddling) > 0
    assert "more than one side" in caplog.text
    # val is still carved by patient from the training pool: no patient in both train and val
    train, val = set(ds.groups("train")), set(ds.groups("val"))
    assert val and not (train & val)


def test_kfold_is_grouped_stratified_and_keeps_test() -> None:
    images, labels, groups = _patients(30)
    ds = Dataset.from_arrays(images, labels, class_names=["a", "b", "c"], groups=groups, seed=1)
    folds = ds.kfold(3, seed=0)
    assert [f.fold for f in folds] == [(0, 3), (1, 3), (2, 3)] and folds[1].summary().fold == (1, 3)
    pool = len(ds.labels("train")) + len(ds.labels("val"))
    vals = [set(f.groups("val")) for f in folds]
    assert sum(len(f.labels("val")) for f in folds) == pool  # every training-side sample validated once
    assert not (vals[0] & vals[1]) and not (vals[1] & vals[2]) and not (vals[0] & vals[2])
    for f in folds:
        _assert_patient_disjoint(f)
        assert f.groups("test") == ds.groups("test")
        assert len(f.labels("train")) + len(f.labels("val")) == pool
    assert ds.fold is None and ds.labels("val").size  # the original is untouched
    with pytest.raises(DataError, match="k must be an integer >= 2"):
        ds.kfold(1)


def test_kfold_without_groups_is_stratified() -> None:
    x = (np.arange(60)[:, None, None] * np.ones((1, 4, 4))).astype(np.uint8)
    ds = Dataset.from_arrays(x, np.arange(60) % 2, class_names=["a", "b"], splits=["train"] * 60, val_fraction=0.0)
    folds = ds.kfold(4, seed=2)
    assert [f.counts()["val"] for f in folds] == [{"a": 8, "b": 8}, {"a": 8, "b": 8}, {"a": 8, "b": 8}, {"a": 6, "b": 6}]
    assert ds.groups("train") == [None] * 60


@pytest.mark.parametrize("column", ["patient", "group", "groups"])
def test_manifest_group_column_is_honoured(tmp_path: Path, column: str) -> None:
    rows = [f"path,label,mask,{column}"]
    for i in range(60):
        write_image(tmp_path / "images" / f"{i}.png", pattern(i, 12))
        rows.append(f"images/{i}.png,{'xyz'[i // 4 % 3]},,P{i // 4}")  # 15 patients of 4 slices
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    ds = Dataset(tmp_path / "manifest.csv", val_fraction=0.2, test_fraction=0.2, seed=5, progress=False)
    _assert_patient_disjoint(ds)
    assert all(len(ds.labels(s)) for s in ("train", "val", "test"))
    summary = ds.summary()
    assert summary.groups is not None and summary.groups.column == column and summary.groups.groups == 15
    assert not ds.has_masks
