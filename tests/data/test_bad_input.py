"""Every bad-input case: a clear error naming the path, or a skip with the file and the reason."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from datatest_helpers import make_class_tree, pattern, write_image
from PIL import Image

from neuroxai.data import Dataset, load_images
from neuroxai.errors import DataError


def test_missing_path_names_it_and_says_what_to_pass(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="does not exist") as err:
        Dataset(missing, progress=False)
    assert str(missing) in str(err.value) and "Training/" in str(err.value)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / ".DS_Store").write_bytes(b"x")  # hidden debris only
    with pytest.raises(DataError, match="is empty") as err:
        Dataset(tmp_path, progress=False)
    assert str(tmp_path) in str(err.value)


def test_folder_of_loose_images_says_to_use_class_folders(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", pattern(1))
    with pytest.raises(DataError, match="one sub-folder per class"):
        Dataset(tmp_path, progress=False)


def test_class_folder_without_images(tmp_path: Path) -> None:
    make_class_tree(tmp_path, 2, classes=("a", "b"))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "readme.txt").write_text("nothing")
    with pytest.raises(DataError, match="holds no image files") as err:
        Dataset(tmp_path, progress=False)
    assert str(tmp_path / "c") in str(err.value)


def test_class_whose_images_are_all_unreadable(tmp_path: Path) -> None:
    make_class_tree(tmp_path, 2, classes=("a", "b"))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match="Class 'c' has no readable images") as err:
        Dataset(tmp_path, progress=False)
    assert "x.png" in str(err.value) and "zero-byte" in str(err.value)


def test_test_class_unknown_to_training(kaggle_dir: Path) -> None:
    write_image(kaggle_dir / "Testing" / "astrocytoma" / "t.png", pattern(5))
    with pytest.raises(DataError, match="not a class of the training set") as err:
        Dataset(kaggle_dir, progress=False)
    msg = str(err.value)
    assert "astrocytoma" in msg and "glioma, meningioma, notumor, pituitary" in msg


def test_testing_without_training(tmp_path: Path) -> None:
    make_class_tree(tmp_path / "Testing", 1, classes=("a",))
    with pytest.raises(DataError, match="no Training/"):
        Dataset(tmp_path, progress=False)


def _jpeg_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.stack([pattern(seed, 64)] * 3, -1)).save(buf, format="JPEG")
    return buf.getvalue()


def test_corrupt_truncated_zero_byte_and_fake_images_are_skipped_with_reasons(kaggle_dir: Path) -> None:
    folder = kaggle_dir / "Training" / "glioma"
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(_jpeg_bytes(3)[:400])
    (folder / "fake.png").write_text("this is text, not a PNG")
    good = bytearray(_jpeg_bytes(4))
    good[200:600] = b"\x00" * 400  # garbage in the middle of the entropy-coded data
    (folder / "garbled.jpg").write_bytes(bytes(good))
    ds = Dataset(kaggle_dir, progress=False)
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    assert "zero-byte" in reasons["zero.jpg"]
    assert "truncated" in reasons["truncated.jpg"]
    assert "not an image" in reasons["fake.png"]
    every = ds.paths("train") + ds.paths("val") + ds.paths("test")
    assert not any(Path(p).name in {"zero.jpg", "truncated.jpg", "fake.png"} for p in every)
    assert len(ds) >= 28  # the good files are all there
    # a file that fails to decode is either skipped at index time or decodes; it never breaks the pipeline
    x, _ = ds.arrays("train", image_size=(16, 16), channels=1)
    assert np.isfinite(x).all()


def test_a_file_that_went_bad_after_indexing_is_dropped_not_fatal(kaggle_dir: Path) -> None:
    ds = Dataset(kaggle_dir, progress=False)
    victim = Path(ds.paths("test")[0])
    victim.write_bytes(b"")
    batches = list(ds.pipeline("test", image_size=(16, 16), channels=1, batch_size=4, cache=False))
    assert sum(int(b[0].shape[0]) for b in batches) == 7  # 8 test images, one dropped
    with pytest.raises(DataError, match="changed since the dataset was indexed"):
        ds.arrays("test", image_size=(16, 16), channels=1)


def test_manifest_errors(tmp_path: Path) -> None:
    bad_header = tmp_path / "m.csv"
    bad_header.write_text("file_name,diag\nx.png,a\n")
    with pytest.raises(DataError, match="expected a header with 'path' and 'label'") as err:
        Dataset(bad_header, progress=False)
    assert "m.csv" in str(err.value)
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="is empty"):
        Dataset(empty, progress=False)
    only_missing = tmp_path / "o.csv"
    only_missing.write_text("path,label\nmissing.png,a\n")
    with pytest.raises(DataError, match="no usable images"):
        Dataset(only_missing, progress=False)
    write_image(tmp_path / "i.png", pattern(0))
    write_image(tmp_path / "j.png", pattern(1))
    unknown = tmp_path / "u.csv"
    unknown.write_text("path,label,split\ni.png,a,train\nj.png,zzz,test\n")
    with pytest.raises(DataError, match="zzz appear only in val/test rows"):
        Dataset(unknown, progress=False)
    not_csv = tmp_path / "data.json"
    not_csv.write_text("{}")
    with pytest.raises(DataError, match="not a CSV manifest"):
        Dataset(not_csv, progress=False)


def test_load_images_skips_bad_files_and_keeps_order(tmp_path: Path) -> None:
    a = write_image(tmp_path / "a.png", pattern(1))
    (tmp_path / "b.jpg").write_bytes(b"")
    c = write_image(tmp_path / "c.png", pattern(2), mode="RGB")
    x, ok, skipped = load_images([a, tmp_path / "b.jpg", c, tmp_path / "missing.png"], image_size=(12, 12), channels=3)
    assert x.shape == (2, 12, 12, 3) and x.dtype == np.float32
    assert ok == [str(a), str(c)]
    assert [Path(s.path).name for s in skipped] == ["b.jpg", "missing.png"]
    assert "zero-byte" in skipped[0].reason and "cannot be read" in skipped[1].reason


def test_bad_pipeline_arguments(kaggle_dir: Path) -> None:
    ds = Dataset(kaggle_dir, progress=False)
    with pytest.raises(DataError, match="channels must be 1"):
        ds.pipeline("train", image_size=(8, 8), channels=2)
    with pytest.raises(DataError, match="image_size"):
        ds.pipeline("train", image_size=(8,), channels=1)
    with pytest.raises(DataError, match="has no masks"):
        ds.pipeline("train", image_size=(8, 8), channels=1, with_masks=True)
    with pytest.raises(DataError, match="val_fraction"):
        Dataset(kaggle_dir, val_fraction=1.5, progress=False)
