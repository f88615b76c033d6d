"""Every script in examples/ runs, on phantoms at tiny sizes, so none can rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
pytestmark = pytest.mark.slow


def run_example(name: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "NEUROXAI_NO_PROGRESS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_every_example_script_is_covered_here():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    tested = {
        "quickstart.py",
        "train_on_folder.py",
        "explain_keras_model.py",
        "evaluate_explanations.py",
        "guided_training.py",
        "explain_volume.py",
    }
    assert scripts == tested, "add a test for each new example script"


def test_quickstart(tmp_path):
    out = run_example("quickstart.py", "--n-per-class", "12", "--image-size", "32", "--epochs", "1", "--out", "run", cwd=tmp_path)
    assert "test accuracy:" in out
    assert (tmp_path / "run" / "model.keras").is_file()
    assert len(list((tmp_path / "run" / "explanations").glob("*.png"))) == 8


def test_train_on_folder(tmp_path):
    from neuroxai.data import write_phantoms

    write_phantoms(tmp_path / "data", n_per_class=12, image_size=32, seed=3)
    (tmp_path / "data" / "Training" / "glioma" / "notes.txt").write_text("not an image")
    out = run_example("train_on_folder.py", "data", "--epochs", "1", "--image-size", "32", "--out", "run", cwd=tmp_path)
    assert "notes.txt" in out  # the stray file is reported, not trained on
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["metrics"]["n"] > 0 and metrics["split"] == "test"


def test_explain_keras_model(tmp_path):
    out = run_example("explain_keras_model.py", "--out", "tp", cwd=tmp_path)
    assert "backbone" in out  # the target layer was found inside the nested backbone
    assert len(list((tmp_path / "tp" / "overlays").glob("*.png"))) == 4


def test_evaluate_explanations(tmp_path):
    out = run_example(
        "evaluate_explanations.py",
        "--n-per-class",
        "12",
        "--image-size",
        "32",
        "--epochs",
        "1",
        "--methods",
        "gradcam",
        "saliency",
        "--out",
        "xai",
        cwd=tmp_path,
    )
    report = json.loads((tmp_path / "xai" / "xai_metrics.json").read_text())
    assert report["methods"] == ["gradcam", "saliency"]
    assert not report["errors"]
    assert "pointing_game" in out


def test_guided_training(tmp_path):
    out = run_example("guided_training.py", "--n-per-class", "10", "--image-size", "32", "--epochs", "2", cwd=tmp_path)
    assert "without guidance: test accuracy" in out and "with guidance: test accuracy" in out
    assert out.count("Grad-CAM pointing game") == 2 and "tumour blurred" in out


def test_explain_volume(tmp_path):
    import nibabel as nib
    import numpy as np

    out = run_example(
        "explain_volume.py", "--n-per-class", "12", "--image-size", "32", "--epochs", "1", "--out", "v", cwd=tmp_path
    )
    assert "slices classified" in out and "same affine as the scan: True" in out
    heat = nib.load(tmp_path / "v" / "explanations" / "scan_heatmap.nii.gz")
    assert heat.shape == nib.load(tmp_path / "v" / "scan.nii.gz").shape and np.isfinite(heat.get_fdata()).all()
    assert (tmp_path / "v" / "explanations" / "scan_montage.png").is_file()
