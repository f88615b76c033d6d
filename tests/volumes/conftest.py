"""Fixtures for the volume tests: a tiny CNN trained on blob phantoms, saved as a run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The phantoms and the quick CNN of the evaluation tests (xai_helpers) and the DICOM writer of the data tests
# (medical_helpers), reused here: their folders go on the path also when only this folder is collected.
for _folder in ("evaluation", "data"):
    _path = str(Path(__file__).resolve().parents[1] / _folder)
    if _path not in sys.path:
        sys.path.append(_path)

from volume_helpers import CLASSES, MODEL_SIZE, train_phantom_model  # noqa: E402


@pytest.fixture(scope="session")
def phantom_model():
    """A tiny CNN (32 px, glioma / meningioma / notumor) trained on blob phantoms."""
    return train_phantom_model()


@pytest.fixture(scope="session")
def predictor(phantom_model):
    from neuroxai.runs import Predictor

    return Predictor(phantom_model, CLASSES, (MODEL_SIZE, MODEL_SIZE, 1), (0.0, 1.0))


@pytest.fixture(scope="session")
def run_dir(phantom_model, tmp_path_factory):
    """The trained model as a run directory (what the CLI loads)."""
    from neuroxai.runs import RunDirectory, RunSpec

    path = tmp_path_factory.mktemp("volume-run") / "run"
    spec = RunSpec(model="tiny_cnn", class_names=CLASSES, input_shape=(MODEL_SIZE, MODEL_SIZE, 1), input_range=(0.0, 1.0))
    RunDirectory(path).commit(phantom_model, spec, {"epoch": [1], "loss": [1.0]}, None)
    return path
