"""Contract tests run for every registered model (parametrized over the registry)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from neuroxai.models import ModelRegistry
from numerics import forward_tol

NAMES = ModelRegistry(autoload=False).names()
NUM_CLASSES = 3


@pytest.fixture(scope="module", params=NAMES)
def built(request, registry, small_shape, offline_options):
    """(spec, model, input batch) for one model at a tiny size."""
    keras.utils.set_random_seed(0)
    spec = registry.get(request.param)
    shape = small_shape(spec)
    model = registry.create(spec.name, num_classes=NUM_CLASSES, input_shape=shape, **offline_options(spec))
    low, high = spec.input_range
    x = np.random.default_rng(0).uniform(low, high, size=(4, *shape)).astype("float32")
    return spec, model, x


def test_builds_flat_model_with_contract_layers(built):
    spec, model, x = built
    names = [layer.name for layer in model.layers]
    assert "logits" in names and "probabilities" in names
    assert names[-1] == "probabilities"
    assert spec.target_layer in names
    # flat: no nested model as a layer, so every layer is reachable
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    # the target feature map and the logits can be read in one graph (what Grad-CAM does)
    probe = keras.Model(model.input, [model.get_layer(spec.target_layer).output, model.get_layer("logits").output])
    features, logits = probe(x)
    assert len(features.shape) == 4
    probs = np.asarray(model(x))
    assert probs.shape == (4, NUM_CLASSES)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # probabilities (<= 1) of the model against the softmax of the logits from another graph
    np.testing.assert_allclose(probs, np.asarray(keras.ops.softmax(logits)), atol=forward_tol(1.0))


def test_model_is_uncompiled(built):
    _, model, _ = built
    assert not model.compiled


def test_one_training_step_changes_weights_and_gives_finite_loss(built):
    _spec, model, x = built
    keras.utils.set_random_seed(1)
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    # run_eagerly: tracing EfficientNetB0's train step as a tf.function takes
    # ~90 s on a busy 2-core CPU; an eager step checks the same gradients.
    clone.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", run_eagerly=True)
    y = np.arange(4) % NUM_CLASSES
    before = [w.copy() for w in clone.get_weights()]
    loss = clone.train_on_batch(x, y)
    assert np.isfinite(loss)
    changed = sum(not np.array_equal(a, b) for a, b in zip(before, clone.get_weights()))
    assert changed > 0


def test_keras_save_and_safe_mode_load_round_trip(built, tmp_path):
    spec, model, x = built
    path = tmp_path / f"{spec.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.get_layer(spec.target_layer) is not None


def test_rejects_wrong_image_size_at_call_time(built):
    _, model, x = built
    h, w, c = x.shape[1:]
    wrong = np.zeros((2, h * 2, w * 2, c), "float32")
    with pytest.raises(ValueError, match=rf"incompatible.*expected shape=\(None, {h}, {w}, {c}\)"):
        model(wrong)


def test_rejects_wrong_channel_count_at_call_time(built):
    _, model, x = built
    h, w, c = x.shape[1:]
    other = 3 if c == 1 else 1
    with pytest.raises(ValueError, match=rf"incompatible with the layer: expected axis -1 of input shape to have value {c}"):
        model(np.zeros((2, h, w, other), "float32"))


def test_every_model_rejects_a_2d_input_shape_at_create(registry, offline_options):
    for _, spec in registry.items():
        with pytest.raises(ValueError, match="Add the channel axis"):
            registry.create(spec.name, input_shape=(32, 32), **offline_options(spec))
