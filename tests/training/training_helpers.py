"""Helpers of the training tests (a module with a unique name, importable from subprocesses too)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def tiny_factory(*, num_classes: int, input_shape: tuple[int, int, int], width: int = 4):
    """A 2-conv model whose backbone layers start with ``bb_``, with a BatchNormalization in the backbone."""
    import keras

    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(width, 3, strides=2, activation="relu", name="bb_conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bb_bn")(x)
    x = keras.layers.Conv2D(width, 3, activation="relu", name="bb_conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    outputs = keras.layers.Activation("softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="tiny")


def epoch_hook(log: str, kill_after: int = 0):
    """A Keras callback for the kill-and-resume scripts: appends each epoch's number to ``log`` as it starts, and
    kills this process with SIGKILL right after epoch ``kill_after`` ends (0: never)."""
    import signal

    import keras

    class EpochHook(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            with open(log, "a") as f:
                f.write(f"{epoch + 1}\n")

        def on_epoch_end(self, epoch, logs=None):
            if kill_after and epoch + 1 == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    return EpochHook()


def make_spec(transfer: bool = True):
    from neuroxai.models import ModelSpec, TransferSpec

    spec = None
    if transfer:
        # unfreeze() also names the BN layer: the trainer must keep it frozen anyway
        spec = TransferSpec(
            is_backbone=lambda n: n.startswith("bb_"),
            unfreeze=lambda n: n in ("bb_conv2", "bb_bn"),
            fine_tune_lr_factor=0.1,
        )
    return ModelSpec(
        name="tiny-transfer" if transfer else "tiny",
        factory=tiny_factory,
        input_shape=(32, 32, 1),
        input_range=(0.0, 1.0),
        target_layer="bb_conv2",
        transfer=spec,
    )


def run_python(code: str, *, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with the tests folder importable."""
    full_env = dict(os.environ)
    full_env.update(
        {
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "NEUROXAI_NO_PROGRESS": "1",
            "NEUROXAI_DISABLE_PLUGIN_AUTOLOAD": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "training"), full_env.get("PYTHONPATH", "")]),
        }
    )
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True, text=True, timeout=timeout
    )
