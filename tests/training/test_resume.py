"""Resume: a training process killed with SIGKILL continues from the last finished epoch when started again."""

from __future__ import annotations

import csv
import json
import signal
import sys

import pytest
from training_helpers import run_python

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")]

SCRIPT = """
import os, sys, json
import tensorflow as tf
tf.config.experimental.enable_op_determinism()
import keras

from training_helpers import epoch_hook, make_spec
from neuroxai.data import phantoms
from neuroxai.training import Trainer

out, kill_after, log = sys.argv[1], int(os.environ.get("KILL_AFTER", "0")), sys.argv[2]

ds = phantoms(n_per_class=6, image_size=32, seed=0)
Trainer(make_spec(True), epochs=5, fine_tune_epochs=2, batch_size=8, progress=False, seed=1,
        early_stopping_patience=None, callbacks=[epoch_hook(log, kill_after)]).fit(ds, out_dir=out)
print("FINISHED")
"""


def _run(out, log, kill_after=None):
    code = f"import sys; sys.argv = ['x', {str(out)!r}, {str(log)!r}]\n" + SCRIPT
    return run_python(code, env={"KILL_AFTER": str(kill_after or 0)})


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """The same run, never interrupted."""
    tmp = tmp_path_factory.mktemp("straight")
    proc = _run(tmp / "run", tmp / "log")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "run"


@pytest.mark.parametrize("kill_after", [2, 3], ids=["mid-head-phase", "end-of-head-phase"])
def test_killed_run_resumes_from_the_next_epoch(tmp_path, kill_after, straight_run):
    # 5 epochs: head phase 1-3, fine-tuning 4-5
    out, log1, log2 = tmp_path / "run", tmp_path / "first.log", tmp_path / "second.log"
    first = _run(out, log1, kill_after=kill_after)
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    assert "FINISHED" not in first.stdout
    state = json.loads((out / "backup" / "state.json").read_text())
    assert state["epoch"] == kill_after and state["phase"] == "head"
    assert not (out / "model.keras").exists()

    second = _run(out, log2)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "FINISHED" in second.stdout
    assert log1.read_text().split() == [str(e) for e in range(1, kill_after + 1)]
    assert log2.read_text().split() == [str(e) for e in range(kill_after + 1, 6)]  # continued, did not start over
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]  # no epoch twice
    assert [r["phase"] for r in rows] == ["head"] * 3 + ["fine_tune"] * 2
    assert float(rows[4]["learning_rate"]) == pytest.approx(float(rows[0]["learning_rate"]) * 0.1, rel=1e-5)
    assert (out / "model.keras").is_file() and not (out / "backup").exists()
    spec = json.loads((out / "neuroxai.json").read_text())
    assert [(p["name"], p["first_epoch"], p["last_epoch"]) for p in spec["phases"]] == [
        ("head", 1, 3),
        ("fine_tune", 4, 5),
    ]  # the file format
    # and it ends exactly as the run that was never killed: same epochs, same values, same best model
    assert (out / "history.csv").read_text() == (straight_run / "history.csv").read_text()
    resumed, straight = (json.loads((d / "neuroxai.json").read_text()) for d in (out, straight_run))
    assert {k: v for k, v in resumed.items() if k != "created"} == {k: v for k, v in straight.items() if k != "created"}


def test_resume_refuses_a_folder_of_another_run(tmp_path, tiny_spec, tiny_ds):
    import keras

    from neuroxai.errors import ModelError
    from neuroxai.training import Trainer

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("interrupted")

    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="interrupted"):
        Trainer(tiny_spec, epochs=3, progress=False, callbacks=[Stop()]).fit(tiny_ds, out_dir=out)
    assert json.loads((out / "backup" / "state.json").read_text())["epoch"] == 1
    with pytest.raises(ModelError, match="interrupted run with other settings"):
        Trainer(tiny_spec, epochs=4, progress=False).fit(tiny_ds, out_dir=out)
