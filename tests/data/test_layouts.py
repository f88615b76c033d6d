"""Folder layouts, manifests, in-memory arrays, hidden files and the mask convention."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from datatest_helpers import CLASSES, make_class_tree, pattern, write_image

from neuroxai.data import Dataset
from neuroxai.errors import DataError


def test_kaggle_layout_counts_and_class_order(kaggle_dir: Path) -> None:
    ds = Dataset(kaggle_dir, progress=False, seed=0)
    assert ds.class_names == CLASSES
    assert ds.num_classes == 4
    assert ds.layout == "kaggle"
    counts = ds.counts()
    assert all(counts["test"][c] == 2 for c in CLASSES)
    assert all(counts["train"][c] + counts["val"][c] == 5 for c in CLASSES)
    assert all(counts["val"][c] == 1 for c in CLASSES)  # round(0.15 * 5)
    assert len(ds) == 28
    assert all("Testing" in p for p in ds.paths("test"))
    assert all("Training" in p for p in ds.paths("train") + ds.paths("val"))
    assert not ds.has_masks


@pytest.mark.parametrize("train,test", [("train", "test"), ("TRAIN", "Test"), ("training", "TESTING")])
def test_kaggle_split_folder_names_any_case(tmp_path: Path, train: str, test: str) -> None:
    make_class_tree(tmp_path / train, 3, classes=("x", "y"))
    make_class_tree(tmp_path / test, 1, classes=("x", "y"), seed0=100)
    ds = Dataset(tmp_path, progress=False)
    assert ds.class_names == ("x", "y")
    assert sum(ds.counts()["test"].values()) == 2
    assert sum(ds.counts()["train"].values()) + sum(ds.counts()["val"].values()) == 6


def test_test_class_folder_in_other_case_maps_to_training_class(tmp_path: Path) -> None:
    make_class_tree(tmp_path / "Training", 3, classes=("glioma", "notumor"))
    make_class_tree(tmp_path / "Testing", 1, classes=("Glioma", "NoTumor"), seed0=50)
    ds = Dataset(tmp_path, progress=False)
    assert ds.counts()["test"] == {"glioma": 1, "notumor": 1}


def test_single_folder_of_class_folders_carves_val_and_test(class_dir: Path) -> None:
    ds = Dataset(class_dir, val_fraction=0.2, test_fraction=0.3, seed=3, progress=False)
    assert ds.class_names == ("a", "b", "c")
    assert ds.layout == "class-folders"
    c = ds.counts()
    assert c["val"] == {"a": 2, "b": 2, "c": 2}
    assert c["test"] == {"a": 3, "b": 3, "c": 3}
    assert c["train"] == {"a": 5, "b": 5, "c": 5}
    every = ds.paths("train") + ds.paths("val") + ds.paths("test")
    assert len(set(every)) == 30


def test_nested_subfolders_inside_a_class_are_read(tmp_path: Path) -> None:
    make_class_tree(tmp_path, 2, classes=("a", "b"))
    write_image(tmp_path / "a" / "patient1" / "slice.png", pattern(77))
    ds = Dataset(tmp_path, progress=False)
    assert sum(sum(v.values()) for v in ds.counts().values()) == 5


def test_hidden_files_folders_and_non_images_are_skipped_and_listed(kaggle_dir: Path) -> None:
    ck = kaggle_dir / "Testing" / "meningioma" / ".ipynb_checkpoints"
    write_image(ck / "img000-checkpoint.png", pattern(1000))
    (kaggle_dir / "Training" / "glioma" / ".DS_Store").write_bytes(b"\x00\x01junk")
    (kaggle_dir / "Training" / "glioma" / "notes.txt").write_text("not an image")
    (kaggle_dir / "Training" / ".hidden_dir").mkdir()
    (kaggle_dir / "README.md").write_text("hello")
    ds = Dataset(kaggle_dir, progress=False)
    assert len(ds) == 28  # nothing above counted
    reasons = {os.path.basename(s.path): s.reason for s in ds.skipped}
    assert "hidden folder" in reasons[".ipynb_checkpoints"]
    assert "hidden file" in reasons[".DS_Store"]
    assert "not an image file (.txt)" in reasons["notes.txt"]
    assert ".hidden_dir" in reasons
    assert "README.md" in reasons
    assert not any("checkpoint" in p for p in ds.paths("test"))


def test_mask_convention_pairs_masks_beside_images(tmp_path: Path) -> None:
    for c in ("a", "b"):
        for i in range(3):
            img = pattern(i + (10 if c == "b" else 0))
            write_image(tmp_path / c / f"s{i}.jpg", img)
            write_image(tmp_path / c / f"s{i}_mask.png", (img > 200).astype(np.uint8) * 255)
    write_image(tmp_path / "a" / "orphan_mask.png", np.zeros((8, 8), np.uint8))
    ds = Dataset(tmp_path, val_fraction=0.0, test_fraction=0.0, progress=False)
    assert ds.has_masks
    assert len(ds) == 6  # masks are not samples
    for p, m in zip(ds.paths("train"), ds.mask_paths("train")):
        assert m == p[: -len(".jpg")] + "_mask.png"
    assert ds.mask_available("train").all()
    assert any("mask with no image" in s.reason and s.path.endswith("orphan_mask.png") for s in ds.skipped)
    x, _y, masks = ds.arrays("train", image_size=(24, 24), channels=1, with_masks=True)
    # the mask marks the bright blob of its own image
    assert masks.shape == (6, 24, 24) and masks.dtype == bool
    for img, m in zip(x[..., 0], masks):
        assert img[m].mean() > 0.8 and img[~m].mean() < 0.5


def _write_manifest(root: Path, rows: list[str], header: str = "path,label,split,mask") -> Path:
    csv = root / "manifest.csv"
    csv.write_text(header + "\n" + "\n".join(rows) + "\n")
    return csv


def test_manifest_with_splits_and_masks_relative_to_csv(tmp_path: Path) -> None:
    rows = []
    for i in range(12):
        lab = ("tumour", "healthy")[i % 2]
        img = pattern(i)
        write_image(tmp_path / "imgs" / f"{i}.png", img)
        write_image(tmp_path / "masks" / f"{i}.png", (img > 200).astype(np.uint8))  # 0/1 mask
        split = "test" if i >= 8 else "train"
        rows.append(f"imgs/{i}.png,{lab},{split},masks/{i}.png")
    ds = Dataset(_write_manifest(tmp_path, rows), val_fraction=0.25, progress=False)
    assert ds.layout == "manifest"
    assert ds.class_names == ("healthy", "tumour")  # sorted labels
    assert ds.counts()["test"] == {"healthy": 2, "tumour": 2}
    assert ds.counts()["val"] == {"healthy": 1, "tumour": 1}
    assert ds.has_masks
    x, _y, m = ds.arrays("test", image_size=(24, 24), channels=1, with_masks=True)
    assert m.any(axis=(1, 2)).all()
    for img, mm in zip(x[..., 0], m):
        assert img[mm].mean() > 0.8


def test_manifest_without_split_column_carves_val_and_test(tmp_path: Path) -> None:
    rows = []
    for i in range(20):
        write_image(tmp_path / f"{i}.bmp", pattern(i), fmt="BMP")
        rows.append(f"{i}.bmp,{'ab'[i % 2]}")
    ds = Dataset(_write_manifest(tmp_path, rows, header="path,label"), val_fraction=0.2, test_fraction=0.2, progress=False)
    assert ds.counts() == {"train": {"a": 6, "b": 6}, "val": {"a": 2, "b": 2}, "test": {"a": 2, "b": 2}}


def test_manifest_missing_files_are_skipped_with_row_and_path(tmp_path: Path) -> None:
    write_image(tmp_path / "ok1.png", pattern(1))
    write_image(tmp_path / "ok2.png", pattern(2))
    rows = ["ok1.png,a,train,", "ok2.png,b,train,", "gone.png,a,train,", "ok1.png,a,train,nomask.png", "ok2.png,,train,"]
    ds = Dataset(_write_manifest(tmp_path, rows), val_fraction=0.0, progress=False)
    assert len(ds) == 3
    gone = [s for s in ds.skipped if s.path.endswith("gone.png")]
    assert gone and "line 4" in gone[0].reason and "does not exist" in gone[0].reason
    assert any(s.path.endswith("nomask.png") and "mask file does not exist" in s.reason for s in ds.skipped)
    assert any("empty label" in s.reason for s in ds.skipped)


def test_from_arrays_with_given_splits_and_masks() -> None:
    x = np.stack([pattern(i) for i in range(16)])
    y = np.arange(16) % 2
    splits = ["train"] * 12 + ["test"] * 4
    masks = x > 200
    ds = Dataset.from_arrays(x, y, class_names=["n", "t"], masks=masks, splits=splits, val_fraction=0.25, seed=1)
    # 6 training images per class: round(0.25 * 6) = 2 carved for val
    assert ds.counts() == {"train": {"n": 4, "t": 4}, "val": {"n": 2, "t": 2}, "test": {"n": 2, "t": 2}}
    assert ds.paths("test") == [None] * 4
    xs, ys, ms = ds.arrays("test", image_size=(24, 24), channels=1, with_masks=True)
    np.testing.assert_array_equal(ms, masks[12:])
    np.testing.assert_allclose(xs[..., 0], x[12:] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(ys, y[12:])


def test_from_arrays_rejects_bad_input() -> None:
    x = np.zeros((4, 8, 8), np.uint8)
    with pytest.raises(DataError, match="4 images but 3 labels"):
        Dataset.from_arrays(x, [0, 1, 0], class_names=["a", "b"])
    with pytest.raises(DataError, match="labels must be in 0..1"):
        Dataset.from_arrays(x, [0, 1, 2, 0], class_names=["a", "b"])
    with pytest.raises(DataError, match="unknown split"):
        Dataset.from_arrays(x, [0, 1, 0, 1], class_names=["a", "b"], splits=["train", "x", "test", "val"])
    with pytest.raises(DataError, match="mask 0 has shape"):
        Dataset.from_arrays(x, [0, 1, 0, 1], class_names=["a", "b"], masks=np.zeros((4, 5, 5)))


def test_unknown_split_name_is_a_clear_error(kaggle_dir: Path) -> None:
    ds = Dataset(kaggle_dir, progress=False)
    with pytest.raises(DataError, match="Unknown split 'validation'"):
        ds.labels("validation")
