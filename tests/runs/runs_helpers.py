"""Helpers of the run-directory tests (a module with a unique name, importable from subprocesses too)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def tiny_model(size: int, classes: int = 2):
    """A small untrained classifier taking ``size`` x ``size`` grayscale images."""
    import keras

    inputs = keras.Input((size, size, 1), name="image")
    x = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(classes, name="logits")(x)
    outputs = keras.layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="tiny")


def tiny_spec(size: int, classes: int = 2):
    """The RunSpec of :func:`tiny_model` (a user model: no registry entry to compare with)."""
    from neuroxai.runs import RunSpec

    return RunSpec(
        model="tiny",
        model_source="user",
        class_names=tuple(f"c{i}" for i in range(classes)),
        input_shape=(size, size, 1),
        input_range=(0.0, 1.0),
    )


def commit_tiny(run_dir, size: int) -> None:
    """Commit a finished run of :func:`tiny_model` at ``size`` px into ``run_dir``."""
    from neuroxai.runs import RunDirectory

    RunDirectory(run_dir).commit(tiny_model(size), tiny_spec(size), {"epoch": [1], "loss": [1.0]}, None)


def run_python(code: str, *args: str, timeout: float = 180, wait: bool = True):
    """Run ``code`` in a fresh interpreter (tests/runs importable); a Popen when ``wait`` is false."""
    env = dict(os.environ)
    env.update(
        {
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "NEUROXAI_NO_PROGRESS": "1",
            "NEUROXAI_DISABLE_PLUGIN_AUTOLOAD": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "runs"), env.get("PYTHONPATH", "")]),
        }
    )
    cmd = [sys.executable, "-c", code, *args]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
