"""Reliability, round two (issue 26): each test reproduces a finding of a hostile user's session on a fresh clone.

Tiny hand-built runs (no training), phantom images and volumes; the memory findings are measured in
``benchmarks/memory.py`` (their unit tests, that sizes are refused before anything is allocated, are in
``tests/data/test_reader_limits.py``).
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from cli_runs import make_run

from neuroxai._io import OUTPUT_MARKER
from neuroxai.cli import main

_DATA_HELPERS = str(Path(__file__).resolve().parents[1] / "data")  # the NIfTI and DICOM writers of the data tests
if _DATA_HELPERS not in sys.path:
    sys.path.append(_DATA_HELPERS)

from datatest_helpers import no_hang  # noqa: E402
from medical_helpers import make_dicom_series, make_nifti, phantom_volume  # noqa: E402

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="named pipes and file names with newlines are POSIX")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("rel2-run") / "run")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from neuroxai.data import write_phantoms

    return write_phantoms(tmp_path_factory.mktemp("rel2") / "data", n_per_class=3, image_size=32, seed=4)


@pytest.fixture(scope="module")
def images(data_dir):
    return sorted(str(p) for p in (data_dir / "Testing").rglob("ph-*.png") if not p.stem.endswith("_mask"))


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A small head-like volume (a few brain slices) as NIfTI."""
    vol, _ = phantom_volume((6, 32, 32), tumour=(3, 12, 14), radius=3, empty=1)
    return make_nifti(tmp_path_factory.mktemp("rel2-vol") / "head.nii.gz", vol)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _stderr_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------------- 1. memory bombs
def test_a_volume_bomb_is_refused_with_the_size_it_claims_and_the_limit(run_dir, images, tmp_path, capsys):
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_shape((2048, 2048, 512))  # 2.1 billion voxels claimed by a file of 0.1 KB
    hdr.set_data_dtype(np.uint8)
    hdr["vox_offset"] = 352
    bomb = tmp_path / "bomb.nii.gz"
    bomb.write_bytes(gzip.compress(hdr.binaryblock + b"\x00" * 4))
    assert main(["predict", str(run_dir), str(bomb), images[0], "--no-progress"]) == 0
    lines = [line for line in _stderr_lines(capsys.readouterr().err) if "bomb.nii.gz" in line]
    assert len(lines) == 1 and "2048 x 2048 x 512" in lines[0] and "limit of 67,108,864 voxels" in lines[0], lines
    assert "MemoryError" not in lines[0] and "truncated" not in lines[0]


# ---------------------------------------------------------------------------------------------------- 2. named pipes
def _no_hang(argv: list[str], fifos: list[Path], seconds: float = 120.0) -> int:
    """``main(argv)``'s exit status; the test fails if the command waits on a named pipe."""
    rc = no_hang(lambda: main(argv), fifos, seconds, what=f"`neuroxai {argv[0]}`")
    assert isinstance(rc, int)
    return rc


@posix_only
def test_named_pipes_beside_images_and_in_dicom_folders_are_skipped_not_waited_on(run_dir, images, tmp_path, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    shutil.copy(images[0], folder / "scan.png")
    vol, _ = phantom_volume((4, 16, 16), empty=0)
    make_dicom_series(folder / "series", vol)
    fifos = [folder / "pipe", folder / "series" / "pipe.dcm"]
    for fifo in fifos:
        os.mkfifo(fifo)
    assert _no_hang(["predict", str(run_dir), str(folder), "--no-progress"], fifos) == 0
    err = capsys.readouterr().err
    for fifo in fifos:  # skipped with the reason, once
        assert sum(f"skipped {fifo}: a named pipe (FIFO)" in line for line in err.splitlines()) == 1, err
    out = tmp_path / "explained"
    assert _no_hang(["explain", str(run_dir), str(folder), "--out", str(out), "--no-progress"], fifos) == 0
    skipped = {Path(r["path"]).name: r["reason"] for r in _rows(out / "skipped.csv")}
    assert "named pipe" in skipped["pipe"] and "named pipe" in skipped["pipe.dcm"]


# ---------------------------------------------------------------------------------------------------- 3. one volume never aborts explain
def _bad_affine_nifti(path: Path, affine: np.ndarray) -> Path:
    import nibabel as nib

    vol, _ = phantom_volume((4, 32, 32), empty=0)
    img = nib.Nifti1Image(vol.T.astype(np.float32), None)
    img.header.set_qform(None, code=0)
    img.header.set_sform(affine, code=2)
    nib.save(img, str(path))
    return path


def test_a_volume_whose_affine_cannot_be_written_is_skipped_and_the_tables_are_written(run_dir, images, head, tmp_path, capsys):
    singular = _bad_affine_nifti(tmp_path / "singular.nii.gz", np.diag([1.0, 0.0, 1.0, 1.0]))
    nan = _bad_affine_nifti(tmp_path / "nan.nii.gz", np.full((4, 4), np.nan))
    out = tmp_path / "out"
    argv = ["explain", str(run_dir), str(singular), str(nan), str(head), images[0], "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "HeaderDataError" not in err.replace("(HeaderDataError: ", "")
    skipped = {Path(r["path"]).name: r["reason"] for r in _rows(out / "skipped.csv")}
    assert set(skipped) == {"singular.nii.gz", "nan.nii.gz"}
    assert all("affine" in why and "\n" not in why for why in skipped.values())
    volumes = _rows(out / "volumes.csv")
    assert [Path(r["path"]).name for r in volumes] == ["head.nii.gz"]  # the good volume after the bad ones
    assert {Path(r["path"]).name for r in _rows(out / "predictions.csv")} == {"head.nii.gz", Path(images[0]).name}


def test_an_error_that_stops_explain_still_leaves_the_tables_of_what_was_done(run_dir, images, tmp_path, monkeypatch, capsys):
    from neuroxai.explain import Explanation

    real, calls = Explanation.save, []

    def save(self, directory, **kwargs):
        calls.append(kwargs["names"])
        if len(calls) == 2:
            raise RuntimeError("disk controller on fire")
        return real(self, directory, **kwargs)

    monkeypatch.setattr(Explanation, "save", save)
    out = tmp_path / "out"
    assert main(["explain", str(run_dir), *images[:3], "--out", str(out), "--batch-size", "1", "--no-progress"]) == 1
    assert "disk controller on fire" in capsys.readouterr().err
    assert [r["overlay"] for r in _rows(out / "predictions.csv")] == [f"{calls[0][0]}.png"]  # what was done
    assert (out / "skipped.csv").is_file()


# ---------------------------------------------------------------------------------------------------- 4. --overwrite after a kill
def test_overwrite_after_a_killed_explain_leaves_exactly_the_new_runs_files(run_dir, images, tmp_path, monkeypatch, capsys):
    from neuroxai.explain import Explanation

    out = tmp_path / "out"
    real, calls = Explanation.save, []

    def save(self, directory, **kwargs):
        marker = json.loads((Path(directory) / OUTPUT_MARKER).read_text())
        assert {f"{n}.png" for n in kwargs["names"]} <= set(marker["files"])  # recorded before they are written
        calls.append(kwargs["names"])
        if len(calls) == 4:
            raise KeyboardInterrupt  # killed while writing the fourth picture
        return real(self, directory, **kwargs)

    monkeypatch.setattr(Explanation, "save", save)
    assert main(["explain", str(run_dir), *images[:6], "--out", str(out), "--batch-size", "1", "--no-progress"]) == 130
    monkeypatch.undo()
    assert len(list(out.glob("*.png"))) == 3
    one = Path(images[-1])
    assert main(["explain", str(run_dir), str(one), "--out", str(out), "--overwrite", "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([OUTPUT_MARKER, f"{one.stem}.png", "predictions.csv", "skipped.csv"])
    assert sorted(json.loads((out / OUTPUT_MARKER).read_text())["files"]) == [
        f"{one.stem}.png",
        "predictions.csv",
        "skipped.csv",
    ]
    capsys.readouterr()


# ---------------------------------------------------------------------------------------------------- 6. a folder without neuroxai.json
def test_a_run_folder_without_its_spec_is_refused_with_the_fix(run_dir, images, tmp_path, capsys):
    import neuroxai
    from neuroxai.errors import ModelError

    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run_dir / "model.keras", bare / "model.keras")
    with pytest.raises(ModelError, match=r"no neuroxai\.json.*class_0\.\.class_3, input range 0\.\.1, no calibration"):
        neuroxai.load(bare)
    assert main(["predict", str(bare), images[0], "--no-progress"]) == 2
    line = capsys.readouterr().err.strip()
    assert "neuroxai.json" in line and str(bare / "model.keras") in line and "--input-range" in line
    assert neuroxai.load(bare / "model.keras").class_names == ("class_0", "class_1", "class_2", "class_3")  # the fix works


# ---------------------------------------------------------------------------------------------------- 7. two series in one folder
def test_two_dicom_series_in_one_folder_are_told_apart_in_every_row(run_dir, tmp_path, capsys):
    vol, _ = phantom_volume((5, 32, 32), empty=0)
    make_dicom_series(tmp_path / "study", vol, series_uid="1.2.3.4.1", series_number=1, seed=1)
    make_dicom_series(tmp_path / "study", vol[::-1].copy(), series_uid="1.2.3.4.2", series_number=2, seed=2)
    preds = tmp_path / "p.csv"
    assert main(["predict", str(run_dir), str(tmp_path / "study"), "--csv", str(preds), "--no-progress"]) == 0
    rows = _rows(preds)
    assert {r["series"] for r in rows} == {"1.2.3.4.1", "1.2.3.4.2"}
    keys = [(r["series"], r["slice"]) for r in rows]
    assert len(set(keys)) == len(keys)  # each slice row is one slice of one series
    assert {r["series"] for r in _rows(tmp_path / "p.volumes.csv")} == {"1.2.3.4.1", "1.2.3.4.2"}
    out = tmp_path / "ex"
    assert main(["explain", str(run_dir), str(tmp_path / "study"), "--out", str(out), "--no-progress"]) == 0
    assert {r["series"] for r in _rows(out / "predictions.csv")} == {"1.2.3.4.1", "1.2.3.4.2"}
    capsys.readouterr()


# ---------------------------------------------------------------------------------------------------- 8. smaller findings
def test_a_nul_byte_in_a_manifest_path_is_one_line_naming_the_row(data_dir, tmp_path, capsys):
    first = next((data_dir / "Training" / "glioma").glob("ph-*[0-9].png"))
    shutil.copy(first, tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("path,label\na.png,glioma\nb\x00.png,notumor\n", encoding="utf-8")
    assert main(["audit", str(tmp_path / "m.csv"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unexpected error" not in err and "m.csv line 3" in err and "NUL byte" in err


@posix_only
def test_the_audit_listing_escapes_newlines_and_bidi_marks(data_dir, tmp_path, capsys):
    root = tmp_path / "set"
    shutil.copytree(data_dir / "Training" / "glioma", root / "glioma")
    shutil.copytree(data_dir / "Training" / "notumor", root / "no\u202etumor")
    (root / "glioma" / "x.png\nneuroxai audit: error: forged").write_bytes(b"not an image")
    assert main(["audit", str(root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert not any(line.startswith("neuroxai audit: error: forged") for line in out.splitlines())
    assert "\u202e" not in out and "no\\u202etumor" in out


def test_the_html_report_shows_bidi_marks_escaped():
    from neuroxai.report._html import _environment

    page = _environment().from_string("<td>{{ name }}</td>").render(name="glioma\u202egpj.exe")
    assert page == "<td>glioma\\u202egpj.exe</td>"


def test_a_keras_file_that_is_not_an_archive_says_so(images, tmp_path, capsys):
    fake = tmp_path / "model.keras"
    fake.write_text("hello")
    assert main(["predict", str(fake), images[0], "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not a Keras archive" in err and "File not found" not in err


def test_a_model_that_needs_code_is_refused_in_one_line_naming_the_layer(images, tmp_path, capsys):
    import keras

    def double(t):
        return t * 2

    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(4, 3)(inputs)
    for k in range(30):  # a model with a long config: Keras' own message would quote it all
        x = keras.layers.Conv2D(4, 3, padding="same", name=f"conv_{k}")(x)
    x = keras.layers.Lambda(double, name="sneaky")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(x)))
    model.save(tmp_path / "lambda.keras")
    assert main(["predict", str(tmp_path / "lambda.keras"), images[0], "--no-progress"]) == 2
    lines = _stderr_lines(capsys.readouterr().err)
    assert len(lines) == 1 and len(lines[0]) < 600 and "'sneaky'" in lines[0] and "safe mode" in lines[0], lines


def test_a_skipped_volume_is_reported_once(run_dir, images, tmp_path, capsys):
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a nifti file")
    assert main(["predict", str(run_dir), str(broken), images[0], "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert sum("broken.nii.gz" in line for line in err.splitlines()) == 1, err


def test_a_refused_train_leaves_no_output_folder(data_dir, tmp_path, capsys):
    out = tmp_path / "runs" / "tiny"
    assert main(["train", "--data", str(data_dir), "--out", str(out), "--image-size", "7", "--epochs", "1", "--no-progress"]) == 2
    assert "16x16" in capsys.readouterr().err
    assert not out.exists() and not out.parent.exists()


def test_calibrate_refuses_a_one_image_validation_split(data_dir, tmp_path, capsys, caplog):
    import logging

    from neuroxai.data import Dataset
    from neuroxai.runs import MIN_CALIBRATION_SAMPLES, RunDirectory, fit_calibration, load

    run = make_run(tmp_path / "run")
    rows = ["path,label,split"]
    for split in ("Training", "Testing"):
        for p in sorted((data_dir / split).rglob("ph-*.png")):
            if not p.stem.endswith("_mask"):
                rows.append(f"{p},{p.parent.name},{'train' if split == 'Training' else 'test'}")
    rows[1] = rows[1].replace(",train", ",val")  # one validation image
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    before = (run / "neuroxai.json").read_text()
    argv = ["calibrate", str(run), "--data", str(tmp_path / "m.csv"), "--allow-outside-root", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"holds 1 image(s); calibrating needs at least {MIN_CALIBRATION_SAMPLES}" in err
    assert (run / "neuroxai.json").read_text() == before and RunDirectory(run).read_spec().calibration is None
    # the library fits it when asked, with a warning that gives the count
    predictor = load(run)
    ds = Dataset(tmp_path / "m.csv", progress=False, allow_outside_root=True)
    with caplog.at_level(logging.WARNING, logger="neuroxai"):
        cal = fit_calibration(predictor.model, ds, input_shape=(32, 32, 1), input_range=(0.0, 1.0))
    assert cal is not None and cal.n == 1
    assert any("on only 1 val image(s), fewer than 10" in r.getMessage() for r in caplog.records)


def _pixdim_nifti(path: Path) -> Path:
    vol, _ = phantom_volume((4, 32, 32), empty=0)
    make_nifti(path, vol.astype(np.int16), dtype=np.int16)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<f", raw, 80, -1.0)  # pixdim[1] < 0: nibabel fixes it and says so
    path.write_bytes(bytes(raw))
    return path


def test_third_party_warnings_reach_the_terminal_as_one_neuroxai_line_each(images, tmp_path, capsys):
    scan = _pixdim_nifti(tmp_path / "pixdim.nii")
    cjk = make_run(tmp_path / "cjk", class_names=("腫瘍", "正常"), model_source="user")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["predict", str(cjk), str(scan), "--no-progress"]) == 0
        assert main(["explain", str(cjk), images[0], "--out", str(tmp_path / "ex"), "--no-progress"]) == 0
    lines = _stderr_lines(capsys.readouterr().err)
    assert all(line.startswith("neuroxai") for line in lines), lines
    assert any("nibabel" in line and "pixdim" in line for line in lines), lines  # was printed raw by nibabel
    assert any("Glyph" in line and "UserWarning" in line for line in lines), lines  # was a raw warning with its source line
