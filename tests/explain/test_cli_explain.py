"""`neuroxai explain` end to end: a tiny .keras model, a folder with a corrupt file, CSV outputs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from explain_models import SIZE, sequential_gray
from PIL import Image

from neuroxai.cli import main


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    sequential_gray().save(path)
    return path


@pytest.fixture()
def image_folder(tmp_path):
    root = tmp_path / "scans"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "sub/b.jpg", "sub/c.png", ".hidden/d.png", ".e.png"):
        Image.fromarray((rng.random((40, 48)) * 255).astype(np.uint8)).save(root / name)
    Image.fromarray((rng.random((20, 20, 3)) * 255).astype(np.uint8)).save(root / "rgb.png")
    (root / "broken.png").write_bytes(b"not a png at all")
    (root / "notes.txt").write_text("ignored: not an image")
    return root


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cli_explain_folder_with_corrupt_file(model_file, image_folder, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["explain", str(model_file), str(image_folder), "--method", "gradcam", "--out", str(out), "--batch-size", "2"])
    captured = capsys.readouterr()
    assert code == 0
    rows = _read_csv(out / "predictions.csv")
    assert sorted(r["overlay"] for r in rows) == ["a.png", "rgb.png", "sub__b.png", "sub__c.png"]
    classes = [c[2:] for c in rows[0] if c.startswith("p_")]
    assert len(classes) == 3  # one probability column per class
    for r in rows:
        probs = [float(r[f"p_{k}"]) for k in classes]
        assert abs(sum(probs) - 1) < 1e-4
        assert r["predicted"] == classes[int(np.argmax(probs))] and r["explained"] == r["predicted"]
        assert float(r["confidence"]) == pytest.approx(max(probs), abs=1e-6)
        img = np.asarray(Image.open(out / r["overlay"]))
        # the picture follows the scan (40 x 48 or 20 x 20 px, enlarged by a whole factor to >= 256), not the 32 px model
        side = 48 * 6 if r["overlay"] != "rgb.png" else 20 * 13
        assert img.ndim == 3 and img.dtype == np.uint8 and 2 * side <= img.shape[1] <= 2 * side + 120 > SIZE
    skipped = _read_csv(out / "skipped.csv")
    assert [s["path"].endswith("broken.png") for s in skipped] == [True]
    assert "broken.png" in captured.err
    assert "Explained 4 image(s)" in captured.out


def test_cli_explain_single_files_json_target_and_options(model_file, image_folder, tmp_path, capsys):
    out = tmp_path / "out2"
    code = main(
        [
            "explain",
            str(model_file),
            str(image_folder / "a.png"),
            str(image_folder / "missing.png"),
            "--method",
            "smoothgrad",
            "--option",
            "samples=2",
            "--target",
            "1",
            "--out",
            str(out),
            "--format",
            "json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["explained"] == 1 and summary["method"] == "smoothgrad"
    assert summary["skipped"][0]["path"].endswith("missing.png")
    rows = _read_csv(out / "predictions.csv")
    classes = [c[2:] for c in rows[0] if c.startswith("p_")]
    assert rows[0]["explained"] == classes[1]


def test_cli_explain_errors_exit_2(model_file, image_folder, tmp_path, capsys):
    assert main(["explain", str(model_file), str(image_folder / "broken.png"), "--out", str(tmp_path / "o")]) == 2
    assert "No image could be explained" in capsys.readouterr().err
    assert main(["explain", str(model_file), str(image_folder), "--method", "gradcamm", "--out", str(tmp_path / "o")]) == 2
    assert "Did you mean 'gradcam'" in capsys.readouterr().err
    assert main(["explain", str(tmp_path / "none.keras"), str(image_folder), "--out", str(tmp_path / "o")]) == 2


def test_input_range_option_scales_inputs(model_file, image_folder, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["explain", str(model_file), str(image_folder / "a.png"), "--out", str(a)]) == 0
    assert main(["explain", str(model_file), str(image_folder / "a.png"), "--out", str(b), "--input-range", "0,255"]) == 0
    pa, pb = _read_csv(a / "predictions.csv")[0], _read_csv(b / "predictions.csv")[0]
    probs = [k for k in pa if k.startswith("p_")]
    assert [pa[k] for k in probs] != [pb[k] for k in probs]
