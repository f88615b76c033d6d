"""`neuroxai predict` and `neuroxai explain` on scanner volumes beside images: per-slice rows, per-volume results."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from volume_helpers import EMPTY, SLICE, TEST_SLICE_THRESHOLD, phantom_stack, write_phantom_nifti

from neuroxai.cli import main

pytestmark = pytest.mark.slow
GLIOMA, NOTUMOR = 0, 2
WINDOW = "500,1000"  # CENTER,WIDTH: 0..1000 -> 0..255, the phantoms as trained
RULE = ["--volume-slice-threshold", str(TEST_SLICE_THRESHOLD)]  # the tiny test CNN's tumour slices reach 0.6-0.9


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """A glioma NIfTI volume, a no-tumour DICOM series folder, a 2-D image, and a broken NIfTI file."""
    from medical_helpers import make_dicom_series

    root = tmp_path_factory.mktemp("scans")
    glioma, _ = phantom_stack([EMPTY, NOTUMOR, GLIOMA, GLIOMA, GLIOMA, GLIOMA, NOTUMOR, EMPTY], seed=3)
    write_phantom_nifti(root / "scan.nii.gz", glioma)
    healthy, _ = phantom_stack([EMPTY, NOTUMOR, NOTUMOR, NOTUMOR, NOTUMOR, EMPTY], seed=4)
    make_dicom_series(root / "series", healthy * 1000.0)  # 16-bit, slope 2, intercept -1024, shuffled files
    Image.fromarray((glioma[3] * 255).astype(np.uint8)).save(root / "slice.png")
    (root / "broken.nii.gz").write_bytes(b"not a nifti file at all")
    return root


def _read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_predict_images_and_volumes(run_dir, scans, tmp_path, capsys):
    out = tmp_path / "preds.csv"
    args = [str(scans / n) for n in ("scan.nii.gz", "series", "slice.png", "broken.nii.gz")]
    assert main(["predict", str(run_dir), *args, "--csv", str(out), "--window", WINDOW, "--no-progress", *RULE]) == 0
    err = capsys.readouterr().err
    rows = _read(out)
    image = [r for r in rows if r["path"].endswith("slice.png")]
    assert len(image) == 1 and image[0]["slice"] == ""  # images have no slice index
    scan = [r for r in rows if r["path"].endswith("scan.nii.gz")]
    assert [int(r["slice"]) for r in scan] == list(range(1, 7))  # blank slices 0 and 7 skipped
    assert [r["predicted"] for r in scan][1:5] == ["glioma"] * 4
    series = [r for r in rows if r["path"].endswith("series")]
    assert [int(r["slice"]) for r in series] == [1, 2, 3, 4]

    volumes = {r["path"].rsplit("/", 1)[-1]: r for r in _read(tmp_path / "preds.volumes.csv")}
    assert set(volumes) == {"scan.nii.gz", "series"}
    assert volumes["scan.nii.gz"]["answer"] == "glioma" and float(volumes["scan.nii.gz"]["evidence"]) >= 0.5
    assert set(volumes["scan.nii.gz"]["carried_by"].split("|")) <= {"2", "3", "4", "5"}
    assert (volumes["scan.nii.gz"]["slices"], volumes["scan.nii.gz"]["classified"]) == ("8", "6")
    assert volumes["scan.nii.gz"]["no_brain"] == "0|7"
    assert volumes["scan.nii.gz"]["reason"].startswith("glioma on 4 adjacent slices (2-5)")  # why, in one line
    assert volumes["scan.nii.gz"]["set_aside"] == ""  # this run has no out-of-distribution score
    assert volumes["series"]["answer"] == "notumor" and volumes["series"]["series"]  # the SeriesInstanceUID
    assert {"evidence_glioma", "evidence_meningioma"} <= set(volumes["series"]) and "evidence_notumor" not in volumes["series"]

    assert "volume scan: glioma" in err and "volume series: notumor" in err  # one line per volume
    assert "broken.nii.gz" in err  # skipped and reported, not fatal


def test_predict_to_stdout_and_a_foreign_volumes_csv(run_dir, scans, tmp_path, capsys):
    top_k = ["--volume-rule", "top-k", "--volume-top-k", "1"]  # the rule of earlier releases is still there
    assert main(["predict", str(run_dir), str(scans / "scan.nii.gz"), "--window", WINDOW, *top_k]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].endswith(",slice,series") and "volume scan: glioma" in captured.err

    (tmp_path / "p.volumes.csv").write_text("someone's notes\n")
    code = main(["predict", str(run_dir), str(scans / "scan.nii.gz"), "--csv", str(tmp_path / "p.csv")])
    assert code == 2 and "not written by neuroxai" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()  # refused before any work
    with pytest.raises(SystemExit):
        main(["predict", str(run_dir), str(scans / "scan.nii.gz"), "--window", "wide"])


def test_explain_volume_writes_heatmap_montage_and_tables(run_dir, scans, tmp_path, capsys):
    import nibabel as nib

    out = tmp_path / "xai"
    args = [str(scans / n) for n in ("scan.nii.gz", "slice.png", "broken.nii.gz")]
    assert main(["explain", str(run_dir), *args, "--out", str(out), "--window", WINDOW, "--no-progress", *RULE]) == 0
    captured = capsys.readouterr()
    heat = nib.load(out / "scan_heatmap.nii.gz")
    assert heat.shape == (SLICE, 8, SLICE) and np.allclose(heat.affine, nib.load(scans / "scan.nii.gz").affine)
    assert (out / "scan_montage.png").is_file() and (out / "slice.png").is_file()
    rows = _read(out / "predictions.csv")
    slices = [r for r in rows if r["slice"]]
    assert len(slices) == 6 and {r["overlay"] for r in slices} == {"scan_heatmap.nii.gz"}
    assert {r["explained"] for r in slices} == {"glioma"}  # one class for the whole volume: its answer
    (volume,) = _read(out / "volumes.csv")
    assert (volume["answer"], volume["explained"], volume["montage"]) == ("glioma", "glioma", "scan_montage.png")
    assert [r["path"].endswith("broken.nii.gz") for r in _read(out / "skipped.csv")] == [True]
    assert "Explained 1 image(s) and 1 volume(s)" in captured.out and "volume scan: glioma" in captured.err
