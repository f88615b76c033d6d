"""Builds a tiny demo-like run directory, made without training (a few seconds): phantom files on disk, an untrained
``cnn`` at 32 px (so the gallery holds right and wrong predictions), metrics, history, audit and, in one copy,
explanation metrics."""

from __future__ import annotations

import shutil

SIZE = 32  # the model's input
SCAN = 64  # the phantom files' own size


def make_runs(base):
    """Write ``(run_with_xai, run_without_xai, data_root)`` under ``base``."""
    import keras

    from neuroxai._io import write_json
    from neuroxai.data import Dataset, write_phantoms
    from neuroxai.evaluation import Faithfulness, Sanity, evaluate_explanations
    from neuroxai.models import ModelRegistry
    from neuroxai.runs import PhaseRecord, RunDirectory, RunSpec, evaluate_model, fit_calibration, load

    root = write_phantoms(base / "data", n_per_class=10, image_size=SCAN, seed=0)
    ds = Dataset(root, progress=False, seed=0)
    keras.utils.set_random_seed(0)
    model = ModelRegistry(autoload=False).create("cnn", num_classes=len(ds.class_names), input_shape=(SIZE, SIZE, 1))
    shape, rng = (SIZE, SIZE, 1), (0.0, 1.0)
    calibration = fit_calibration(model, ds, input_shape=shape, input_range=rng)  # temperature and conformal scores
    evaluation = evaluate_model(
        model, ds, class_names=ds.class_names, input_shape=shape, input_range=rng, batch_size=16, calibration=calibration
    )
    spec = RunSpec(
        model="cnn",
        model_source="neuroxai",
        class_names=ds.class_names,
        input_shape=(SIZE, SIZE, 1),
        input_range=(0.0, 1.0),
        phases=(PhaseRecord("single", 1, 3, 1e-3, 12, 0),),
        epochs_trained=3,
        seed=0,
        settings={"epochs": 3, "batch_size": 16, "learning_rate": 0.001, "augment": True},
        data=ds.summary(),
        versions={"neuroxai": "test"},
        created="2025-01-01T00:00:00+00:00",
        calibration=calibration,
    )
    history = {
        "epoch": [1, 2, 3],
        "phase": ["single"] * 3,
        "loss": [1.38, 1.30, 1.21],
        "accuracy": [0.25, 0.33, 0.41],
        "val_loss": [1.39, 1.33, 1.29],
        "val_accuracy": [0.22, 0.30, 0.35],
        "learning_rate": [1e-3, 8e-4, 5e-4],
    }
    bare = base / "run-bare"
    RunDirectory(bare).commit(model, spec, history, evaluation)
    write_json(bare / "audit.json", ds.audit(progress=False).to_dict())

    full = base / "run-full"
    shutil.copytree(bare, full)
    predictor = load(full)
    x, y, masks = ds.arrays("test", image_size=(SIZE, SIZE), channels=1, with_masks=True)
    xai = evaluate_explanations(
        predictor,
        x[:12],
        masks[:12],
        y[:12],
        "gradcam",
        metrics=["localization", Faithfulness(steps=4), Sanity(n_images=2, max_layers=2), "reliance"],
    )
    xai.save(full)
    return full, bare, root
