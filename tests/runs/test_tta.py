"""Test-time augmentation and MC-dropout (neuroxai.runs._uncertainty) on a tiny Keras model."""

from __future__ import annotations

import numpy as np
import pytest

from neuroxai.errors import DataError
from neuroxai.runs import apply_temperature, predict_array, tta_probabilities
from neuroxai.runs._uncertainty import _augment, has_dropout, tta_passes
from numerics import forward_tol


def tiny(dropout: float):
    import keras

    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x))


def test_passes_start_with_the_image_itself_then_flip_and_shift():
    assert tta_passes(3) == [(False, 0, 0), (True, 0, 0), (False, 0, 1)]
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(_augment(x, True, 0, 0)[0, :, :, 0], x[0, :, ::-1, 0])
    shifted = _augment(x, False, 0, 1)[0, :, :, 0]  # one pixel right, the left edge repeated
    np.testing.assert_array_equal(shifted[:, 1:], x[0, :, :-1, 0])
    np.testing.assert_array_equal(shifted[:, 0], x[0, :, 0, 0])
    down = _augment(x, False, -1, 0)[0, :, :, 0]  # one pixel up, the bottom row repeated
    np.testing.assert_array_equal(down[:-1], x[0, 1:, :, 0])


def test_one_pass_without_dropout_is_the_plain_prediction_and_temperature_is_applied():
    model = tiny(0.0)
    x = np.random.default_rng(0).random((5, 16, 16, 1), dtype=np.float32)
    assert not has_dropout(model)
    plain = predict_array(model, x, 4)
    # probabilities (<= 1) of another graph and batch
    np.testing.assert_allclose(tta_probabilities(model, x, 1), plain, atol=forward_tol(1.0))
    np.testing.assert_allclose(
        tta_probabilities(model, x, 1, temperature=2.0), apply_temperature(plain, 2.0), atol=forward_tol(1.0)
    )


def test_mc_dropout_is_on_in_every_pass_with_fixed_masks_and_leaves_the_model_alone():
    model = tiny(0.5)
    x = np.random.default_rng(1).random((6, 16, 16, 1), dtype=np.float32)
    plain = predict_array(model, x, 8)
    mc = tta_probabilities(model, x, 4, augment=False)
    assert has_dropout(model) and not np.allclose(mc, plain, atol=1e-4)
    np.testing.assert_array_equal(mc, tta_probabilities(model, x, 4, augment=False))  # reproducible
    np.testing.assert_allclose(tta_probabilities(model, x, 4, mc_dropout=False, augment=False), plain, atol=forward_tol(1.0))
    np.testing.assert_allclose(predict_array(model, x, 8), plain)  # the model's own dropout stays off
    assert np.allclose(mc.sum(axis=1), 1.0, atol=1e-5)


def test_bad_pass_counts_are_refused():
    with pytest.raises(DataError, match="integer >= 1"):
        tta_probabilities(tiny(0.0), np.zeros((1, 16, 16, 1), np.float32), 0)


def test_mc_dropout_masks_change_per_call_at_the_rate_and_repeat_from_the_seed():
    """The same statistics on every backend (tests/backends/test_keras_backends.py checks them on JAX and PyTorch)."""
    import keras

    from neuroxai.runs._uncertainty import _mc_model

    inputs = keras.Input((64,))
    model = keras.Model(inputs, keras.layers.Dropout(0.5, seed=5)(inputs))
    twin, states = _mc_model(model)
    ones = np.ones((32, 64), np.float32)
    first, second = predict_array(twin, ones, 16), predict_array(twin, ones, 16)
    assert set(np.unique(first)) <= {0.0, 2.0} and not np.array_equal(first, second)
    assert not np.array_equal(first[:16], first[16:])
    assert abs((np.concatenate([first, second]) == 0).mean() - 0.5) < 0.03
    for layer, state in states:
        layer.seed_generator.state.assign(state)
    np.testing.assert_array_equal(predict_array(twin, ones, 16), first)
