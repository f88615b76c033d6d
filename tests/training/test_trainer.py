"""Trainer: scikit-learn contract, two-phase fine-tuning, run directory, load round trip, evaluation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import neuroxai
from neuroxai.errors import ModelError, NotFittedError
from neuroxai.runs import RunDirectory
from neuroxai.training import NOT_FITTED_MESSAGE, Trainer, load
from numerics import forward_tol

pytestmark = pytest.mark.slow


class Recorder:
    """A Keras callback (made lazily) recording trainable flags at each fit start and the optimizer lr per epoch."""

    def __new__(cls):
        import keras

        class _Rec(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.flags = []
                self.lrs = []

            def on_train_begin(self, logs=None):
                self.flags.append({layer.name: layer.trainable for layer in self.model.layers})

            def on_epoch_end(self, epoch, logs=None):
                self.lrs.append(float(np.asarray(self.model.optimizer.learning_rate)))

        return _Rec()


def test_init_only_stores_settings(tiny_spec):
    opts = {"width": 4}
    t = Trainer(tiny_spec, epochs=3, model_options=opts, image_size=(32, 32))
    assert t.model is tiny_spec and t.epochs == 3 and t.model_options is opts and t.image_size == (32, 32)
    assert not [k for k in vars(t) if k.endswith("_")]
    assert t.get_params()["epochs"] == 3


def test_scikit_learn_contract_get_set_params_and_clone(tiny_spec):
    from sklearn.base import clone

    t = Trainer("cnn", epochs=3, learning_rate=2e-3, model_options={"width": 0.5})
    params = t.get_params()
    assert params["epochs"] == 3 and params["model"] == "cnn" and params["model_options"] == {"width": 0.5}
    assert set(params) == set(t.get_params(deep=False)) >= {"epochs", "batch_size", "learning_rate", "seed", "registry"}
    assert t.set_params(epochs=5, seed=9) is t and (t.epochs, t.seed) == (5, 9)
    with pytest.raises(ModelError, match="no setting 'epoch'"):
        t.set_params(epoch=4)
    c = clone(t)
    assert c is not t and c.get_params() == t.get_params() and not hasattr(c, "model_")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"epochs": 0}, "epochs to be an integer >= 1"),
        ({"batch_size": 2.5}, "batch_size to be an integer >= 1"),
        ({"learning_rate": -1.0}, "learning_rate to be a finite number > 0"),
        ({"learning_rate": float("nan")}, "learning_rate to be a finite number > 0"),
        ({"lr_schedule": "step"}, "lr_schedule to be one of"),
        ({"image_size": (0, 32)}, "image_size must be at least"),
    ],
)
def test_nonsense_settings_fail_before_training(tiny_spec, tiny_ds, setting, message):
    with pytest.raises(ModelError, match=message):
        Trainer(tiny_spec, progress=False, **setting).fit(tiny_ds)


@pytest.mark.parametrize("call", ["evaluate", "save", "predict", "predict_proba"])
def test_methods_before_fit_raise_not_fitted(call, tiny_ds, tmp_path):
    t = Trainer("cnn")
    arg = {"evaluate": tiny_ds, "save": tmp_path, "predict": np.zeros((1, 32, 32)), "predict_proba": np.zeros((1, 32, 32))}[call]
    with pytest.raises(NotFittedError, match="not fitted yet; call fit\\(dataset\\) first") as info:
        getattr(t, call)(arg)
    assert str(info.value) == NOT_FITTED_MESSAGE
    assert isinstance(info.value, AttributeError)


def test_two_phases_trainable_flags_bn_frozen_and_lr_drops(tiny_spec, tiny_ds):
    rec = Recorder()
    t = Trainer(
        tiny_spec,
        epochs=4,
        batch_size=16,
        learning_rate=1e-2,
        progress=False,
        callbacks=[rec],
        reduce_lr_patience=None,
        early_stopping_patience=None,
    )
    assert t.fit(tiny_ds) is t
    head, fine = rec.flags
    assert (head["bb_conv1"], head["bb_bn"], head["bb_conv2"]) == (False, False, False)
    assert head["logits"] and head["pool"]
    assert fine["bb_conv2"] is True and fine["bb_conv1"] is False
    assert fine["bb_bn"] is False  # unfreeze() names it, but batch norm stays frozen
    assert rec.lrs[:2] == pytest.approx([1e-2, 1e-2])
    assert rec.lrs[2:] == pytest.approx([1e-3, 1e-3])
    assert float(np.asarray(t.model_.optimizer.learning_rate)) == pytest.approx(1e-3)
    assert t.history_["epoch"] == [1, 2, 3, 4]
    assert t.history_["phase"] == ["head", "head", "fine_tune", "fine_tune"]
    assert [p.name for p in t.phases_] == ["head", "fine_tune"]
    assert t.classes_ == tiny_ds.class_names
    assert t.input_shape_ == (32, 32, 1)


def test_two_phase_false_trains_everything_in_one_phase(tiny_spec, tiny_ds):
    rec = Recorder()
    t = Trainer(tiny_spec, epochs=1, two_phase=False, progress=False, callbacks=[rec]).fit(tiny_ds)
    assert len(rec.flags) == 1 and rec.flags[0]["bb_conv1"] is True
    assert t.history_["phase"] == ["single"]


def test_cosine_schedule_restarts_in_each_phase(tiny_spec, tiny_ds):
    rec = Recorder()
    t = Trainer(
        tiny_spec,
        epochs=6,
        fine_tune_epochs=2,
        batch_size=16,
        learning_rate=1e-2,
        lr_schedule="cosine",
        progress=False,
        callbacks=[rec],
        early_stopping_patience=None,
    ).fit(tiny_ds)
    # head: 4 epochs from 1e-2 along half a cosine; fine_tune: 2 epochs from 1e-3 (factor 0.1)
    assert rec.lrs == pytest.approx([1e-2, 1e-2 * (1 + 2**-0.5) / 2, 5e-3, 1e-2 * (1 - 2**-0.5) / 2, 1e-3, 5e-4], rel=1e-5)
    assert t.history_["learning_rate"] == pytest.approx(rec.lrs, rel=1e-5)
    assert t.get_params()["lr_schedule"] == "cosine"


def test_constant_schedule_keeps_the_rate_and_bad_names_are_refused(plain_spec, tiny_ds):
    rec = Recorder()
    Trainer(
        plain_spec,
        epochs=3,
        learning_rate=1e-2,
        lr_schedule="constant",
        reduce_lr_patience=1,
        progress=False,
        callbacks=[rec],
        early_stopping_patience=None,
    ).fit(tiny_ds)
    assert rec.lrs == pytest.approx([1e-2] * 3)
    with pytest.raises(ModelError, match="lr_schedule to be one of 'plateau', 'cosine', 'constant', got 'step'"):
        Trainer(plain_spec, epochs=1, lr_schedule="step", progress=False).fit(tiny_ds)


def test_two_phase_settings_are_checked(plain_spec, tiny_spec, tiny_ds):
    with pytest.raises(ModelError, match="TransferSpec"):
        Trainer(plain_spec, epochs=2, two_phase=True, progress=False).fit(tiny_ds)
    with pytest.raises(ModelError, match="at least one epoch in each phase"):
        Trainer(tiny_spec, epochs=2, fine_tune_epochs=2, progress=False).fit(tiny_ds)


def test_user_keras_model_and_custom_compile(tiny_ds):
    import keras
    from training_helpers import tiny_factory

    model = tiny_factory(num_classes=4, input_shape=(32, 32, 1))
    t = Trainer(
        model,
        epochs=1,
        optimizer=keras.optimizers.SGD(learning_rate=0.05),
        metrics=["accuracy"],
        input_range=(0.0, 1.0),
        progress=False,
    ).fit(tiny_ds)
    assert t.model_ is model
    assert isinstance(t.model_.optimizer, keras.optimizers.SGD)
    assert t.history_["learning_rate"][0] == pytest.approx(0.05)
    assert t.predict(tiny_ds.arrays("test", image_size=(32, 32), channels=1)[0]).shape == (len(tiny_ds.labels("test")),)


def test_run_directory_and_round_trip_through_load(tiny_spec, phantom_dir, tmp_path):
    from PIL import Image

    from neuroxai.data import Dataset

    ds = Dataset(phantom_dir, progress=False, seed=3)
    run = tmp_path / "run"
    t = Trainer(tiny_spec, epochs=2, batch_size=8, progress=False, seed=5).fit(ds, out_dir=run)
    for name in (
        "model.keras",
        "neuroxai.json",
        "history.csv",
        "metrics.json",
        "confusion_matrix.png",
        "training_curves.png",
        "checkpoints/best.keras",
    ):
        assert (run / name).is_file(), name
    assert list((run / "logs").rglob("*tfevents*")), "a TensorBoard log by default"
    assert not (run / "backup").exists()  # resume state is removed once the run finished
    assert not list(run.glob(".*tmp*"))  # no half-written files left over
    spec = json.loads((run / "neuroxai.json").read_text())
    assert spec["class_names"] == list(ds.class_names)
    assert spec["input_shape"] == [32, 32, 1] and spec["input_range"] == [0.0, 1.0]
    assert spec["target_layer"] == "bb_conv2" and spec["model"] == "tiny-transfer"
    assert set(spec["versions"]) >= {"neuroxai", "keras", "tensorflow"}
    assert spec["versions"]["keras_backend"] == "tensorflow"  # which backend trained it, for a run opened elsewhere
    assert spec["settings"]["epochs"] == 2 and spec["seed"] == 5
    assert spec["data"]["counts"] == ds.summary().to_dict()["counts"]
    loaded = neuroxai.load(run).spec.data
    assert dataclasses.replace(loaded, used={}, unreadable=()) == ds.summary()
    # the numbers actually used: every image of each split (none failed to decode)
    assert loaded.used == {s: sum(ds.summary().counts[s].values()) for s in ("train", "val", "test")}
    assert loaded.unreadable == ()
    header, *rows = (run / "history.csv").read_text().splitlines()
    assert header.startswith("epoch,phase,") and [r.split(",")[0] for r in rows] == ["1", "2"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["metrics"]["n"] == len(ds.labels("test")) and metrics["split"] == "test"

    predictor = neuroxai.load(run)
    assert predictor.class_names == ds.class_names
    assert predictor.input_shape == (32, 32, 1) and predictor.target_layer == "bb_conv2"
    paths = ds.paths("test")
    from_paths = predictor.predict(paths)
    arrays = [np.asarray(Image.open(p)) for p in paths]
    np.testing.assert_array_equal(from_paths, predictor.predict(arrays))
    np.testing.assert_array_equal(from_paths, predictor.predict([Image.open(p) for p in paths]))
    np.testing.assert_allclose(from_paths, t.predict_proba(paths), atol=forward_tol(1.0))  # another pipeline and batch
    assert from_paths.shape == (len(paths), 4)
    np.testing.assert_allclose(from_paths.sum(axis=1), 1.0, atol=1e-5)
    assert list(predictor.predict_classes(paths)) == list(from_paths.argmax(1))
    # a .keras file alone loads too, with the spec beside it
    assert load(run / "model.keras").class_names == ds.class_names
    # the evaluation of the loaded model equals the trainer's
    again = predictor.evaluate(ds)
    assert again == t.metrics_ == RunDirectory(run).read_evaluation()


def test_load_refuses_code_and_missing_files(tmp_path):
    import keras

    with pytest.raises(ModelError, match="does not exist"):
        load(tmp_path / "nothing")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ModelError, match="Could not load"):
        load(tmp_path / "lambda.keras")


def test_evaluate_adds_deduplicated_test_set(plain_spec):
    from neuroxai.data import Dataset, phantoms

    base = phantoms(n_per_class=6, image_size=32, seed=2)
    x, y = base.arrays("train", image_size=(32, 32), channels=1)
    xt, yt = base.arrays("test", image_size=(32, 32), channels=1)
    x8, xt8 = (x * 255).round().astype(np.uint8)[..., 0], (xt * 255).round().astype(np.uint8)[..., 0]
    # the test set repeats the first three training images
    images = np.concatenate([x8, xt8, x8[:3]])
    labels = np.concatenate([y, yt, y[:3]])
    splits = ["train"] * len(y) + ["test"] * (len(yt) + 3)
    ds = Dataset.from_arrays(images, labels, class_names=base.class_names, splits=splits, val_fraction=0.0)
    assert len(ds.duplicate_test_indices()) == 3
    t = Trainer(plain_spec, epochs=1, progress=False).fit(ds)
    m = t.evaluate(ds)
    assert m.metrics.n == len(yt) + 3
    assert m.dedup.n == len(yt) and m.removed_duplicates == 3 and m.headline() is m.dedup
    assert t.metrics_ is m


def test_efficientnet_from_scratch_trains_in_one_phase_by_default():
    from neuroxai.models import ModelRegistry

    spec = ModelRegistry(autoload=False).get("efficientnetb0")
    assert [p.name for p in Trainer(spec, epochs=10)._plan(spec).phases] == ["head", "fine_tune"]  # pretrained: freeze first
    scratch = Trainer(spec, epochs=10, model_options={"weights": None})
    assert [p.name for p in scratch._plan(spec).phases] == ["single"]  # a frozen random backbone would never learn
    forced = Trainer(spec, epochs=10, model_options={"weights": None}, two_phase=True)
    assert [p.name for p in forced._plan(spec).phases] == ["head", "fine_tune"]
