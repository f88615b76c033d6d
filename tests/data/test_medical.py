"""Scanner readers: NIfTI volumes and DICOM series read into axial slices, windowed, and written back on the source grid."""

from __future__ import annotations

import gzip
import logging
import os
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from medical_helpers import (
    display_to_file,
    file_to_display,
    lps_affine,
    make_dicom_series,
    make_nifti,
    make_nifti_display,
    oblique_affine,
    phantom_volume,
)

from neuroxai._io import OUTPUT_MARKER
from neuroxai.data import (
    MEDICAL_EXTENSIONS,
    Volume,
    Window,
    brain_slices,
    file_kind,
    find_images,
    find_volumes,
    read_volume,
    read_volumes,
    write_nifti,
)
from neuroxai.data._medical import is_dicom_file, is_volume_name
from neuroxai.errors import DataError, OutputError

NIB_DATA = Path(nib.__file__).parent / "tests" / "data"
DCM_DATA = Path(pydicom.__file__).parent / "data" / "test_files"  # shipped files only (get_testdata_file may download)

AFFINES = {
    "lps": lps_affine((1.0, 1.2, 2.0), (10, -5, 3)),
    "ras": np.diag([0.9, 0.9, 3.0, 1.0]),
    "oblique": oblique_affine(),
    "oblique_sagittal": oblique_affine((4.0, 3.0, -6.0), (1.0, 1.0, 1.5), perm=(2, 0, 1)),
    "lip_permuted": oblique_affine((170.0, 5.0, -80.0), perm=(1, 2, 0)),
}


def windowed(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Independent windowing: low -> 0, high -> 255, rounded, clipped."""
    out = (values.astype(np.float64) - low) / (high - low) * 255.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def phantom() -> np.ndarray:
    vol, _ = phantom_volume((10, 24, 20), tumour=(5, 8, 12), radius=3)
    return vol


# ---------------------------------------------------------------------------------------------------- NIfTI
@pytest.mark.parametrize("name", sorted(AFFINES))
def test_nifti_display_orientation_and_exact_inverse(tmp_path: Path, phantom: np.ndarray, name: str) -> None:
    affine = AFFINES[name]
    path = make_nifti(tmp_path / "scan.nii.gz", phantom, affine)
    source = np.asarray(nib.load(path).dataobj, dtype=np.float32)
    vol = read_volume(path)
    assert vol.voxels.dtype == np.float32 and vol.voxels.flags.c_contiguous
    assert np.array_equal(vol.voxels, file_to_display(source, affine))  # nibabel's own reorientation, not ours
    assert vol.source_shape == source.shape
    assert np.array_equal(vol.affine, nib.load(path).affine)
    back = vol.to_source(vol.voxels)
    assert back.shape == source.shape and back.tobytes() == source.tobytes()  # bit for bit
    neuro = read_volume(path, convention="neurological")
    assert np.array_equal(neuro.voxels, vol.voxels[:, :, ::-1])
    assert np.array_equal(neuro.to_source(neuro.voxels), source)
    assert vol.name == "scan" and vol.series is None


def test_nifti_display_matches_the_stated_convention(tmp_path: Path) -> None:
    # a RAS file with a marker voxel at the patient's right, anterior, superior corner
    data = np.zeros((6, 5, 4), np.float32)  # [R, A, S]
    data[5, 4, 3] = 1.0
    vol = read_volume(make_nifti(tmp_path / "ras.nii", data.T, np.diag([1.0, 1.0, 1.0, 1.0])))
    z, row, col = np.argwhere(vol.voxels == 1.0)[0]
    assert z == vol.n_slices - 1  # superior is the last slice
    assert row == 0  # anterior at the top
    assert col == 0  # radiological: the patient's right on the image's left
    neuro = read_volume(tmp_path / "ras.nii", convention="neurological")
    assert tuple(np.argwhere(neuro.voxels == 1.0)[0]) == (z, row, vol.voxels.shape[2] - 1)


def test_nifti_scaled_integers_read_as_float(tmp_path: Path, phantom: np.ndarray) -> None:
    values = np.rint(phantom / 4) * 4 + 100
    path = make_nifti(tmp_path / "scaled.nii", values, slope=4.0, inter=100.0, dtype=np.int16)
    assert nib.load(path).get_data_dtype() == np.int16
    vol = read_volume(path)
    assert np.array_equal(vol.voxels, values.astype(np.float32))


def test_nifti_4d_refused_and_single_volume_4d_accepted(tmp_path: Path, phantom: np.ndarray) -> None:
    path = make_nifti(tmp_path / "bold.nii.gz", np.stack([phantom, phantom]))
    with pytest.raises(DataError, match=r"bold\.nii\.gz.*4-D.*time series / several volumes.*fslroi"):
        read_volume(path)
    one = read_volume(make_nifti(tmp_path / "one.nii.gz", phantom[None]))
    assert np.array_equal(one.voxels, phantom)
    with pytest.raises(DataError, match=r"example4d\.nii\.gz.*4-D"):
        read_volume(NIB_DATA / "example4d.nii.gz")


def test_nibabel_real_mr_volume(tmp_path: Path) -> None:
    path = NIB_DATA / "anatomical.nii"
    img = nib.load(path)
    vol = read_volume(path)
    assert vol.source_shape == img.shape and vol.voxels.shape == (img.shape[2], img.shape[1], img.shape[0])  # LAS file
    assert np.array_equal(vol.voxels, file_to_display(np.asarray(img.dataobj, dtype=np.float32), img.affine))
    fg = vol.voxels[vol.voxels != 0]
    assert vol.window == pytest.approx(tuple(np.percentile(fg, (0.5, 99.5))))
    pixels = vol.slices_uint8()
    assert pixels.dtype == np.uint8 and pixels.max() == 255
    assert brain_slices(pixels).any()
    out = tmp_path / "heat.nii.gz"
    write_nifti(out, vol.voxels, vol)
    written = nib.load(out)
    assert np.array_equal(written.affine, img.affine) and written.shape == img.shape
    assert (int(written.header["qform_code"]), int(written.header["sform_code"])) == (2, 2)  # the input's codes
    assert np.array_equal(written.get_fdata(dtype=np.float32), np.asarray(img.dataobj, dtype=np.float32))


def test_damaged_nifti_named_and_skipped(tmp_path: Path, phantom: np.ndarray) -> None:
    good = make_nifti(tmp_path / "in" / "good.nii", phantom)
    bad = tmp_path / "in" / "bad.nii.gz"
    bad.write_bytes(gzip.compress(good.read_bytes())[:500])  # truncated
    with pytest.raises(DataError, match=r"bad\.nii\.gz"):
        read_volume(bad)
    volumes, skipped = read_volumes([tmp_path / "in"])
    assert [v.name for v in volumes] == ["good"]
    assert [Path(s.path).name for s in skipped] == ["bad.nii.gz"]


# ---------------------------------------------------------------------------------------------------- windowing
def test_slice_the_model_sees_is_the_windowed_source_slice(tmp_path: Path, phantom: np.ndarray) -> None:
    affine = AFFINES["oblique_sagittal"]
    path = make_nifti(tmp_path / "s.nii.gz", phantom, affine)
    source = np.asarray(nib.load(path).dataobj, dtype=np.float64)
    vol = read_volume(path)
    low, high = np.percentile(source[source != 0], (0.5, 99.5))
    assert vol.window == pytest.approx((low, high))
    expected = file_to_display(windowed(source, low, high), affine)
    assert np.array_equal(vol.slices_uint8(), expected)
    fixed = read_volume(path, window=Window("fixed", center=300.0, width=200.0))
    assert fixed.window == (200.0, 400.0)
    assert np.array_equal(fixed.slices_uint8(), file_to_display(windowed(source, 200.0, 400.0), affine))


def test_percentile_window_ignores_zero_background(tmp_path: Path) -> None:
    data = np.zeros((4, 10, 10), np.float32)
    data[:, 3:7, 3:7] = np.linspace(100, 200, 64, dtype=np.float32).reshape(4, 4, 4)
    vol = read_volume(make_nifti(tmp_path / "a.nii", data), window=Window("percentile", percentiles=(0, 100)))
    assert vol.window == (100.0, 200.0)
    pixels = vol.slices_uint8()
    assert pixels[:, 0, 0].tolist() == [0] * 4 and pixels.max() == 255


@pytest.mark.parametrize("value", [0.0, 7.5])
def test_constant_volume_gives_zero_slices(tmp_path: Path, value: float) -> None:
    vol = read_volume(make_nifti(tmp_path / "c.nii", np.full((3, 8, 8), value, np.float32)))
    pixels = vol.slices_uint8()
    assert pixels.dtype == np.uint8 and not pixels.any()
    assert np.all(np.isfinite(vol.window))
    assert not brain_slices(pixels).any()


def test_binary_volume_and_nan_voxels(tmp_path: Path) -> None:
    mask = np.zeros((2, 6, 6), np.float32)
    mask[:, 2:4, 2:4] = 1
    vol = read_volume(make_nifti(tmp_path / "m.nii", mask))
    assert vol.window == (0.0, 1.0)
    assert np.array_equal(vol.slices_uint8(), (mask * 255).astype(np.uint8))
    mask[0, 0, 0] = np.nan
    nan_vol = read_volume(make_nifti(tmp_path / "n.nii", mask))
    assert nan_vol.slices_uint8()[0, 0, 0] == 0 and nan_vol.window == (0.0, 1.0)


def test_bad_window_settings(tmp_path: Path, phantom: np.ndarray) -> None:
    path = make_nifti(tmp_path / "a.nii", phantom)
    with pytest.raises(DataError, match="no DICOM window"):
        read_volume(path, window=Window("dicom"))
    with pytest.raises(DataError, match="width > 0"):
        read_volume(path, window=Window("fixed", center=10.0, width=0.0))
    with pytest.raises(DataError, match="percentiles"):
        read_volume(path, window=Window("percentile", percentiles=(50, 10)))


# ---------------------------------------------------------------------------------------------------- writing
def test_write_nifti_on_the_source_grid(tmp_path: Path, phantom: np.ndarray) -> None:
    affine = AFFINES["lip_permuted"]
    marked = phantom.copy()
    marked[2, 3, 4] = 5000.0  # one voxel brighter than all others
    src = make_nifti(tmp_path / "scan.nii.gz", marked, affine, qform_code=1, sform_code=2)
    vol = read_volume(src)
    heat = np.zeros(vol.voxels.shape, np.float32)
    heat[tuple(np.argwhere(vol.voxels == 5000.0)[0])] = 1.0
    out = tmp_path / "out" / "scan_heatmap.nii.gz"
    write_nifti(out, heat, vol)
    img = nib.load(out)
    assert img.shape == vol.source_shape and img.get_data_dtype() == np.float32
    assert np.array_equal(img.affine, nib.load(src).affine)
    assert (int(img.header["qform_code"]), int(img.header["sform_code"])) == (1, 2)
    data = img.get_fdata(dtype=np.float32)
    source = np.asarray(nib.load(src).dataobj, dtype=np.float32)
    assert np.array_equal(np.argwhere(data == 1.0), np.argwhere(source == 5000.0))  # the heat lands on the marked voxel
    assert not [p.name for p in out.parent.iterdir() if p.name != out.name]  # no temporary file left behind
    with pytest.raises(OutputError, match="--overwrite|overwrite"):
        write_nifti(out, heat, vol)
    write_nifti(out, heat * 2, vol, overwrite=True)
    assert nib.load(out).get_fdata().max() == 2.0


def test_write_nifti_never_replaces_an_input_or_a_foreign_file(tmp_path: Path, phantom: np.ndarray) -> None:
    src = make_nifti(tmp_path / "scan.nii", phantom)
    vol = read_volume(src)
    before = src.read_bytes()
    with pytest.raises(OutputError):
        write_nifti(src, vol.voxels, vol, overwrite=True)
    other = make_nifti(tmp_path / "other.nii", phantom)
    with pytest.raises(OutputError, match="not written by neuroxai"):
        write_nifti(other, vol.voxels, vol, overwrite=True)
    assert src.read_bytes() == before
    with pytest.raises(DataError, match="shape"):
        write_nifti(tmp_path / "x.nii", vol.voxels[:-1], vol)
    with pytest.raises(DataError, match=r"\.nii"):
        write_nifti(tmp_path / "x.png", vol.voxels, vol)


# ---------------------------------------------------------------------------------------------------- DICOM
def dicom_phantom() -> np.ndarray:
    vol, _ = phantom_volume((7, 20, 16), tumour=(3, 6, 10), radius=3)
    return np.rint(vol / 2) * 2  # representable with slope 2, intercept -1024


def test_dicom_series_shuffled_two_series_and_extensionless_file(tmp_path: Path) -> None:
    stack = dicom_phantom()
    folder = tmp_path / "exam"
    first = make_dicom_series(folder, stack, series_number=3, seed=1)
    other = stack[:, ::-1, :] + 10
    make_dicom_series(folder, other, series_number=8, seed=2, slope=1.0, intercept=0.0)
    first[2].rename(folder / "IMG0002")  # no extension: found by its DICM marker
    (folder / "notes.txt").write_text("not dicom")
    (folder / "fake.dcm").write_text("not dicom either")

    found = find_volumes([folder])
    assert len(found.dicom) == 1 and len(found.dicom[0]) == 2 * len(stack) + 1
    assert [Path(s.path).name for s in found.ignored] == ["notes.txt"]
    volumes, skipped = read_volumes([folder])
    assert [v.name for v in volumes] == ["exam_s3", "exam_s8"]
    assert [Path(s.path).name for s in skipped] == ["fake.dcm"] and "not a DICOM file" in skipped[0].reason
    assert np.array_equal(volumes[0].voxels, stack.astype(np.float32))  # order from positions, slope/intercept applied
    assert np.array_equal(volumes[1].voxels, other.astype(np.float32))
    assert volumes[0].series != volumes[1].series and volumes[0].source == str(folder)
    with pytest.raises(DataError, match="2 DICOM series.*read_volumes"):
        read_volume(folder)


def test_dicom_affine_is_ras_from_patient_geometry(tmp_path: Path) -> None:
    stack = dicom_phantom()
    spacing, origin = (0.7, 0.9, 2.5), (-80.0, -100.0, 30.0)
    make_dicom_series(tmp_path / "s", stack, spacing=spacing, origin=origin)
    vol = read_volume(tmp_path / "s")
    # display voxel (z, r, c) of an axial series is pixel (r, c) of slice z; its LPS position is known
    z, r, c = 4, 5, 7
    lps = (
        np.array(origin)
        + c * spacing[1] * np.array([1, 0, 0])
        + r * spacing[0] * np.array([0, 1, 0])
        + z * spacing[2] * np.array([0, 0, 1])
    )
    index = np.argwhere(
        vol.to_source(
            np.pad(np.ones((1, 1, 1)), [(z, stack.shape[0] - z - 1), (r, stack.shape[1] - r - 1), (c, stack.shape[2] - c - 1)])
        )
        == 1
    )[0]
    ras = vol.affine @ np.array([*index, 1.0])
    assert np.allclose(ras[:3], lps * np.array([-1, -1, 1]))
    # written and read back as NIfTI: the same display and geometry (nibabel agrees)
    out = tmp_path / "s.nii.gz"
    write_nifti(out, vol.voxels, vol)
    again = read_volume(out)
    assert np.array_equal(again.voxels, vol.voxels) and np.allclose(again.affine, vol.affine)
    assert nib.aff2axcodes(vol.affine) == ("L", "P", "S")


def test_dicom_sagittal_series_shown_axially(tmp_path: Path) -> None:
    stack = dicom_phantom()  # [k, r, c]: rows run inferior, columns posterior, slices towards the right
    make_dicom_series(tmp_path / "sag", stack, orientation=(0, 1, 0, 0, 0, -1), spacing=(1.0, 1.0, 1.0))
    vol = read_volume(tmp_path / "sag")
    assert np.array_equal(vol.voxels, stack[::-1, ::-1, :].transpose(1, 2, 0).astype(np.float32))


def test_dicom_rescale_per_slice_and_window(tmp_path: Path) -> None:
    stack = dicom_phantom()
    slopes = [2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0]
    stack = np.rint(stack / 4) * 4
    intercepts = [-1024.0, 0, 8, -1024, 0, -4, 100]
    make_dicom_series(tmp_path / "s", stack, slope=slopes, intercept=intercepts, window=(400.0, 600.0), signed=True)
    vol = read_volume(tmp_path / "s")
    assert np.array_equal(vol.voxels, stack.astype(np.float32))
    assert vol.window == (100.0, 700.0)  # auto = the series' WindowCenter/Width
    assert np.array_equal(vol.slices_uint8(), windowed(stack, 100.0, 700.0))
    pct = read_volume(tmp_path / "s", window=Window("percentile"))
    assert pct.window == pytest.approx(tuple(np.percentile(stack[stack != 0], (0.5, 99.5))))


def test_monochrome1_dicom_is_shown_bright_as_bright(tmp_path: Path) -> None:
    stack = dicom_phantom()
    paths = make_dicom_series(tmp_path / "m1", stack, window=(200.0, 400.0))
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.save_as(path)
    vol = read_volume(tmp_path / "m1")
    assert np.array_equal(vol.voxels, stack)  # intensities are left as they are
    assert np.array_equal(vol.slices_uint8(), 255 - windowed(stack, 0.0, 400.0))


def test_dicom_series_that_cannot_be_volumes_are_skipped_with_reasons(tmp_path: Path) -> None:
    stack = dicom_phantom()
    make_dicom_series(tmp_path / "t4d", stack, series_uid="1.2.3.4", seed=1)
    make_dicom_series(tmp_path / "t4d", stack, series_uid="1.2.3.4", seed=2)  # a second time point at the same positions
    make_dicom_series(tmp_path / "mixed", stack, series_uid="1.2.3.5", seed=1)
    make_dicom_series(tmp_path / "mixed", stack[:, :10, :], series_uid="1.2.3.5", seed=2, origin=(0, 0, 100))
    good = make_dicom_series(tmp_path / "withreport", stack, seed=4)
    ds = pydicom.dcmread(good[0])
    del ds.PixelData
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "withreport" / "report.dcm")
    volumes, skipped = read_volumes([tmp_path])
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert [v.name for v in volumes] == ["withreport"] and np.array_equal(volumes[0].voxels, stack)
    assert "4-D" in reasons["t4d"] and "time points" in reasons["t4d"]
    assert "different sizes" in reasons["mixed"]
    assert "no pixel data" in reasons["report.dcm"]
    with pytest.raises(DataError, match="t4d.*4-D"):
        read_volume(tmp_path / "t4d")


def test_multiframe_dicom_is_skipped_with_a_reason(tmp_path: Path) -> None:
    path = make_dicom_series(tmp_path / "mf", dicom_phantom()[:1])[0]
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    ds.save_as(path)
    with pytest.raises(DataError, match="multi-frame.*dcm2niix"):
        read_volume(path)


def test_pydicom_real_mr_files() -> None:
    vol = read_volume(DCM_DATA / "MR_small.dcm")
    ds = pydicom.dcmread(DCM_DATA / "MR_small.dcm")
    assert vol.n_slices == 1 and vol.name == "MR_small"
    assert np.array_equal(vol.voxels[0], ds.pixel_array.astype(np.float32))  # axial, no rescale: the image as stored
    assert vol.window == (600 - 1600 / 2, 600 + 1600 / 2)  # the file's window centre/width
    with pytest.raises(DataError, match=r"MR_truncated\.dcm.*truncated"):
        read_volume(DCM_DATA / "MR_truncated.dcm")


def test_compressed_dicom_without_decoder(tmp_path: Path) -> None:
    path = DCM_DATA / "MR_small_jpeg_ls_lossless.dcm"
    try:
        pydicom.dcmread(path).pixel_array
    except RuntimeError:
        with pytest.raises(DataError, match=r"MR_small_jpeg_ls_lossless\.dcm.*JPEG-LS.*pip install pylibjpeg pylibjpeg-libjpeg"):
            read_volume(path)
        volumes, skipped = read_volumes([path])  # (named with MR_small.dcm it would join that file's series: same UIDs)
        assert volumes == [] and "no decoder" in skipped[0].reason
    else:  # a decoder is installed here: the lossless file reads like the uncompressed one
        assert np.array_equal(read_volume(path).voxels, read_volume(DCM_DATA / "MR_small.dcm").voxels)


# ---------------------------------------------------------------------------------------------------- finding files
def test_find_volumes_walk_rules(tmp_path: Path, phantom: np.ndarray) -> None:
    root = tmp_path / "data"
    make_nifti(root / "a" / "t1.nii.gz", phantom)
    make_nifti(root / "b" / "T1.NII", phantom)
    make_nifti(root / ".hidden" / "x.nii", phantom)
    make_nifti(root / "outputs" / "heat.nii.gz", phantom)
    (root / "outputs" / OUTPUT_MARKER).write_text("{}")
    make_dicom_series(root / "dcm" / "series1", dicom_phantom()[:2])
    (root / "a" / "scan.png").write_bytes(b"")
    found = find_volumes([root, tmp_path / "nope.nii", root / "a" / "scan.png"])
    assert [Path(p).relative_to(root).as_posix() for p in found.nifti] == ["a/t1.nii.gz", "b/T1.NII"]
    assert [len(g) for g in found.dicom] == [2] and Path(found.dicom[0][0]).parent.name == "series1"
    assert [Path(m.path).name for m in found.missing] == ["nope.nii"]
    ignored = {Path(s.path).name for s in found.ignored}
    assert {".hidden", "outputs"} <= ignored and "scan.png" not in ignored  # images, found or named, are find_images'
    assert not any(root / "a" / "scan.png" == Path(p) for g in found.dicom for p in g)
    volumes, skipped = read_volumes([root, root / "a" / "t1.nii.gz"])
    assert [v.name for v in volumes] == ["t1", "T1_2", "series1"]  # each file once; names unique
    assert not skipped


def test_find_images_lists_scanner_files_apart(tmp_path: Path, phantom: np.ndarray) -> None:
    make_nifti(tmp_path / "d" / "vol.nii.gz", phantom)
    paths = make_dicom_series(tmp_path / "d" / "s", dicom_phantom()[:2], names=["IM1", "IM2.dcm"], shuffle=False)
    found = find_images([tmp_path / "d", tmp_path / "d" / "vol.nii.gz"])
    assert not found.files and not found.ignored
    assert sorted(Path(p).name for p in found.volumes) == ["IM1", "IM2.dcm", "vol.nii.gz"]
    assert [file_kind(n) for n in ("a.nii.gz", "b.NII", "c.dcm", "d.IMA", "IM1")] == ["volume"] * 4 + ["other"]
    assert is_dicom_file(paths[0]) and is_dicom_file("x.dcm") and not is_dicom_file(tmp_path / "d" / "vol.nii.gz")
    assert all(is_volume_name("x" + e.upper()) for e in MEDICAL_EXTENSIONS)


def test_read_volume_inputs_that_are_not_volumes(tmp_path: Path, phantom: np.ndarray) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_volume(tmp_path / "missing.nii.gz")
    make_nifti(tmp_path / "n" / "a.nii", phantom)
    with pytest.raises(DataError, match=r"no DICOM files.*a\.nii.*read_volumes"):
        read_volume(tmp_path / "n")
    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    with pytest.raises(DataError, match="not a scanner file"):
        read_volume(tmp_path / "x.png")


@pytest.mark.parametrize("module", ["nibabel", "pydicom"])
def test_missing_extra_is_named(tmp_path: Path, phantom: np.ndarray, monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    nii = make_nifti(tmp_path / "a.nii", phantom)
    dcm = make_dicom_series(tmp_path / "s", dicom_phantom()[:1])[0]
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(DataError, match=r"neuroxai\[medical\]"):
        read_volume(nii if module == "nibabel" else dcm)


# ---------------------------------------------------------------------------------------------------- brain slices
def test_brain_slices_rule() -> None:
    slices = np.zeros((4, 10, 10), np.uint8)
    slices[1, :5, :] = 26  # half the pixels above the level
    slices[2, 0, :5] = 200  # exactly 5% of the pixels
    slices[3, 0, :4] = 200  # 4%: too few
    slices[0] = 25  # at the level, not above
    assert brain_slices(slices).tolist() == [False, True, True, False]
    assert brain_slices(slices, level=10, min_fraction=0.5).tolist() == [True, True, False, False]
    assert brain_slices(slices[1]).tolist() == [True]
    with pytest.raises(DataError, match=r"\[Z, H, W\]"):
        brain_slices(np.zeros((2, 2, 2, 2), np.uint8))


def test_brain_slices_on_a_phantom_volume(tmp_path: Path) -> None:
    vol, _ = phantom_volume((12, 48, 48), empty=2)
    read = read_volume(make_nifti(tmp_path / "p.nii.gz", vol))
    keep = brain_slices(read.slices_uint8())
    assert not keep[:2].any() and not keep[-2:].any() and keep[3:-3].all()


def test_to_source_checks_the_shape(tmp_path: Path, phantom: np.ndarray) -> None:
    vol = read_volume(make_nifti(tmp_path / "a.nii", phantom))
    with pytest.raises(DataError, match="shape"):
        vol.to_source(np.zeros((1, 2, 3)))
    assert isinstance(vol, Volume) and "voxels" not in repr(vol).split("window")[1]


def test_degenerate_affine_is_read_in_file_order(tmp_path: Path, phantom: np.ndarray, caplog: pytest.LogCaptureFixture) -> None:
    img = nib.Nifti1Image(phantom.T, None)
    img.set_sform(np.diag([0.0, 0.0, 0.0, 1.0]), code=1)  # a broken affine: every voxel at one point
    path = tmp_path / "z.nii"
    nib.save(img, path)
    with caplog.at_level(logging.WARNING, logger="neuroxai.data._medical"):
        vol = read_volume(path)
    assert "degenerate" in caplog.text
    assert np.array_equal(vol.to_source(vol.voxels), np.asarray(nib.load(path).dataobj, dtype=np.float32))


# ---------------------------------------------------------------------------------------------------- real slices
FIGSHARE = os.environ.get("NEUROXAI_FIGSHARE")


@pytest.mark.integration
@pytest.mark.skipif(not (FIGSHARE and os.path.isdir(os.path.join(FIGSHARE, "images"))), reason="set NEUROXAI_FIGSHARE")
@pytest.mark.parametrize("affine_name", ["lps", "oblique_sagittal"])
def test_figshare_slices_stacked_into_nifti_read_back_exactly(tmp_path: Path, affine_name: str) -> None:
    from PIL import Image

    assert FIGSHARE is not None
    files = sorted(Path(FIGSHARE, "images").glob("*.jpg"), key=lambda p: int(p.stem))[:6]
    stack = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])
    path = make_nifti_display(tmp_path / "fig.nii.gz", stack, AFFINES[affine_name], dtype=np.uint8)
    assert np.array_equal(display_to_file(stack, AFFINES[affine_name]).T.T, np.asarray(nib.load(path).dataobj))
    vol = read_volume(path, window=Window("fixed", center=127.5, width=255.0))
    assert vol.window == (0.0, 255.0)
    assert np.array_equal(vol.slices_uint8(), stack)
    assert brain_slices(vol.slices_uint8()).all()


def test_dicom_files_named_one_by_one_read_as_their_series(tmp_path: Path) -> None:
    """``series/*.dcm`` on a command line is one volume per series, exactly like the folder."""
    vol, _ = phantom_volume((6, 24, 20), tumour=(3.0, 10.0, 10.0), empty=0)
    folder = tmp_path / "series"
    make_dicom_series(folder, vol)
    files = sorted(str(f) for f in folder.iterdir())
    from_folder, _ = read_volumes([folder])
    from_files, skipped = read_volumes(files)
    assert not skipped
    assert len(from_files) == len(from_folder) == 1
    np.testing.assert_array_equal(from_files[0].voxels, from_folder[0].voxels)
    np.testing.assert_allclose(from_files[0].affine, from_folder[0].affine)
    assert from_files[0].n_slices == 6
