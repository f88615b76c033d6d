"""The command line never loses a user's file, refuses nonsense before the work, and fails in one line.

Each test reproduces a finding of the reliability review (issue 14) on a tiny hand-built run (no training).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from pathlib import Path

import pytest
from cli_runs import CLASSES, make_run

from neuroxai.cli import main


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from neuroxai.data import write_phantoms

    return write_phantoms(tmp_path_factory.mktemp("rel") / "data", n_per_class=3, image_size=32, seed=2)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("rel-run") / "run")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_error_line(err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------------- outputs never touch inputs
def test_explain_refuses_to_write_over_its_input_scans(run_dir, data_dir, capsys):
    scans = data_dir / "Testing" / "glioma"
    before = _snapshot(scans)
    assert main(["explain", str(run_dir), str(scans), "--out", str(scans), "--no-progress"]) == 2
    _one_error_line(capsys.readouterr().err, "is an input")
    assert _snapshot(scans) == before


def test_explain_refuses_to_add_overlays_to_a_folder_of_training_images(run_dir, data_dir, capsys):
    target = data_dir / "Training" / "glioma"
    before = _snapshot(target)
    scan = next((data_dir / "Testing" / "glioma").glob("*.png"))
    assert main(["explain", str(run_dir), str(scan), "--out", str(target), "--no-progress"]) == 2
    _one_error_line(capsys.readouterr().err, "did not write", "new or empty folder")
    assert _snapshot(target) == before


def test_explain_replaces_its_own_earlier_output_only_with_overwrite(run_dir, data_dir, tmp_path, capsys):
    scan = next((data_dir / "Testing" / "glioma").glob("*.png"))
    out = tmp_path / "ex"
    assert main(["explain", str(run_dir), str(scan), "--out", str(out), "--no-progress"]) == 0
    assert main(["explain", str(run_dir), str(scan), "--out", str(out), "--no-progress"]) == 2
    _one_error_line(capsys.readouterr().err, "--overwrite")
    assert main(["explain", str(run_dir), str(scan), "--out", str(out), "--overwrite", "--no-progress"]) == 0


def test_predict_csv_never_replaces_an_image(run_dir, data_dir, tmp_path, capsys):
    image = tmp_path / "scan.png"
    shutil.copy(next((data_dir / "Testing" / "glioma").glob("*.png")), image)
    before = image.read_bytes()
    for extra in ([], ["--overwrite"]):
        assert main(["predict", str(run_dir), str(data_dir / "Testing"), "--csv", str(image), *extra, "--no-progress"]) == 2
        _one_error_line(capsys.readouterr().err, "not written by neuroxai")
    assert image.read_bytes() == before
    # the image itself as --csv while predicting it: an input
    assert main(["predict", str(run_dir), str(image), "--csv", str(image), "--no-progress"]) == 2
    _one_error_line(capsys.readouterr().err, "is an input")
    assert image.read_bytes() == before


def test_predict_csv_replaces_its_own_csv_only_with_overwrite(run_dir, data_dir, tmp_path, capsys):
    scans, out = data_dir / "Testing" / "glioma", tmp_path / "pred.csv"
    assert main(["predict", str(run_dir), str(scans), "--csv", str(out), "--no-progress"]) == 0
    assert main(["predict", str(run_dir), str(scans), "--csv", str(out), "--no-progress"]) == 2
    _one_error_line(capsys.readouterr().err, "earlier output", "--overwrite")
    assert main(["predict", str(run_dir), str(scans), "--csv", str(out), "--overwrite", "--no-progress"]) == 0


def test_predict_csv_inside_a_scanned_folder_is_refused(run_dir, data_dir, capsys):
    scans = data_dir / "Testing" / "glioma"
    assert main(["predict", str(run_dir), str(scans), "--csv", str(scans / "pred.csv"), "--no-progress"]) == 2
    _one_error_line(capsys.readouterr().err, "inside the input folder")
    assert not (scans / "pred.csv").exists()


def test_train_out_inside_the_data_is_refused_before_reading_it(data_dir, capsys):
    out = data_dir / "Training" / "run"
    argv = ["train", "--data", str(data_dir), "--out", str(out), "--epochs", "1", "--image-size", "32", "--no-progress"]
    assert main(argv) == 2
    _one_error_line(capsys.readouterr().err, "inside the input folder")
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------- one-line errors
def test_csv_that_is_a_folder_is_one_line(run_dir, data_dir, tmp_path, capsys):
    assert main(["predict", str(run_dir), str(data_dir / "Testing"), "--csv", str(tmp_path), "--no-progress"]) == 2
    _one_error_line(capsys.readouterr().err, "is a folder", "expected a file name")


def test_out_that_is_an_existing_file_is_one_line(data_dir, run_dir, tmp_path, capsys):
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    argv = ["train", "--data", str(data_dir), "--out", str(existing), "--epochs", "1", "--no-progress"]
    assert main(argv) == 2
    _one_error_line(capsys.readouterr().err, "is a file")
    scan = next((data_dir / "Testing" / "glioma").glob("*.png"))
    assert main(["explain", str(run_dir), str(scan), "--out", str(existing), "--no-progress"]) == 2
    _one_error_line(capsys.readouterr().err, "is a file")
    assert existing.read_text() == "mine"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc, a place nobody can write (root included)")
def test_an_unwritable_out_fails_in_one_line_before_any_work(run_dir, data_dir, capsys, monkeypatch):
    import neuroxai.runs

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before --csv was checked")

    monkeypatch.setattr(neuroxai.runs, "load", no_loading)
    scans = str(data_dir / "Testing")
    assert main(["predict", str(run_dir), scans, "--csv", "/proc/neuroxai-test/pred.csv", "--no-progress"]) == 2
    _one_error_line(capsys.readouterr().err, "cannot be written")
    argv = ["train", "--data", str(data_dir), "--out", "/proc/neuroxai-test/run", "--epochs", "1", "--no-progress"]
    assert main(argv) == 2
    _one_error_line(capsys.readouterr().err, "cannot be written")


def test_a_full_disk_fails_in_one_line_before_any_work(run_dir, data_dir, tmp_path, capsys, monkeypatch):
    import neuroxai._io
    import neuroxai.runs

    class Usage:
        free = 4096

    monkeypatch.setattr(neuroxai._io.shutil, "disk_usage", lambda path: Usage())
    monkeypatch.setattr(neuroxai.runs, "load", lambda *a, **k: pytest.fail("the model was loaded before --csv was checked"))
    assert main(["predict", str(run_dir), str(data_dir / "Testing"), "--csv", str(tmp_path / "p.csv"), "--no-progress"]) == 2
    _one_error_line(capsys.readouterr().err, "4096 bytes free")


def test_a_failed_final_write_is_one_line(run_dir, data_dir, tmp_path, capsys, monkeypatch):
    import neuroxai._io

    real = neuroxai._io.os.replace

    def full(src, dst):
        if str(dst).endswith("p.csv"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(neuroxai._io.os, "replace", full)
    assert main(["predict", str(run_dir), str(data_dir / "Testing"), "--csv", str(tmp_path / "p.csv"), "--no-progress"]) == 2
    _one_error_line(capsys.readouterr().err, "No space left on device", "p.csv")
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary file left behind


BAD_SPECS = {
    "a list": [1, 2],
    "null": None,
    "a bad class list": {"model": "cnn", "class_names": "glioma", "input_shape": [32, 32, 1], "input_range": [0, 1]},
    "a non-numeric shape": {"model": "cnn", "class_names": list(CLASSES), "input_shape": ["a", 32, 1], "input_range": [0, 1]},
    "a reversed range": {"model": "cnn", "class_names": list(CLASSES), "input_shape": [32, 32, 1], "input_range": [1, 0]},
    "an absurd range": {"model": "cnn", "class_names": list(CLASSES), "input_shape": [32, 32, 1], "input_range": [0, 1e300]},
    "a 2-d shape": {"model": "cnn", "class_names": list(CLASSES), "input_shape": [32, 32], "input_range": [0, 1]},
    "another model's shape": {"model": "cnn", "class_names": list(CLASSES), "input_shape": [48, 48, 1], "input_range": [0, 1]},
    "the wrong range for cnn": {
        "model": "cnn",
        "model_source": "neuroxai",
        "class_names": list(CLASSES),
        "input_shape": [32, 32, 1],
        "input_range": [0, 255],
    },
    "too few classes": {"model": "cnn", "class_names": ["a", "b"], "input_shape": [32, 32, 1], "input_range": [0, 1]},
}


@pytest.mark.parametrize("content", list(BAD_SPECS.values()), ids=list(BAD_SPECS))
def test_a_bad_spec_file_is_one_line_naming_it(run_dir, data_dir, tmp_path, content, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "neuroxai.json").write_text(json.dumps(content))
    scan = next((data_dir / "Testing" / "glioma").glob("*.png"))
    assert main(["predict", str(run), str(scan), "--no-progress"]) == 2
    captured = capsys.readouterr()
    _one_error_line(captured.err, "neuroxai.json")
    assert captured.out == ""  # no predictions with a spec that is wrong


def test_a_truncated_resume_state_is_one_line(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "backup").mkdir(parents=True)
    (out / "backup" / "state.json").write_text('{"fingerprint": {"model": "cnn"}, "ph')
    argv = ["train", "--data", str(data_dir), "--out", str(out), "--epochs", "1", "--image-size", "32", "--no-progress"]
    assert main(argv) == 2
    _one_error_line(capsys.readouterr().err, "state.json", "damaged", "--overwrite")


def test_resuming_with_other_settings_is_one_line(data_dir, tmp_path, capsys):
    from neuroxai.runs import ResumeState
    from neuroxai.runs._run import _save_weights  # noqa: F401  # the layout a real interrupted run leaves

    out = tmp_path / "run"
    (out / "backup").mkdir(parents=True)
    state = ResumeState(fingerprint={"model": "efficientnetb0"}, phase="single", epoch=1)
    (out / "backup" / "state.json").write_text(json.dumps(state.to_dict()))
    argv = ["train", "--data", str(data_dir), "--out", str(out), "--epochs", "1", "--image-size", "32", "--no-progress"]
    assert main(argv) == 2
    _one_error_line(capsys.readouterr().err, "other settings", "efficientnetb0")


def test_training_into_a_finished_run_is_refused_before_reading_data(run_dir, tmp_path, capsys):
    argv = ["train", "--data", str(tmp_path / "not-there"), "--out", str(run_dir), "--epochs", "1", "--no-progress"]
    assert main(argv) == 2
    _one_error_line(capsys.readouterr().err, "already holds a finished run", "--overwrite")


def test_evaluate_xai_n_zero_is_refused(run_dir, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["evaluate-xai", str(run_dir), "--phantoms", "2", "--n", "0", "--no-progress"])
    assert stop.value.code == 2
    assert "--n: expected a whole number >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--epochs", "--batch-size", "--lr", "--image-size"])
def test_train_refuses_non_positive_numbers(flag, tmp_path, capsys):
    for value in ("0", "-1", "nan"):
        with pytest.raises(SystemExit):
            main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), flag, value])
        assert "error: argument" in capsys.readouterr().err


def test_explain_api_with_a_float_target_is_a_clear_error(run_dir):
    import numpy as np

    import neuroxai
    from neuroxai.errors import ExplainError

    explainer = neuroxai.Explainer(neuroxai.load(run_dir), "gradcam")
    with pytest.raises(ExplainError, match="Target 1.0 is neither a class index, a class name, None .* nor a callable"):
        explainer.explain(np.zeros((1, 32, 32, 1), np.float32), targets=1.0)


def test_an_unexpected_error_is_one_line_and_a_traceback_with_v(run_dir, data_dir, capsys, monkeypatch):
    import neuroxai.runs

    def broken(*args, **kwargs):
        raise TypeError("something we did not foresee")

    monkeypatch.setattr(neuroxai.runs, "load", broken)
    scan = str(next((data_dir / "Testing" / "glioma").glob("*.png")))
    assert main(["predict", str(run_dir), scan, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unexpected error: TypeError: something we did not foresee" in err and "-v" in err
    assert main(["-v", "predict", str(run_dir), scan, "--no-progress"]) == 1
    assert "Traceback" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- hostile names
def test_class_names_cannot_become_spreadsheet_formulas(data_dir, tmp_path, capsys):
    names = ("=HYPERLINK(1)", "+1", "-2+3", "@SUM(A1)")
    run = make_run(tmp_path / "run", class_names=names, model_source="user")
    scans = str(data_dir / "Testing")
    assert main(["predict", str(run), scans, "--csv", str(tmp_path / "p.csv"), "--no-progress"]) == 0
    assert main(["predict", str(run), scans, "--no-progress"]) == 0
    for text in ((tmp_path / "p.csv").read_text(), capsys.readouterr().out):
        rows = list(csv.reader(io.StringIO(text)))
        assert len(rows) > 1
        for row in rows[1:]:
            assert row[1].startswith("'") and row[1][1:] in names  # predicted class, escaped
            assert all(not cell.startswith(("=", "+", "@")) for cell in row)


@pytest.mark.skipif(sys.platform == "win32", reason="file names with newlines are POSIX")
def test_file_names_with_control_characters_cannot_forge_lines(run_dir, data_dir, tmp_path, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    shutil.copy(next((data_dir / "Testing" / "glioma").glob("*.png")), folder / "good.png")
    (folder / "x.png\nneuroxai predict: error: forged.png").write_bytes(b"not an image")
    assert main(["predict", str(run_dir), str(folder), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert not any(line.startswith("neuroxai predict: error: forged") for line in err.splitlines()), err
    assert "\\nneuroxai predict: error: forged.png" in err  # shown with repr


def test_a_decompression_bomb_warning_is_never_printed_raw(run_dir, data_dir, capsys, monkeypatch):
    import warnings

    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600)  # a 32 x 32 scan is now "large" (warning, not error)
    scan = str(next((data_dir / "Testing" / "glioma").glob("*.png")))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        rc = main(["predict", str(run_dir), scan, "--no-progress"])
    err = capsys.readouterr().err
    assert rc in (0, 2) and "Traceback" not in err
    assert "DecompressionBombWarning" not in err and "warnings.warn" not in err
    assert all(line.startswith("neuroxai") for line in err.splitlines() if line.strip()), err


def test_decompression_bomb_warnings_become_one_log_line(caplog):
    import logging
    import warnings

    from PIL import Image

    from neuroxai.cli import _warnings_as_log

    logger = logging.getLogger("neuroxai.cli")
    logger.addHandler(caplog.handler)
    try:
        with warnings.catch_warnings(), _warnings_as_log():
            warnings.simplefilter("always")
            warnings.warn(Image.DecompressionBombWarning("Image size (99 pixels) exceeds limit"), stacklevel=1)
    finally:
        logger.removeHandler(caplog.handler)
    assert {r.getMessage() for r in caplog.records} == {
        "very large image (Pillow: Image size (99 pixels) exceeds limit); it is read, but needs much memory"
    }


# ---------------------------------------------------------------------------------------------------- manifests outside their folder
def test_manifest_paths_outside_its_folder_need_allow_outside_root(data_dir, tmp_path, capsys):
    inside, outside = tmp_path / "set", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    rows = ["path,label"]
    for i, cls in enumerate(("glioma", "notumor")):
        for j, src in enumerate(sorted((data_dir / "Training" / cls).glob("*.png"))[:2]):
            home = inside if (i + j) % 2 == 0 else outside
            shutil.copy(src, home / f"{cls}{j}.png")
            rows.append(f"{'../elsewhere/' if home is outside else ''}{cls}{j}.png,{cls}")
    manifest = inside / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    rc = main(["audit", str(manifest), "--format", "json", "--no-progress"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if rc == 0:  # the outside rows are skipped and reported
        report = json.loads(captured.out)
        assert report["images"] == 2 and len(report["skipped"]) == 2
    else:
        _one_error_line(captured.err, "--allow-outside-root")
    assert main(["audit", str(manifest), "--allow-outside-root", "--format", "json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 4
