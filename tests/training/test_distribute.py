"""tf.distribute: MirroredStrategy over two logical CPUs; MultiWorkerMirroredStrategy with two local workers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from training_helpers import REPO, run_python

pytestmark = pytest.mark.slow

# 32 train / 8 val / 8 test images: every worker gets the same number of batches
DATA = """
import numpy as np
from neuroxai.data import Dataset, phantoms
base = phantoms(n_per_class=12, image_size=32, seed=0)
parts = [base.arrays(s, image_size=(32, 32), channels=1) for s in ("train", "val", "test")]
xa = np.concatenate([p[0] for p in parts]); ya = np.concatenate([p[1] for p in parts])
imgs = (xa[..., 0] * 255).round().astype(np.uint8)
ds = Dataset.from_arrays(imgs, ya, class_names=base.class_names, splits=["train"] * 32 + ["val"] * 8 + ["test"] * 8)
"""

MIRRORED = (
    """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
from training_helpers import make_spec
from neuroxai.training import Trainer, load
"""
    + DATA
    + """
t = Trainer(make_spec(False), epochs=2, batch_size=8, strategy=strategy, progress=False).fit(ds, out_dir=sys.argv[1])
v = t.model_.trainable_variables[0]
p = load(sys.argv[1]).predict(imgs[40:])
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "kind": type(v.value).__name__,
                  "epochs": t.history_["epoch"], "test_n": t.metrics_.metrics.n, "pred_shape": list(p.shape)}))
"""
)

WORKER = (
    """
import json, os, sys
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
import numpy as np
from training_helpers import make_spec
from neuroxai.training import Trainer
"""
    + DATA
    + """
t = Trainer(make_spec(False), epochs=2, batch_size=8, strategy=strategy, progress=False, seed=3).fit(ds, out_dir=sys.argv[1])
np.savez(os.path.join(sys.argv[1], "weights.npz"), *[np.asarray(v) for v in t.model_.trainable_weights])
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "epochs": t.history_["epoch"], "test_n": t.metrics_.metrics.n}))
"""
)


def _last_json(stdout: str) -> dict:
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    out = tmp_path / "run"
    res = run_python(f"import sys; sys.argv = ['x', {str(out)!r}]\n" + MIRRORED)
    assert res.returncode == 0, res.stderr[-4000:]
    info = _last_json(res.stdout)
    assert info["replicas"] == 2
    assert "Mirrored" in info["kind"]  # variables were created inside the strategy's scope
    assert info["epochs"] == [1, 2] and info["test_n"] == 8 and info["pred_shape"] == [8, 4]
    assert (out / "model.keras").is_file()


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _two_workers(tmp_path, extra_env=None):
    """Run WORKER in two local processes of one MultiWorkerMirroredStrategy cluster; ``[(rc, stdout, stderr)]`` and their folders."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs, outs = [], []
    for i in range(2):
        out = tmp_path / f"worker{i}"
        outs.append(out)
        env = dict(os.environ)
        env.update(
            {
                "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                "TF_CPP_MIN_LOG_LEVEL": "3",
                "NEUROXAI_NO_PROGRESS": "1",
                "NEUROXAI_DISABLE_PLUGIN_AUTOLOAD": "1",
                "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "training"), env.get("PYTHONPATH", "")]),
                **(extra_env or {}),
            }
        )
        code = f"import sys; sys.argv = ['x', {str(out)!r}]\n" + textwrap.dedent(WORKER)
        procs.append(
            subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    results = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=240)
            results.append((p.returncode, stdout, stderr))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return results, outs


def test_multi_worker_mirrored_strategy_two_local_workers_end_equal(tmp_path):
    results, outs = _two_workers(tmp_path)
    for rc, stdout, stderr in results:
        assert rc == 0, stderr[-4000:]
        info = _last_json(stdout)
        assert info["replicas"] == 2 and info["epochs"] == [1, 2] and info["test_n"] == 8
    # trainable weights are all-reduced every step, so both workers end equal (batch-norm moving statistics
    # are per worker unless the layer is synchronized, so they are not compared)
    w0, w1 = (np.load(o / "weights.npz") for o in outs)
    assert len(w0.files) == len(w1.files) > 0
    for k in w0.files:
        np.testing.assert_allclose(w0[k], w1[k], rtol=1e-5, atol=1e-6)


def test_keras_fix_targets_exist_in_the_installed_keras():
    from neuroxai.training._keras_fixes import missing_targets

    assert missing_targets() == [], "Keras moved what neuroxai/training/_keras_fixes.py patches: update or drop the fixes"


@pytest.mark.parametrize(
    ("fix", "upstream_error"),
    [
        ("symbolic_build", "Attempt to convert a value (PerReplica"),
        ("reduce", "Invalid reduction dimension 0 for input with 0 dimensions"),
    ],
)
def test_keras_fixes_are_still_needed(tmp_path, fix, upstream_error):
    # Without the fix, the upstream bug (tensorflow#72388) must still break multi-worker fit. When this test
    # fails because training now succeeds, Keras has fixed it: delete the workaround in training/_keras_fixes.py.
    results, _ = _two_workers(tmp_path, {"NEUROXAI_DISABLE_KERAS_FIXES": fix})
    assert any(rc != 0 for rc, _, _ in results), f"Keras no longer needs the {fix!r} fix: remove it from training/_keras_fixes.py"
    assert any(upstream_error in stderr for _, _, stderr in results), [stderr[-2000:] for _, _, stderr in results]
