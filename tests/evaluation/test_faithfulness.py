"""Deletion/insertion curves against hand-computed values on a model whose output is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuroxai.errors import DataError, ExplainError
from neuroxai.evaluation import (
    Faithfulness,
    FaithfulnessResult,
    auc,
    baseline_fill,
    deletion_insertion_curves,
    faithfulness_report,
)
from numerics import forward_tol


def _mean_model(logits: bool = False):
    """Class 0 probability = mean pixel value; class 1 = 1 - mean (or the matching logits)."""
    import keras

    inp = keras.Input((4, 4, 1))
    p = keras.layers.GlobalAveragePooling2D()(inp)
    q = keras.layers.Rescaling(-1.0, offset=1.0)(p)
    out = keras.layers.Concatenate()([p, q])
    if logits:  # log-probabilities: softmax of them gives back (p, 1 - p)
        out = keras.layers.Lambda(lambda t: keras.ops.log(keras.ops.maximum(t, 1e-7)))(out)
    return keras.Model(inp, out)


def _half_image():
    x = np.zeros((1, 4, 4, 1), np.float32)
    x[0, :2] = 1.0  # top half bright
    return x


def test_auc_trapezoid():
    assert auc(np.array([1.0, 0.5, 0.0])) == pytest.approx(0.5)
    assert auc(np.array([[0.0, 1.0, 1.0]]))[0] == pytest.approx(0.75)


def test_baseline_fills():
    x = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
    assert baseline_fill(x, "zero").sum() == 0
    np.testing.assert_allclose(baseline_fill(x, "mean")[0, 1, 1], [3.0, 4.0])
    assert np.all(baseline_fill(x, 0.25) == 0.25)
    blurred = baseline_fill(np.random.default_rng(0).random((1, 16, 16, 1)), "blur", blur_sigma=2)
    assert blurred.std() < 0.1
    with pytest.raises(ValueError, match="Unknown baseline"):
        baseline_fill(x, "noise")


@pytest.mark.parametrize("logits", [False, True])
def test_curves_hand_computed(logits):
    x = _half_image()
    model = _mean_model(logits)
    good = x[..., 0]  # bright half first
    r = deletion_insertion_curves(model, x, good, [0], steps=4, deletion_baseline="zero", insertion_baseline="zero")
    np.testing.assert_allclose(r.fractions, [0, 0.25, 0.5, 0.75, 1])
    # probabilities (<= 1) of one float32 forward pass against their exact values; the areas average them
    tol = forward_tol(1.0)
    np.testing.assert_allclose(r.deletion[0], [0.5, 0.25, 0, 0, 0], atol=tol)
    np.testing.assert_allclose(r.insertion[0], [0, 0.25, 0.5, 0.5, 0.5], atol=tol)
    assert r.deletion_auc[0] == pytest.approx(0.125, abs=tol)
    assert r.insertion_auc[0] == pytest.approx(0.375, abs=tol)
    # the reversed map removes the dark half first: a worse (higher) deletion area
    bad = deletion_insertion_curves(model, x, 1 - good, [0], steps=4, deletion_baseline="zero", insertion_baseline="zero")
    assert bad.deletion_auc[0] == pytest.approx(0.375, abs=tol)


def test_batched_equals_small_batches_and_padding():
    rng = np.random.default_rng(1)
    x = rng.random((7, 4, 4, 1)).astype(np.float32)
    maps = rng.random((7, 4, 4))
    t = rng.integers(0, 2, 7)
    model = _mean_model()
    a = deletion_insertion_curves(model, x, maps, t, steps=8, batch_size=1000)
    b = deletion_insertion_curves(model, x, maps, t, steps=8, batch_size=40)  # 2 images per chunk, last padded
    # probabilities (<= 1) of forward passes over chunks of other sizes: kernels may sum in another order
    np.testing.assert_allclose(a.deletion, b.deletion, atol=forward_tol(1.0))
    np.testing.assert_allclose(a.insertion, b.insertion, atol=forward_tol(1.0))
    # every curve starts at the model's prediction on the image (deletion) and ends on it (insertion)
    p = model.predict(x, verbose=0)[np.arange(7), t]
    np.testing.assert_allclose(a.deletion[:, 0], p, atol=forward_tol(1.0))
    np.testing.assert_allclose(a.insertion[:, -1], p, atol=forward_tol(1.0))


def test_shapes_are_checked():
    with pytest.raises(DataError, match="agree"):
        deletion_insertion_curves(_mean_model(), np.zeros((2, 4, 4, 1)), np.zeros((2, 5, 5)), [0, 1])


def test_report_beats_random_on_a_trained_model(trained_cnn, phantom_data):
    from xai_helpers import gradcam_fn

    _, (x, y, _) = phantom_data
    maps = gradcam_fn(trained_cnn, x, y)
    r = faithfulness_report(trained_cnn, x, maps, y, steps=10, seed=3)
    assert isinstance(r, FaithfulnessResult)
    assert FaithfulnessResult.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    assert len(r.fractions) == 11 and len(r.method.deletion.curve) == 11
    assert len(r.random.deletion.auc_per_image) == len(x)
    # deleting what Grad-CAM points at hurts the model more than deleting random pixels
    assert r.method.deletion.auc < r.random.deletion.auc - 0.05
    assert r.method.insertion_minus_deletion > r.random.insertion_minus_deletion


def test_faithfulness_metric_checks_its_settings():
    assert Faithfulness(steps=5, deletion_baseline=0.5).settings()["steps"] == 5
    with pytest.raises(ExplainError, match="steps"):
        Faithfulness(steps=0)
    with pytest.raises(ExplainError, match="deletion_baseline"):
        Faithfulness(deletion_baseline="noise")
    assert Faithfulness().requires == {"model", "maps"}
