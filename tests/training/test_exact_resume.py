"""Exact resume: a run interrupted at any epoch boundary and started again ends exactly as the uninterrupted run.

Everything that decides the outcome must survive the interruption: weights and
optimizer, the best-so-far value and weights, early stopping's and the LR
plateau's counters, the LR position, and the shuffling and augmentation of each
epoch. The runs happen in a subprocess with TensorFlow's deterministic ops, so
two uninterrupted runs agree bit for bit and any difference is our resume.
"""

from __future__ import annotations

import json

import pytest
from training_helpers import run_python

pytestmark = pytest.mark.slow

SCRIPT = """
import json, sys, pathlib
import numpy as np
import tensorflow as tf
tf.config.experimental.enable_op_determinism()
import keras
from training_helpers import make_spec
from neuroxai.data import phantoms
from neuroxai.training import Trainer

root = pathlib.Path(sys.argv[1])
EPOCHS = 3

class Interrupted(Exception):
    pass

class InterruptAfter(keras.callbacks.Callback):
    # raised after the run has saved its state for the epoch: what a kill at the epoch boundary leaves behind
    def __init__(self, k):
        super().__init__()
        self.k = k
    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.k:
            raise Interrupted()

ds = phantoms(n_per_class=6, image_size=32, seed=0)

def trainer(two_phase, callbacks=()):
    # high learning rates make the validation loss bounce: the best epoch is not the last one, and early
    # stopping's and the plateau's memories matter (two-phase: head 1, fine-tuning 2-3)
    return Trainer(make_spec(two_phase), epochs=EPOCHS, fine_tune_epochs=2 if two_phase else None,
                   fine_tune_lr_factor=0.5 if two_phase else None, batch_size=8, learning_rate=1.0 if two_phase else 0.3,
                   progress=False, seed=1, early_stopping_patience=2, reduce_lr_patience=1, tensorboard=False,
                   callbacks=list(callbacks))

def outcome(t, out):
    best = keras.saving.load_model(out / "checkpoints" / "best.keras", compile=False)
    return {
        "history": {k: [None if v is None else (round(v, 12) if isinstance(v, float) else v) for v in vals]
                    for k, vals in t.history_.items()},
        "phases": [[p.name, p.first_epoch, p.last_epoch] for p in t.phases_],
        "weights": float(sum(np.abs(w).sum() for w in t.model_.get_weights())),
        "best_weights": float(sum(np.abs(w).sum() for w in best.get_weights())),
    }

results = {}
for two_phase in (False, True):
    name = "two" if two_phase else "one"
    out = root / f"{name}-straight"
    results[f"{name}-straight"] = outcome(trainer(two_phase).fit(ds, out_dir=out), out)
    for k in range(1, EPOCHS):
        out = root / f"{name}-{k}"
        try:
            trainer(two_phase, [InterruptAfter(k)]).fit(ds, out_dir=out)
            raise SystemExit(f"run {name} was not interrupted after epoch {k}")
        except Interrupted:
            pass
        results[f"{name}-{k}"] = outcome(trainer(two_phase).fit(ds, out_dir=out), out)
print("RESULTS " + json.dumps(results))
"""


def test_interrupted_at_every_epoch_boundary_ends_like_the_uninterrupted_run(tmp_path):
    code = f"import sys; sys.argv = ['x', {str(tmp_path)!r}]\n" + SCRIPT
    proc = run_python(code, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(li for li in proc.stdout.splitlines() if li.startswith("RESULTS "))
    results = json.loads(line[len("RESULTS ") :])
    for name in ("one", "two"):
        straight = results[f"{name}-straight"]
        losses = straight["history"]["val_loss"]
        # the scenario exercises what resume must carry over: the best epoch is not the last one
        assert losses.index(min(losses)) < len(losses) - 1, losses
        for k in (1, 2):  # two-phase: 1 = the phase boundary, 2 = inside fine-tuning
            resumed = results[f"{name}-{k}"]
            assert resumed["history"] == straight["history"], (name, k)
            assert resumed["phases"] == straight["phases"], (name, k)
            assert resumed["weights"] == pytest.approx(straight["weights"], rel=1e-6), (name, k)
            assert resumed["best_weights"] == pytest.approx(straight["best_weights"], rel=1e-6), (name, k)
