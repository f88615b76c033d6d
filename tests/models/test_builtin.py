"""Built-in models: cnn design and learning, EfficientNetB0 weights, tiling and transfer spec."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from neuroxai.errors import ModelError
from neuroxai.models import structure_only
from neuroxai.models.builtin import efficientnet


# ----------------------------------------------------------------------------- cnn
def test_cnn_spec_metadata(registry):
    spec = registry.get("cnn")
    assert spec.input_shape == (128, 128, 1)
    assert spec.input_range == (0.0, 1.0)
    assert spec.target_layer == "features"
    assert spec.transfer is None


def test_cnn_default_build_has_8x8_feature_map_and_is_small(registry):
    model = registry.create("cnn", num_classes=4)
    assert tuple(model.get_layer("features").output.shape) == (None, 8, 8, 256)
    assert model.count_params() < 300_000
    assert isinstance(model.get_layer("logits"), keras.layers.Dense)
    assert model.get_layer("probabilities").get_config()["activation"] == "softmax"


def test_cnn_width_and_dropout_options(registry):
    half = registry.create("cnn", num_classes=4, input_shape=(32, 32, 3), width=0.5, dropout=0.1)
    assert half.get_layer("features").output.shape[-1] == 128
    assert half.get_layer("head_dropout").rate == pytest.approx(0.1)
    assert half.count_params() < registry.create("cnn", num_classes=4, input_shape=(32, 32, 3)).count_params() / 2
    with pytest.raises(ModelError, match="width > 0"):
        registry.create("cnn", width=0)
    with pytest.raises(ModelError, match=r"dropout in \[0, 1\)"):
        registry.create("cnn", dropout=1.0)
    with pytest.raises(ModelError, match="at least 16x16"):
        registry.create("cnn", input_shape=(8, 8, 1))


def test_cnn_feature_stride_8_doubles_the_explanation_resolution(registry):
    coarse = registry.create("cnn", num_classes=4, input_shape=(96, 96, 1))
    fine = registry.create("cnn", num_classes=4, input_shape=(96, 96, 1), feature_stride=8)
    assert tuple(coarse.get_layer("features").output.shape) == (None, 6, 6, 256)
    assert tuple(fine.get_layer("features").output.shape) == (None, 12, 12, 256)
    assert fine.count_params() == coarse.count_params()  # same weights, finer map
    with pytest.raises(ModelError, match="feature_stride 8 or 16"):
        registry.create("cnn", feature_stride=4)


def test_cnn_learns_a_simple_task(registry):
    """A few epochs on tiny data separate 'bright left half' from 'bright right half'."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n, side = 96, 32
    y = np.arange(n) % 2
    x = rng.uniform(0.0, 0.3, size=(n, side, side, 1)).astype("float32")
    for i, label in enumerate(y):
        cols = slice(0, side // 2) if label == 0 else slice(side // 2, side)
        x[i, 8:24, cols, 0] += 0.6
    model = registry.create("cnn", num_classes=2, input_shape=(side, side, 1), width=0.5)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    accuracy = float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))
    assert accuracy >= 0.9


# ----------------------------------------------------------------------------- efficientnetb0
def test_efficientnet_spec_metadata(registry):
    spec = registry.get("efficientnetb0")
    assert spec.input_shape == (224, 224, 3)
    assert spec.input_range == (0.0, 255.0)
    assert spec.target_layer == "top_activation"
    assert spec.transfer is not None and spec.transfer.fine_tune_lr_factor == pytest.approx(0.1)


def test_efficientnet_tiles_grayscale_inside_the_model(registry):
    model = registry.create("efficientnetb0", num_classes=2, input_shape=(32, 32, 1), weights=None)
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 1)).astype("float32")
    tiled = keras.Model(model.input, model.get_layer("grayscale_to_rgb").output)(x)
    np.testing.assert_allclose(np.asarray(tiled), np.repeat(x, 3, axis=-1), rtol=1e-6)
    assert not model.get_layer("grayscale_to_rgb").trainable


def test_efficientnet_rgb_has_no_tiling_layer(registry):
    model = registry.create("efficientnetb0", num_classes=2, input_shape=(32, 32, 3), weights=None)
    assert "grayscale_to_rgb" not in [layer.name for layer in model.layers]


@pytest.mark.parametrize(
    ("shape", "message"), [((32, 32, 2), "1 \\(grayscale, tiled to RGB\\) or 3 channels"), ((16, 16, 3), "at least 32x32")]
)
def test_efficientnet_rejects_unsupported_shapes(registry, shape, message):
    with pytest.raises(ModelError, match=message):
        registry.create("efficientnetb0", input_shape=shape, weights=None)


def test_efficientnet_missing_weights_file_is_a_clear_error(registry, tmp_path):
    missing = tmp_path / "nope.weights.h5"
    with pytest.raises(ModelError, match=f"weights file '{missing}' does not exist"):
        registry.create("efficientnetb0", input_shape=(32, 32, 3), weights=missing)


def _backbone_weights(model):
    """Weights of the backbone layers, in layer order (head and tiling layer excluded)."""
    skip = efficientnet.HEAD_LAYERS | {"grayscale_to_rgb"}
    return [w for layer in model.layers if layer.weights and layer.name not in skip for w in layer.get_weights()]


@pytest.mark.parametrize("channels", [1, 3])
def test_efficientnet_loads_a_local_weights_file(registry, tmp_path, channels):
    keras.utils.set_random_seed(3)
    source = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "backbone.weights.h5"
    source.save_weights(path)
    expected = [w for layer in source.layers if layer.weights for w in layer.get_weights()]

    model = registry.create("efficientnetb0", num_classes=4, input_shape=(32, 32, channels), weights=str(path))
    got = _backbone_weights(model)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    fresh = registry.create("efficientnetb0", num_classes=4, input_shape=(32, 32, channels), weights=None)
    assert any(not np.array_equal(a, b) for a, b in zip(_backbone_weights(fresh), expected))


def test_efficientnet_local_imagenet_file_gets_keras_imagenet_scaling(registry, tmp_path):
    """A file with Keras' ImageNet normalisation statistics behaves like weights='imagenet'."""
    source = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 3))
    norm = next(layer for layer in source.layers if isinstance(layer, keras.layers.Normalization))
    std = np.array([0.229, 0.224, 0.225], "float32")
    norm.adapt_mean.assign(np.array([0.485, 0.456, 0.406], "float32"))
    norm.adapt_variance.assign(std**2)
    norm.finalize_state()
    path = tmp_path / "imagenet_like.weights.h5"
    source.save_weights(path)

    model = registry.create("efficientnetb0", num_classes=4, input_shape=(32, 32, 3), weights=path)
    loaded = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    # Keras' imagenet graph computes (x/255 - mean) / std / sqrt(std)
    x = np.full((1, 32, 32, 3), 200.0, "float32")
    upto = keras.Model(model.input, loaded.output)(x)
    expected = (200.0 / 255.0 - np.array([0.485, 0.456, 0.406])) / std / np.sqrt(std)
    np.testing.assert_allclose(np.asarray(upto)[0, 0, 0], expected, rtol=1e-4)


def test_efficientnet_weights_file_of_wrong_architecture_is_a_clear_error(registry, tmp_path):
    other = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3), include_preprocessing=False
    )
    path = tmp_path / "mobilenet.weights.h5"
    other.save_weights(path)
    with pytest.raises(ModelError, match="does not fit an EfficientNetB0 backbone"):
        registry.create("efficientnetb0", input_shape=(32, 32, 3), weights=path)


def test_structure_only_never_downloads(registry, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr("keras.src.utils.file_utils.get_file", no_network)
    monkeypatch.setattr("keras.src.applications.efficientnet.file_utils.get_file", no_network)
    with structure_only():
        model = registry.create("efficientnetb0", num_classes=4, input_shape=(32, 32, 3))
    assert model.count_params() > 4_000_000
    with pytest.raises(ModelError, match="could not get the ImageNet weights.*weights=None"):
        registry.create("efficientnetb0", num_classes=4, input_shape=(32, 32, 3))


def test_efficientnet_transfer_phases(registry):
    model = registry.create("efficientnetb0", num_classes=4, input_shape=(32, 32, 1), weights=None)
    transfer = registry.get("efficientnetb0").transfer
    head = transfer.set_phase(model, "head")
    trainable = {layer.name for layer in model.layers if layer.trainable}
    assert {"head_dense", "logits"} <= trainable
    assert not any(name.startswith(("block", "stem", "top_")) for name in trainable)
    assert head["trainable"] == len(trainable)

    transfer.set_phase(model, "fine_tune")
    layers = {layer.name: layer for layer in model.layers}
    assert layers["block7a_project_conv"].trainable and layers["top_conv"].trainable and layers["block6a_expand_conv"].trainable
    assert not layers["block5a_expand_conv"].trainable and not layers["stem_conv"].trainable
    assert not layers["top_bn"].trainable and not layers["block7a_bn"].trainable  # batch norm stays frozen
    assert not layers["grayscale_to_rgb"].trainable
    with pytest.raises(ModelError, match="phase"):
        transfer.set_phase(model, "all")
