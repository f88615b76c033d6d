"""Mask-guided training: settings, which images count, built-in and nested models, and that it moves the evidence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuroxai.errors import DataError, ModelError
from neuroxai.training import MaskGuidance, Trainer

pytestmark = pytest.mark.slow


def tiny_factory(*, num_classes, input_shape=(32, 32, 1)):
    """Two conv blocks with batch norm (16x16 feature map at 32 px) and a GAP head."""
    import keras

    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization(momentum=0.8)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(32, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=0.8)(x)
    x = keras.layers.ReLU(name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x), name="tiny")


def nested_factory(*, num_classes, input_shape=(32, 32, 1)):
    """The same network with its convolutional part as one nested layer (the `x = backbone(inputs)` pattern)."""
    import keras

    core = tiny_factory(num_classes=num_classes, input_shape=input_shape)
    backbone = keras.Model(core.inputs, core.get_layer("features").output, name="backbone")
    inputs = keras.Input(input_shape)
    x = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x), name="nested")


def spec(factory=tiny_factory, target="features"):
    from neuroxai.models import ModelSpec

    return ModelSpec(name="tiny", factory=factory, input_shape=(32, 32, 1), input_range=(0.0, 1.0), target_layer=target)


def test_guidance_settings_are_checked():
    assert MaskGuidance.coerce("cam") == MaskGuidance("cam", 1.0, None)
    assert MaskGuidance.coerce(None) is None
    assert MaskGuidance.from_dict(MaskGuidance("gradients", 2.5, ("backbone", "features")).to_dict()).layer == (
        "backbone",
        "features",
    )
    with pytest.raises(ModelError, match="guidance kind 'cam' or 'gradients'"):
        MaskGuidance("saliency")
    with pytest.raises(ModelError, match="guidance weight >= 0"):
        MaskGuidance("cam", weight=-1.0)
    with pytest.raises(ModelError, match="guidance weight >= 0"):
        MaskGuidance("cam", weight=float("nan"))
    with pytest.raises(ModelError, match="guidance kind"):
        Trainer("cnn", guidance="gradcam").fit(None)  # refused before the data is touched


def test_guidance_needs_masks():
    from neuroxai.data import Dataset

    ds = Dataset.from_arrays(np.zeros((12, 32, 32), np.uint8), np.arange(12) % 2, class_names=["a", "b"], seed=0)
    with pytest.raises(DataError, match="guidance='cam' needs tumour masks"):
        Trainer(spec(), epochs=1, progress=False, guidance="cam").fit(ds)


def _no_batch_norm(num_classes=2):
    """A tiny model whose per-image outputs do not depend on the rest of the batch (no batch norm)."""
    import keras

    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x))


def _one_step_guidance(kind, model, images, labels, masks):
    """The guidance loss of one training step with learning rate 0 (weights unchanged)."""
    import keras
    import tensorflow as tf

    from neuroxai.models import resolve_target_layer
    from neuroxai.training._guided import GuidedModel

    g = GuidedModel(model, MaskGuidance(kind), resolve_target_layer(model, "features"))
    g.compile(optimizer=keras.optimizers.SGD(0.0), metrics=["accuracy"])
    data = ((tf.constant(images), tf.constant(masks[..., None], tf.float32)), tf.constant(labels))
    g.train_step(data)
    return float(g.guidance_tracker.result()), g


@pytest.mark.parametrize("kind", ["cam", "gradients"])
def test_only_images_with_a_mask_count_and_each_equally(kind):
    rng = np.random.default_rng(0)
    x = rng.random((4, 32, 32, 1)).astype("float32")
    y = np.array([0, 1, 0, 1], np.int32)
    masks = np.zeros((4, 32, 32), np.float32)
    masks[0, 4:12, 4:12] = 1
    masks[2, 20:28, 16:30] = 1  # images 1 and 3 have no mask (e.g. "notumor")
    model = _no_batch_norm()
    both, _ = _one_step_guidance(kind, model, x, y, masks)
    first, _ = _one_step_guidance(kind, model, x[[0, 1]], y[[0, 1]], masks[[0, 1]])
    third, _ = _one_step_guidance(kind, model, x[[2, 3]], y[[2, 3]], masks[[2, 3]])
    assert 0.0 < first < 1.0 and 0.0 < third < 1.0
    assert both == pytest.approx((first + third) / 2, rel=1e-4)  # the mean over masked images only
    none, _ = _one_step_guidance(kind, model, x, y, np.zeros_like(masks))
    assert none == 0.0  # no mask in the batch: cross-entropy alone


def test_guided_training_moves_the_evidence_into_the_mask():
    # Phantoms with a planted shortcut (a class-coded bright corner square): trained on cross-entropy alone
    # the model's evidence sits outside the tumour; with guidance it must move into the mask.
    from neuroxai.data import phantoms
    from neuroxai.evaluation import energy_pointing_game
    from neuroxai.explain import Explainer

    ds = phantoms(n_per_class=24, image_size=32, seed=0, shortcut=True)
    x, y, m = ds.arrays("train", image_size=(32, 32), channels=1, with_masks=True)
    has = m.reshape(len(m), -1).any(axis=1)
    energy = {}
    for name, guidance in (("plain", None), ("guided", MaskGuidance("cam", weight=5.0))):
        t = Trainer(spec(), epochs=12, batch_size=8, learning_rate=1e-2, progress=False, seed=0, augment=False, guidance=guidance)
        t.fit(ds)
        maps = Explainer(t.to_predictor(), "gradcam").explain(x[has], targets=y[has]).maps
        energy[name] = float(energy_pointing_game(maps, m[has]).mean())
        if guidance is not None:
            assert t.history_["guidance_loss"][-1] < t.history_["guidance_loss"][0]
    assert energy["guided"] > 3 * energy["plain"], energy


def test_guided_run_directory_holds_the_plain_model(tmp_path):
    import keras

    import neuroxai
    from neuroxai.data import phantoms

    ds = phantoms(n_per_class=6, image_size=32, seed=1)
    run = tmp_path / "run"
    t = Trainer(spec(), epochs=2, batch_size=8, progress=False, seed=0, guidance=MaskGuidance("gradients", weight=0.5))
    t.fit(ds, out_dir=run)
    for name in ("model.keras", "checkpoints/best.keras"):
        loaded = keras.saving.load_model(run / name, safe_mode=True, compile=False)  # no custom class inside
        assert loaded.name == "tiny"
    saved = json.loads((run / "neuroxai.json").read_text())
    assert saved["settings"]["guidance"] == {"kind": "gradients", "weight": 0.5, "layer": None}
    header = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "guidance_loss", "val_loss"} <= set(header) and "val_guidance_loss" not in header
    assert neuroxai.load(run).predict(ds.arrays("test", image_size=(32, 32), channels=1)[0]).shape[1] == 4


@pytest.mark.parametrize(
    ("model", "layer"),
    [("nested", ("backbone", "features")), ("cnn", None), ("efficientnetb0", None)],
    ids=["nested-backbone", "cnn", "efficientnetb0"],
)
def test_guidance_works_with_nested_and_builtin_models(model, layer):
    # four classes, masks for only some tumour images (the Kaggle-style path): the others train on cross-entropy alone
    from neuroxai.data import Dataset, phantoms

    base = phantoms(n_per_class=6, image_size=32, seed=2)
    x, y, m = base.arrays("train", image_size=(32, 32), channels=1, with_masks=True)
    some = [mk if i % 2 == 0 else None for i, mk in enumerate(m)]
    ds = Dataset.from_arrays((x[..., 0] * 255).astype(np.uint8), y, class_names=base.class_names, masks=some, seed=0)
    if model == "nested":
        trainer = Trainer(spec(nested_factory, target=None), epochs=1, progress=False, guidance=MaskGuidance("cam", layer=layer))
    else:
        options = {"weights": None} if model == "efficientnetb0" else {"feature_stride": 8}
        trainer = Trainer(model, image_size=32, epochs=1, batch_size=8, progress=False, model_options=options, guidance="cam")
    trainer.fit(ds)
    assert np.isfinite(trainer.history_["guidance_loss"]).all() and np.isfinite(trainer.history_["loss"]).all()
