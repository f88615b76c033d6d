"""Every script in examples/ runs, on phantoms at tiny sizes, so none can rot."""

from __future__ import annotations

import json
import os
import re
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
        "explain_vit_and_3d.py",
    }
    assert scripts == tested, "add a test for each new example script"
    assert {p.name for p in EXAMPLES.glob("*.ipynb")} == {"notebook.ipynb"}, "add a test for each new notebook"


def test_quickstart(tmp_path):
    out = run_example("quickstart.py", "--n-per-class", "12", "--image-size", "32", "--epochs", "1", "--out", "run", cwd=tmp_path)
    assert re.search(r"test accuracy \d\.\d{3}, Grad-CAM pointing game \d\.\d{2} \(centre prior \d\.\d{2}\)", out), out
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


def test_explain_vit_and_3d(tmp_path):
    import nibabel as nib
    import numpy as np

    out = run_example("explain_vit_and_3d.py", "--out", "out", cwd=tmp_path)
    assert "ViT: layer block1_norm1, tokens (17) -> 4 x 4 grid" in out
    assert "attention_rollout maps (4, 32, 32)" in out and "glioma - meningioma" in out
    assert "3-D model: maps (1, 16, 16, 16)" in out
    heat = nib.load(tmp_path / "out" / "scan_heatmap.nii.gz")
    assert heat.shape == nib.load(tmp_path / "out" / "scan.nii.gz").shape and np.isfinite(heat.get_fdata()).all()
    assert (tmp_path / "out" / "scan_views.png").is_file()


def test_notebook_runs_and_its_results_show_themselves(tmp_path, monkeypatch):
    """The example notebook's code cells run in order (smaller settings); each cell's last expression draws itself.

    Run without Jupyter: the cells are plain Python (no magics), executed in one namespace the way a kernel would,
    and the objects a notebook would display are rendered with their ``_repr_html_``.
    """
    import ast
    import re

    notebook = json.loads((EXAMPLES / "notebook.ipynb").read_text(encoding="utf-8"))
    assert notebook["nbformat"] == 4
    cells = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert all(not cell.get("outputs") for cell in notebook["cells"] if cell["cell_type"] == "code"), "strip the outputs"
    quick = {"N_PER_CLASS": 12, "IMAGE_SIZE": 32, "EPOCHS": 1}
    for name, value in quick.items():
        cells[0], count = re.subn(rf"^{name} = \d+", f"{name} = {value}", cells[0], flags=re.MULTILINE)
        assert count == 1, name
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    shown = []
    for source in cells:
        tree = ast.parse(source)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "<cell>", "exec"), namespace)
        value = None if last is None else eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
        if value is not None:  # what Jupyter displays (a print() returns None and shows nothing more)
            shown.append(value)
    kinds = [type(obj).__name__ for obj in shown]
    assert kinds == ["Explanation", "Explanation", "XAIReport"]
    for obj in shown:
        page = obj._repr_html_()
        assert "data:image/png;base64," in page and len(page) < 2_000_000
    assert shown[1].target_names[0] == "glioma - meningioma"
