"""Readers under hostile input (issue 26): sizes checked before anything is allocated, volumes read block by block,
only regular files opened, valid big images read, EXIF orientation applied, damaged headers named."""

from __future__ import annotations

import gzip
import os
import socket
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from datatest_helpers import make_class_tree, no_hang, pattern, write_image
from medical_helpers import file_to_display, make_dicom_series, make_nifti, oblique_affine, phantom_volume
from PIL import Image

from neuroxai.data import Dataset, brain_slices, find_images, find_volumes, load_images, read_volume
from neuroxai.data import _files as files_module
from neuroxai.data import _images as images_module
from neuroxai.data import _medical as medical_module
from neuroxai.errors import DataError

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="named pipes and Unix sockets are POSIX")


def _header_only_nifti(path: Path, shape: tuple[int, ...], dtype: type = np.uint8) -> Path:
    """A NIfTI file whose header claims ``shape`` voxels and that holds no voxel data (a size bomb's header)."""
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(dtype)
    hdr.set_qform(np.eye(4), code=1)
    hdr.set_sform(np.eye(4), code=1)
    hdr["vox_offset"] = 352
    raw = hdr.binaryblock + b"\x00" * 4
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


def _peak_mb(fn: Callable[[], object]) -> tuple[object, float]:
    """``fn()``'s result (or the exception it raised) and the peak of Python and numpy allocations meanwhile, in MB."""
    tracemalloc.start()
    try:
        try:
            result: object = fn()
        except Exception as exc:  # the caller checks which
            result = exc
        return result, tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------------------------------------------- size limits
@pytest.mark.parametrize("name", ["bomb.nii", "bomb.nii.gz"])
def test_a_volume_claiming_more_than_the_limit_is_refused_before_anything_is_allocated(tmp_path: Path, name: str) -> None:
    bomb = _header_only_nifti(tmp_path / name, (2048, 2048, 512))  # 2.1 billion voxels: 8.6 GB as float32
    error, peak = _peak_mb(lambda: read_volume(bomb))
    assert isinstance(error, DataError), error
    text = str(error)
    assert "2048 x 2048 x 512" in text and f"{medical_module.MAX_VOLUME_VOXELS:,}" in text  # claimed size and limit
    assert "NEUROXAI_MAX_VOLUME_VOXELS" in text and "truncated" not in text and "MemoryError" not in text
    assert peak < 20, f"{peak:.0f} MB allocated before refusing"  # the old reader tried to allocate 8.6 GB


def test_the_volume_limit_is_the_callers_to_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vol, _ = phantom_volume((6, 16, 16))
    path = make_nifti(tmp_path / "small.nii.gz", vol)
    with pytest.raises(DataError, match="6 x 16 x 16|16 x 16 x 6"):
        read_volume(path, max_voxels=1000)
    monkeypatch.setenv("NEUROXAI_MAX_VOLUME_VOXELS", "1000")
    with pytest.raises(DataError, match="limit of 1,000 voxels"):
        read_volume(path)
    assert read_volume(path, max_voxels=6 * 16 * 16).voxels.shape == (6, 16, 16)  # the argument wins
    monkeypatch.setenv("NEUROXAI_MAX_VOLUME_VOXELS", "lots")
    with pytest.raises(DataError, match="NEUROXAI_MAX_VOLUME_VOXELS='lots' is not a whole number"):
        read_volume(path)


def test_a_dicom_series_over_the_limit_is_refused_from_its_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vol, _ = phantom_volume((6, 16, 16))
    make_dicom_series(tmp_path / "series", vol)

    def no_pixels(*args: object) -> None:
        raise AssertionError("pixel data decoded before the size was checked")

    monkeypatch.setattr(medical_module, "_pixels", no_pixels)
    with pytest.raises(DataError, match=r"6 slices of 16 x 16 pixels \(1,536 voxels.*limit of 1,000 voxels"):
        read_volume(tmp_path / "series", max_voxels=1000)


def test_a_dicom_file_claiming_a_huge_image_says_the_size_not_memory_error(tmp_path: Path) -> None:
    (path,) = make_dicom_series(tmp_path / "one", np.full((1, 8, 8), 100.0), shuffle=False)
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns = 65535, 65535  # 4.3 billion pixels claimed; 128 bytes of pixel data held
    ds.save_as(path, enforce_file_format=True)
    error, peak = _peak_mb(lambda: read_volume(path))
    assert isinstance(error, DataError) and "65535 x 65535" in str(error) and "limit" in str(error), error
    assert "MemoryError" not in str(error) and peak < 20


def test_a_truncated_volume_names_the_size_claimed_and_found(tmp_path: Path) -> None:
    vol, _ = phantom_volume((6, 16, 16))
    full = make_nifti(tmp_path / "full.nii", vol.astype(np.int16), dtype=np.int16)
    cut = tmp_path / "cut.nii"
    cut.write_bytes(full.read_bytes()[:-700])
    with pytest.raises(DataError, match=r"cut short: the header claims 16 x 16 x 6 voxels of int16 \(3,072 bytes\)"):
        read_volume(cut)


def test_volumes_read_block_by_block_equal_the_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vol, _ = phantom_volume((9, 20, 18), tumour=(4, 8, 9), radius=3)
    oblique = oblique_affine((4.0, 3.0, -6.0), (1.0, 1.0, 1.5), perm=(2, 0, 1))  # stored sagittally: blocks cross display axes
    nifti = make_nifti(tmp_path / "scaled.nii.gz", vol, oblique, dtype=np.int16, slope=0.5, inter=-3.0)
    make_dicom_series(tmp_path / "series", vol)
    whole = read_volume(nifti), read_volume(tmp_path / "series")
    monkeypatch.setattr(medical_module, "_BLOCK_VOXELS", 50)  # far less than a slice: every loop runs many times
    blocks = read_volume(nifti), read_volume(tmp_path / "series")
    reference = file_to_display(np.asarray(nib.load(nifti).dataobj, dtype=np.float32), nib.load(nifti).affine)
    assert np.array_equal(blocks[0].voxels, reference)  # nibabel's own read, reordered by nibabel
    for a, b in zip(whole, blocks):
        assert np.array_equal(a.voxels, b.voxels) and a.window == b.window
        assert np.array_equal(a.slices_uint8(), b.slices_uint8())
        monkeypatch.setattr(medical_module, "_BLOCK_VOXELS", 1 << 22)
        one_block = brain_slices(a.slices_uint8())
        monkeypatch.setattr(medical_module, "_BLOCK_VOXELS", 50)
        assert np.array_equal(brain_slices(b.slices_uint8()), one_block)


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
def test_a_nan_rescale_slope_skips_that_slice_with_the_reason(tmp_path: Path) -> None:
    vol, _ = phantom_volume((6, 16, 16))
    paths = make_dicom_series(tmp_path / "series", vol, shuffle=False)
    ds = pydicom.dcmread(paths[3])
    ds["RescaleSlope"].value = "NaN"
    ds.save_as(paths[3], enforce_file_format=True)
    volumes, skipped = medical_module.read_volumes([tmp_path / "series"])
    assert [v.n_slices for v in volumes] == [5]  # the other slices still form the series
    assert [Path(s.path).name for s in skipped] == [paths[3].name]
    assert "RescaleSlope" in skipped[0].reason and "not a finite number" in skipped[0].reason


# ---------------------------------------------------------------------------------------------------- only regular files


@posix_only
def test_pipes_sockets_and_devices_are_never_opened(tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    write_image(folder / "scan.png", pattern(1))
    fifos = [folder / "pipe", folder / "series" / "pipe.dcm", folder / "pipe.png", folder / "pipe.nii.gz"]
    (folder / "series").mkdir()
    for fifo in fifos:
        os.mkfifo(fifo)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock.dcm"))
    try:
        found = no_hang(lambda: find_images([folder, "/dev/null"]), fifos)
        assert found.paths == [str(folder / "scan.png")]
        reasons = {Path(m.path).name: m.reason for m in found.missing}  # reported, with what they are
        assert set(reasons) == {"pipe", "pipe.dcm", "pipe.png", "pipe.nii.gz", "sock.dcm", "null"}
        assert "named pipe" in reasons["pipe.dcm"] and "socket" in reasons["sock.dcm"] and "device" in reasons["null"]
        volumes = no_hang(lambda: find_volumes([folder, folder / "pipe.nii.gz"]), fifos)
        assert volumes.nifti == () and volumes.dicom == ()
        for fifo in fifos:
            assert "named pipe" in str(no_hang(lambda f=fifo: images_module.probe_file(str(f)), fifos))
            assert "named pipe" in str(no_hang(lambda f=fifo: images_module.open_image(f), fifos))
        with pytest.raises(DataError, match="named pipe"):
            no_hang(lambda: read_volume(folder / "pipe.nii.gz"), fifos)
        assert not files_module.has_dicom_marker(folder / "pipe")
        ds = no_hang(lambda: Dataset(tmp_path, progress=False), fifos)  # a class folder with a pipe in it
        assert any("named pipe" in s.reason for s in ds.skipped)
    finally:
        server.close()


# ---------------------------------------------------------------------------------------------------- images
@pytest.mark.parametrize("mode", ["P", "1", "I;16"])
def test_big_palette_bilevel_and_16_bit_images_are_read_not_called_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setattr(images_module, "REDUCE_ABOVE_PIXELS", 100 * 100)  # "big" (decoded reduced) for this test
    picture = np.kron(pattern(5, 30), np.ones((10, 10), np.uint8))  # 300 x 300, blocky
    if mode == "1":
        picture = np.where(picture > 128, 255, 0).astype(np.uint8)
    path = write_image(tmp_path / "big.png", picture, mode=mode if mode != "1" else None)
    if mode == "1":
        Image.fromarray(picture).convert("1").save(path)
    info = images_module.probe_file(str(path))
    assert not isinstance(info, str), info  # was "corrupt image (image has wrong mode)"
    assert (info.mode, info.width, info.height) == (Image.open(path).mode, 300, 300)  # the file's own
    x, ok, skipped = load_images([path], image_size=(30, 30), channels=1, input_range=(0, 255))
    assert skipped == [] and ok == [str(path)]
    small = np.asarray(Image.fromarray(picture).resize((30, 30), Image.Resampling.BOX), np.float32)
    assert np.abs(x[0, ..., 0] - small).mean() < 8  # the same picture, reduced


def test_running_out_of_memory_while_decoding_is_not_called_corrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "scan.png", pattern(2))

    def no_memory(img: object, want: object) -> object:
        raise MemoryError

    monkeypatch.setattr(images_module, "_load", no_memory)
    reason = images_module.open_image(path)
    assert isinstance(reason, str) and "not enough memory" in reason and "24x24" in reason and "corrupt" not in reason


def test_the_image_limit_can_be_changed_for_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "scan.png", pattern(2))  # 24 x 24 = 576 pixels
    monkeypatch.setenv("NEUROXAI_MAX_IMAGE_PIXELS", "500")
    reason = images_module.open_image(path)
    assert isinstance(reason, str) and "limit of 0.0005 megapixels" in reason and "NEUROXAI_MAX_IMAGE_PIXELS" in reason
    assert not isinstance(images_module.open_image(path, max_pixels=576), str)


def _with_orientation(path: Path, picture: np.ndarray, orientation: int, fmt: str) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(picture).save(path, format=fmt, exif=exif.tobytes(), **({"quality": 100} if fmt == "JPEG" else {}))
    return path


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_orientation_is_applied_in_training_and_prediction_alike(tmp_path: Path, fmt: str) -> None:
    picture = np.kron(pattern(4, 8), np.ones((4, 6), np.uint8))  # 32 x 48: not square, so a rotation shows
    ext = fmt.lower()
    root = make_class_tree(tmp_path / "data", 2, classes=("a", "b"), ext=f".{ext}")
    upright = np.rot90(picture, k=-1)  # orientation 6: the stored picture is shown turned 90 degrees clockwise
    path = _with_orientation(root / "a" / f"turned.{ext}", picture, 6, fmt)
    info = images_module.probe_file(str(path))
    assert not isinstance(info, str) and info.oriented and not info.tf_decodable  # the pipeline decodes it with PIL
    tol = 6.0 if fmt == "JPEG" else 0.0
    x, _, _ = load_images([path], image_size=upright.shape, channels=1, input_range=(0, 255))  # prediction's reader
    assert np.abs(x[0, ..., 0] - upright).max() <= tol
    ds = Dataset(root, val_fraction=0.0, test_fraction=0.0, progress=False)
    arrays, _ = ds.arrays("train", image_size=upright.shape, channels=1, input_range=(0, 255))  # training's reader
    assert np.abs(arrays[ds.paths("train").index(str(path)), ..., 0] - upright).max() <= tol


# ---------------------------------------------------------------------------------------------------- manifests and listings
def test_a_nul_byte_in_a_manifest_path_is_a_data_error_naming_the_row(tmp_path: Path) -> None:
    make_class_tree(tmp_path, 2, classes=("a", "b"))
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na/img000.png,a\nb/im\x00g000.png,b\nb/img001.png,b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"m\.csv line 3: the path .* holds a NUL byte"):
        Dataset(manifest, progress=False)


@pytest.mark.skipif(sys.platform == "win32", reason="file names with newlines are POSIX")
def test_the_audit_listing_escapes_control_characters_in_names(tmp_path: Path) -> None:
    rlo = "\u202e"
    make_class_tree(tmp_path, 2, classes=("glioma", f"gli{rlo}gpj"))
    (tmp_path / "glioma" / "x.png\nforged line").write_bytes(b"not an image")
    text = Dataset(tmp_path, progress=False, val_fraction=0.0, test_fraction=0.0).audit(progress=False).format()
    assert "forged line" in text and not any(line.startswith("forged") for line in text.splitlines())
    assert "\\n" in text and rlo not in text and "gli\\u202egpj" in text
