"""`neuroxai train`, `evaluate` and `predict` end to end on a tiny phantom folder."""

from __future__ import annotations

import csv
import json

import pytest

from neuroxai.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from neuroxai.data import write_phantoms

    return write_phantoms(tmp_path_factory.mktemp("cli") / "data", n_per_class=6, image_size=32, seed=4)


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    rc = main(
        [
            "train",
            "--data",
            str(data_dir),
            "--model",
            "cnn",
            "--epochs",
            "2",
            "--out",
            str(out),
            "--image-size",
            "32",
            "--batch-size",
            "8",
            "--no-progress",
            "--seed",
            "3",
            "--lr-schedule",
            "cosine",
        ]
    )
    assert rc == 0
    return out


def test_train_writes_a_run_directory(run_dir, capsys):
    for name in ("model.keras", "neuroxai.json", "history.csv", "metrics.json", "confusion_matrix.png", "training_curves.png"):
        assert (run_dir / name).is_file(), name
    spec = json.loads((run_dir / "neuroxai.json").read_text())
    assert spec["model"] == "cnn" and spec["input_shape"] == [32, 32, 1] and spec["seed"] == 3
    assert spec["settings"]["epochs"] == 2 and spec["settings"]["lr_schedule"] == "cosine"
    with open(run_dir / "history.csv", newline="") as f:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(f)]
    assert rates == pytest.approx([1e-3, 5e-4])  # cosine over 2 epochs


def test_evaluate_json_matches_the_run(run_dir, data_dir, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--data", str(data_dir), "--format", "json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert out == saved  # the same EvaluationReport, metrics and de-duplicated metrics
    assert out["class_names"] == ["glioma", "meningioma", "notumor", "pituitary"] and out["split"] == "test"
    assert main(["evaluate", str(run_dir), "--data", str(data_dir), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "accuracy=" in text and "confusion matrix" in text


def test_predict_folder_with_a_corrupt_file_skips_and_reports_it(run_dir, data_dir, tmp_path, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    sources = sorted((data_dir / "Testing" / "glioma").glob("ph-*[0-9].png"))[:3]
    for src in sources:
        (folder / src.name).write_bytes(src.read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "notes.txt").write_text("not an image")
    out_csv = tmp_path / "pred.csv"
    capsys.readouterr()
    assert main(["predict", str(run_dir), str(folder), "--csv", str(out_csv), "--batch-size", "2", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "broken.png" in err and "skipped" in err
    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in rows) == sorted(s.name for s in sources)
    probabilities = {"p_glioma", "p_meningioma", "p_notumor", "p_pituitary"}
    assert set(rows[0]) == {"path", "predicted", "confidence", *probabilities, "ood_score", "ood"}  # trained runs have a score
    for r in rows:
        probs = [float(r[f"p_{c}"]) for c in ("glioma", "meningioma", "notumor", "pituitary")]
        assert abs(sum(probs) - 1) < 1e-4 and r["predicted"] in ("glioma", "meningioma", "notumor", "pituitary")
        assert float(r["confidence"]) == pytest.approx(max(probs), abs=1e-6)
    # same predictions as the Python API
    import neuroxai

    api = neuroxai.load(run_dir).predict_names([r["path"] for r in rows])
    assert [r["predicted"] for r in rows] == api
    # stdout when no --csv
    assert main(["predict", str(run_dir), str(sources[0]), "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("path,predicted,confidence") and len(lines) == 2


def test_predict_nothing_readable_is_an_error(run_dir, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    assert main(["predict", str(run_dir), str(bad), "--no-progress"]) == 2
    assert "No image could be read" in capsys.readouterr().err


def test_unknown_model_is_a_clean_error(data_dir, tmp_path, capsys):
    rc = main(
        ["train", "--data", str(data_dir), "--model", "cnnn", "--epochs", "1", "--out", str(tmp_path / "r"), "--no-progress"]
    )
    assert rc == 2
    assert "cnn" in capsys.readouterr().err


def test_evaluate_missing_run_is_a_clean_error(data_dir, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "none"), "--data", str(data_dir), "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_demo_runs_end_to_end_on_tiny_phantoms(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n-per-class", "6", "--image-size", "32", "--epochs", "1", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "Test accuracy" in text and str(out) in text and "not medical data" in text
    for name in ("model.keras", "neuroxai.json", "metrics.json", "confusion_matrix.png", "training_curves.png", "audit.json"):
        assert (out / name).is_file(), name
    spec = json.loads((out / "neuroxai.json").read_text())
    assert spec["model"] == "cnn" and spec["settings"]["guidance"]["kind"] == "cam"  # the phantoms have masks: guided
    assert "with mask guidance" in text
    # the demo explains and measures, not only trains
    assert (out / "gradcam.png").is_file()
    xai = json.loads((out / "xai_metrics.json").read_text())
    assert xai["methods"] == ["gradcam"] and not xai["errors"]
    assert set(xai["summary"]["gradcam"]) >= {"pointing_game", "pointing_game_uniform", "sanity_passed"}
    assert "pointing game" in text and "sanity check" in text
    report = (out / "report.html").read_text(encoding="utf-8")  # and writes its report, gallery included
    assert '<section id="gallery">' in report and "data:image/jpeg;base64," in report


def test_demo_on_a_data_folder(data_dir, tmp_path, capsys):
    out = tmp_path / "demo-data"
    assert main(["demo", "--data", str(data_dir), "--out", str(out), "--image-size", "32", "--epochs", "1", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "Reading" in text and "not medical data" not in text
    spec = json.loads((out / "neuroxai.json").read_text())
    assert spec["data"]["layout"] != "phantoms" and spec["input_shape"] == [32, 32, 1]
    guided = spec["settings"]["guidance"] is not None
    assert guided == spec["data"]["has_masks"] and ("with mask guidance" in text) == guided  # only where masks exist
    assert (out / "gradcam.png").is_file() and (out / "xai_metrics.json").is_file()
