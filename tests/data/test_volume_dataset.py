"""Scanner volumes in a Dataset: manifest rows naming slices, class folders of volumes, grouped splits, bad volumes."""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from datatest_helpers import pattern, write_image

from neuroxai.data import Dataset, to_model_input
from neuroxai.data import _slices as slices_module
from neuroxai.data._medical import brain_slices, read_volume
from neuroxai.data._slices import SliceRange, SliceRef

nib = pytest.importorskip("nibabel")

#: Source axes towards R, A, S (display rows and columns are flipped), anisotropic slices, an offset.
AFFINE = np.array([[0.9, 0.0, 0.0, -14.0], [0.0, 0.9, 0.0, 12.0], [0.0, 0.0, 2.5, -30.0], [0.0, 0.0, 0.0, 1.0]])


def _brain(seed: int, z: int = 10, size: int = 32, brain: tuple[int, int] = (2, 8)) -> np.ndarray:
    """Display-order stack ``[Z, H, W]``: a noisy disc (a "brain") on slices ``brain[0]:brain[1]``, empty elsewhere."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = rng.uniform(size * 0.4, size * 0.6, 2)
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 < (size * 0.33) ** 2
    stack = np.zeros((z, size, size), np.float32)
    for k in range(*brain):
        stack[k] = disc * (400 + 600 * rng.random((size, size)))
    return stack


def write_nifti(path: Path, stack: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    """Write a ``[Z, H, W]`` stack as NIfTI (source axes (W, H, Z), as scanners store them) with ``affine``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(np.transpose(stack, (2, 1, 0))), affine), str(path))
    return path


def _per_sample(ds: Dataset, split: str) -> list[tuple[str | None, int | None]]:
    return [(p, None if r is None else r.index) for p, r in zip(ds.paths(split), ds.slices(split))]


def test_manifest_rows_name_one_slice_a_range_or_every_brain_slice(tmp_path: Path) -> None:
    write_nifti(tmp_path / "scans" / "a.nii.gz", _brain(1, z=12, brain=(3, 9)))
    write_nifti(tmp_path / "scans" / "b.nii", _brain(2, z=10, brain=(2, 7)))
    write_image(tmp_path / "img.png", pattern(3))
    (tmp_path / "data.csv").write_text(
        "path,label,split,slice\n"
        "scans/a.nii.gz,glioma,train,5\n"  # one slice
        "scans/a.nii.gz,notumor,train,0:3\n"  # a half-open range
        "scans/a.nii.gz,glioma,train,-1\n"  # Python-style: the last slice
        "scans/b.nii,glioma,train,\n"  # every slice with brain
        "img.png,notumor,train,\n"  # a plain image row
        "scans/a.nii.gz,glioma,train,40\n"  # out of range: skipped
        "scans/a.nii.gz,glioma,train,2:x\n"  # not a slice: skipped
        "img.png,glioma,train,3\n"  # a slice of an image: skipped
    )
    ds = Dataset(tmp_path / "data.csv", progress=False, val_fraction=0.0)
    got = _per_sample(ds, "train")
    a, b, img = (str(tmp_path / "scans" / "a.nii.gz"), str(tmp_path / "scans" / "b.nii"), str(tmp_path / "img.png"))
    assert sorted(got, key=str) == sorted(
        [(a, 5), (a, 0), (a, 1), (a, 2), (a, 11), *((b, z) for z in range(2, 7)), (img, None)], key=str
    )
    labels = {s: ds.class_names[int(y)] for s, y in zip(got, ds.labels("train"))}
    assert labels[(a, 5)] == labels[(a, 11)] == labels[(b, 3)] == "glioma" and labels[(a, 0)] == "notumor"
    assert {ref.series for ref in ds.slices("train") if ref is not None} == {None}
    reasons = " | ".join(s.reason for s in ds.skipped)
    assert "slice 40 is out of range: the volume has 12 slices (0..11)" in reasons
    assert "'2:x' is neither a slice index" in reasons
    assert "not a NIfTI or DICOM volume" in reasons
    # the samples of one volume share a group: the volume
    assert {g for g, ref in zip(ds.groups("train"), ds.slices("train")) if ref is not None} == {a, b}


def test_slice_pixels_equal_what_predict_feeds_the_model(tmp_path: Path) -> None:
    path = write_nifti(tmp_path / "scans" / "t1.nii.gz", _brain(4, z=9, size=40, brain=(1, 8)))
    write_nifti(tmp_path / "scans" / "t2.nii.gz", _brain(5))
    (tmp_path / "data.csv").write_text("path,label,split,slice\nscans/t1.nii.gz,glioma,test,:\nscans/t2.nii.gz,glioma,train,\n")
    ds = Dataset(tmp_path / "data.csv", progress=False)
    volume = read_volume(path)  # what `neuroxai predict` reads: default window, radiological columns
    expected_slices = volume.slices_uint8()
    assert [r.index for r in ds.slices("test") if r is not None] == list(range(9))
    for channels, size, rng in ((1, (24, 24), (0.0, 1.0)), (3, (32, 28), (0.0, 255.0))):
        x, _ = ds.arrays("test", image_size=size, channels=channels, input_range=rng)
        want = to_model_input(list(expected_slices), size, channels, rng)
        np.testing.assert_array_equal(x, want)
    batches = ds.pipeline("test", image_size=(24, 24), channels=1, batch_size=4)
    streamed = np.concatenate([xb.numpy() for xb, _ in batches])
    np.testing.assert_array_equal(streamed, to_model_input(list(expected_slices), (24, 24), 1))
    # at its own size, a sample's pixels are the windowed source slice itself
    x, _ = ds.arrays("test", image_size=(40, 40), channels=1, input_range=(0.0, 255.0))
    np.testing.assert_array_equal(x[..., 0].astype(np.uint8), expected_slices)


def test_class_folders_of_volumes_keep_each_volume_on_one_side(tmp_path: Path) -> None:
    for c, seed0 in (("glioma", 0), ("notumor", 10)):
        for k in range(3):
            write_nifti(tmp_path / "data" / c / f"case{k}.nii.gz", _brain(seed0 + k, brain=(2, 8)))
    write_image(tmp_path / "data" / "notumor" / "extra.png", pattern(7))
    ds = Dataset(tmp_path / "data", progress=False, seed=3, val_fraction=0.3, test_fraction=0.3)
    assert ds.layout == "class-folders" and ds.class_names == ("glioma", "notumor")
    side: dict[str, set[str]] = defaultdict(set)
    n = 0
    for split in ("train", "val", "test"):
        for path, ref, group, y in zip(ds.paths(split), ds.slices(split), ds.groups(split), ds.labels(split)):
            if ref is None:
                assert path is not None and path.endswith("extra.png")
                continue
            n += 1
            assert group == ref.path == path  # the volume is the group
            side[ref.path].add(split)
            assert ds.class_names[int(y)] == Path(ref.path).parent.name  # labelled by the folder
    assert n == 6 * 6  # the 6 slices with brain of each of the 6 volumes
    assert all(len(s) == 1 for s in side.values()), side
    assert len({next(iter(s)) for s in side.values()}) > 1  # the volumes were really split
    for fold in ds.kfold(2, seed=0):
        fold_side: dict[str, set[str]] = defaultdict(set)
        for split in ("train", "val"):
            for ref in fold.slices(split):
                if ref is not None:
                    fold_side[ref.path].add(split)
        assert all(len(s) == 1 for s in fold_side.values())


def test_bad_volumes_in_a_class_folder_are_skipped_and_reported(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for c in ("glioma", "notumor"):
        write_nifti(root / c / "good.nii.gz", _brain(1 if c == "glioma" else 2))
    (root / "glioma" / "corrupt.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    good = (root / "notumor" / "good.nii.gz").read_bytes()
    (root / "notumor" / "truncated.nii").write_bytes(b"\x00" * 100)
    write_nifti(root / "notumor" / "empty.nii.gz", np.zeros((6, 16, 16), np.float32))  # no slice with brain
    ds = Dataset(root, progress=False, val_fraction=0.0, test_fraction=0.0)
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    assert {"corrupt.nii.gz", "truncated.nii", "empty.nii.gz"} <= set(reasons), reasons
    assert "no slice with brain" in reasons["empty.nii.gz"]
    assert len(ds.labels("train")) == 12 and good  # the good volumes' brain slices
    assert {Path(s.path).name for s in ds.audit(progress=False).skipped} >= {"corrupt.nii.gz", "truncated.nii"}


def test_a_volume_that_goes_bad_after_indexing_is_left_out_and_reported(tmp_path: Path) -> None:
    vol = write_nifti(tmp_path / "scans" / "a.nii.gz", _brain(5))
    write_nifti(tmp_path / "scans" / "b.nii.gz", _brain(6))
    (tmp_path / "data.csv").write_text(
        "path,label,split,slice\nscans/a.nii.gz,glioma,test,2:5\nscans/b.nii.gz,glioma,test,2:5\nscans/b.nii.gz,glioma,train,5\n"
    )
    ds = Dataset(tmp_path / "data.csv", progress=False)
    vol.write_bytes(b"garbage")  # the file changes after indexing
    got = ds.read_split("test", image_size=(16, 16), channels=1)
    test_slices = ds.slices("test")
    assert len(got.x) == 3 and {str(test_slices[int(k)]) for k in got.positions} == {
        str(SliceRef(str(tmp_path / "scans" / "b.nii.gz"), None, z)) for z in (2, 3, 4)
    }
    assert sorted(u.path for u in got.unreadable) == [f"{vol}[slice {z}]" for z in (2, 3, 4)]
    # the reader's own reason (what is wrong with the file), and that it changed after indexing
    assert all("after indexing" in u.reason and "NIfTI" in u.reason for u in got.unreadable), got.unreadable


def test_audit_names_duplicate_slices_by_volume_and_slice(tmp_path: Path) -> None:
    stack = _brain(8, z=6, brain=(1, 5))
    write_nifti(tmp_path / "data" / "glioma" / "p1.nii.gz", stack)
    write_nifti(tmp_path / "data" / "notumor" / "copy_of_p1.nii.gz", stack)  # the same scan under another class
    ds = Dataset(tmp_path / "data", progress=False, val_fraction=0.0, test_fraction=0.0)
    report = ds.audit(progress=False)
    assert report.formats == {"NIfTI": 8} and report.modes == {"L": 8}
    conflicts = report.duplicates.label_conflicts
    assert len([c for c in conflicts if c.kind == "exact"]) == 4
    glioma, notumor = (str(tmp_path / "data" / c) for c in ("glioma", "notumor"))
    assert (f"{glioma}/p1.nii.gz[slice 1]", f"{notumor}/copy_of_p1.nii.gz[slice 1]") in [c.paths for c in conflicts]


def test_a_shuffled_pass_reads_each_volume_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for c in ("glioma", "notumor"):
        for k in range(3):
            write_nifti(tmp_path / "data" / c / f"v{k}.nii.gz", _brain(20 + k + (5 if c == "glioma" else 0)))
    ds = Dataset(tmp_path / "data", progress=False, val_fraction=0.0, test_fraction=0.0)
    reads: list[str] = []
    real = slices_module._read

    def counting(path: str) -> object:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(slices_module, "_read", counting)
    slices_module._CACHE.clear()
    pipe = ds.pipeline("train", image_size=(16, 16), channels=1, batch_size=5, cache=False, seed=0)
    seen = sum(len(xb) for xb, _ in pipe)
    # one read per volume and pass (the shuffle buffer may read ahead into the next pass), not one per slice
    assert seen == 36 and len(set(reads)) == 6 and max(Counter(reads).values()) <= 2


def test_slice_cell_parsing() -> None:
    assert SliceRange.parse("") is None
    one = SliceRange.parse(" 7 ")
    assert isinstance(one, SliceRange) and one.resolve(10) == [7] and isinstance(one.resolve(5), str)
    rng = SliceRange.parse("3:")
    assert isinstance(rng, SliceRange) and rng.resolve(6) == [3, 4, 5] and isinstance(rng.resolve(2), str)
    every = SliceRange.parse(":")
    assert isinstance(every, SliceRange) and every.resolve(3) == [0, 1, 2]
    assert isinstance(SliceRange.parse("1:4:2"), str) and isinstance(SliceRange.parse("x"), str)


def test_brain_slices_default_matches_the_dataset(tmp_path: Path) -> None:
    path = write_nifti(tmp_path / "data" / "glioma" / "v.nii.gz", _brain(9, z=11, brain=(4, 9)))
    shutil.copy(path, tmp_path / "data" / "glioma" / "w.nii.gz")
    ds = Dataset(tmp_path / "data", progress=False, val_fraction=0.0, test_fraction=0.0)
    want = np.flatnonzero(brain_slices(read_volume(path).slices_uint8())).tolist()
    assert want == [4, 5, 6, 7, 8]
    assert [r.index for r in ds.slices("train") if r is not None and r.path == str(path)] == want


def test_dicom_series_folders_in_a_manifest_and_in_class_folders(tmp_path: Path) -> None:
    pytest.importorskip("pydicom")
    from medical_helpers import make_dicom_series

    from neuroxai.data._medical import read_volumes

    make_dicom_series(tmp_path / "scans" / "one", _brain(11, z=8, brain=(1, 7)), seed=1)
    make_dicom_series(tmp_path / "scans" / "two", _brain(12, z=6, brain=(1, 5)), series_number=1, seed=2)
    make_dicom_series(tmp_path / "scans" / "two", _brain(13, z=7, brain=(2, 6)), series_number=2, seed=3)
    (tmp_path / "data.csv").write_text(
        "path,label,split,slice\n"
        "scans/one,glioma,train,2:6\n"  # a series folder with a slice range
        "scans/one,notumor,train,0\n"
        "scans/two,glioma,train,\n"  # two series in one folder: every slice with brain of each
        "scans/two,glioma,train,3\n"  # ambiguous: skipped
    )
    ds = Dataset(tmp_path / "data.csv", progress=False, val_fraction=0.0)
    one, two = str(tmp_path / "scans" / "one"), str(tmp_path / "scans" / "two")
    refs = [r for r in ds.slices("train") if r is not None]
    assert [(r.series, r.index) for r in refs if r.path == one] == [(None, 2), (None, 3), (None, 4), (None, 5), (None, 0)]
    by_series = {v.series: v for v in read_volumes([two])[0]}
    assert len(by_series) == 2
    picked = defaultdict(list)
    for r in refs:
        if r.path == two:
            picked[r.series].append(r.index)
    assert {uid: picked[uid] for uid in by_series} == {
        uid: np.flatnonzero(brain_slices(v.slices_uint8())).tolist() for uid, v in by_series.items()
    }
    assert any("2 DICOM series" in s.reason and "ambiguous" in s.reason for s in ds.skipped)
    # the pixels are the series' windowed slices
    x, _ = ds.arrays("train", image_size=(32, 32), channels=1, input_range=(0.0, 255.0))
    own = read_volume(one).slices_uint8()
    for k, r in enumerate(ds.slices("train")):
        assert r is not None
        want = own[r.index] if r.path == one else by_series[r.series].slices_uint8()[r.index]
        np.testing.assert_array_equal(x[k, ..., 0].astype(np.uint8), want)
    # class folders: each folder holding a DICOM series is one volume, and the group of its slices
    shutil.copytree(tmp_path / "scans" / "one", tmp_path / "data" / "glioma" / "patient1")
    make_dicom_series(tmp_path / "data" / "notumor" / "patient2", _brain(14, z=8, brain=(1, 7)), seed=4)
    folders = Dataset(tmp_path / "data", progress=False, val_fraction=0.0, test_fraction=0.0)
    assert folders.audit(progress=False).formats == {"DICOM": 12}
    groups = set(folders.groups("train"))
    assert groups == {str(tmp_path / "data" / "glioma" / "patient1"), str(tmp_path / "data" / "notumor" / "patient2")}
    assert folders.counts()["train"] == {"glioma": 6, "notumor": 6}


def test_training_names_a_dropped_volume_slice_with_the_readers_reason(tmp_path: Path) -> None:
    """A volume deleted during training is reported per slice (``scan.nii[slice 3]``), not as an unreadable image."""
    from neuroxai.data import PipelineState
    from neuroxai.data._slices import SliceRef
    from neuroxai.training._callbacks import ReadCheck

    path = tmp_path / "scan.nii"
    nib.save(nib.Nifti1Image(np.full((24, 24, 6), 100, np.int16), np.eye(4)), path)
    ref = SliceRef(str(path), None, 3)
    check = ReadCheck([("train", PipelineState(2), [str(path), str(tmp_path / "x.png")], [ref, None])])
    path.unlink()
    check.check(1)
    assert [s.path for s in check.unreadable] == [ref.name, str(tmp_path / "x.png")]
    assert "No such file" in check.unreadable[0].reason and "not an image" not in check.unreadable[0].reason
    assert check.dropped == {"train": 2}
