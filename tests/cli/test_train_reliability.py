"""`neuroxai train` and `evaluate` as a unit of work: one writer per run, --overwrite, nothing dropped silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from neuroxai.cli import main

pytestmark = pytest.mark.slow

HOLD_LOCK = """
import sys, time
from neuroxai.runs import RunDirectory
RunDirectory(sys.argv[1]).acquire()
print("LOCKED", flush=True)
time.sleep(120)
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from neuroxai.data import write_phantoms

    return write_phantoms(tmp_path_factory.mktemp("train-rel") / "data", n_per_class=4, image_size=32, seed=5)


def _train(data_dir, out, *extra):
    argv = ["train", "--data", str(data_dir), "--out", str(out), "--epochs", "1", "--image-size", "32", "--batch-size", "8"]
    return main([*argv, "--no-progress", *extra])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process handling")
def test_a_second_training_into_the_same_out_fails_fast(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    env = {**os.environ, "NEUROXAI_DISABLE_PLUGIN_AUTOLOAD": "1"}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        assert _train(data_dir, out) == 2
        err = capsys.readouterr().err
        assert "being written by another process" in err and f"pid {holder.pid}" in err and "Traceback" not in err
        assert not (out / "model.keras").exists()
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """A run trained with --overwrite over a finished run, one training image corrupted after indexing."""
    import neuroxai.training
    from neuroxai.models import ModelRegistry
    from neuroxai.runs import RunDirectory, RunSpec

    out = tmp_path_factory.mktemp("train-rel-run") / "run"
    old = RunSpec(model="cnn", class_names=("a", "b"), input_shape=(16, 16, 1), input_range=(0.0, 1.0))
    RunDirectory(out).commit(ModelRegistry(autoload=False).create("cnn", num_classes=2, input_shape=(16, 16, 1)), old, {}, None)
    victim = sorted((data_dir / "Training" / "glioma").glob("ph-*[0-9].png"))[0]
    real_fit = neuroxai.training.Trainer.fit

    def fit_after_the_file_breaks(self, dataset, **kwargs):
        victim.write_bytes(b"\x89PNG\r\n\x1a\n broken after indexing")
        return real_fit(self, dataset, **kwargs)

    capture = pytest.MonkeyPatch()
    capture.setattr(neuroxai.training.Trainer, "fit", fit_after_the_file_breaks)
    import contextlib
    import io

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            refused = _train(data_dir, out)
            rc = _train(data_dir, out, "--overwrite")
    finally:
        capture.undo()
    return out, victim, refused, rc, err.getvalue()


def test_a_finished_run_is_replaced_only_with_overwrite(trained):
    out, _victim, refused, rc, err = trained
    assert refused == 2 and "already holds a finished run" in err
    assert rc == 0, err
    spec = json.loads((out / "neuroxai.json").read_text())
    assert spec["input_shape"] == [32, 32, 1] and len(spec["class_names"]) == 4  # the new run, whole
    assert not (out / ".neuroxai.lock").exists() and not (out / ".staging").exists() and not (out / "backup").exists()


def test_a_file_dropped_while_training_is_listed_on_the_terminal_and_in_the_run(trained):
    out, victim, _refused, _rc, err = trained
    assert f"dropped {victim}" in err, err
    spec = json.loads((out / "neuroxai.json").read_text())
    assert victim.name in json.dumps(spec["data"]["unreadable"])


def test_evaluate_names_the_test_files_it_could_not_read(trained, data_dir, capsys):
    out = trained[0]
    broken = sorted((data_dir / "Testing" / "notumor").glob("ph-*[0-9].png"))[0]
    broken.write_bytes(b"")
    assert main(["evaluate", str(out), "--data", str(data_dir), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"not evaluated {broken}" in err and "not in these metrics" in err, err
