"""An untrained run directory for the CLI's reliability tests (unique module name: pytest imports it by name)."""

from __future__ import annotations

from pathlib import Path

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def make_run(path: Path, class_names=CLASSES, model_source="neuroxai") -> Path:
    """A run directory at ``path``: the registry's ``cnn`` at 32x32x1, untrained, with its ``neuroxai.json``."""
    from neuroxai.models import ModelRegistry
    from neuroxai.runs import RunDirectory, RunSpec

    model = ModelRegistry(autoload=False).create("cnn", num_classes=len(class_names), input_shape=(32, 32, 1))
    spec = RunSpec(
        model="cnn", model_source=model_source, class_names=tuple(class_names), input_shape=(32, 32, 1), input_range=(0.0, 1.0)
    )
    RunDirectory(path).commit(model, spec, {"epoch": [1], "loss": [1.0]}, None)
    return path
