"""Cascading randomization: similarity measures, the clone, and the pass/fail rule."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from neuroxai.errors import ExplainError
from neuroxai.evaluation import Sanity, SanityResult, cascading_randomization, randomizable_layers, spearman_similarity, ssim
from neuroxai.evaluation.sanity import _ssim_map


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, (6, 5, 5)).astype(float)
    b = a + rng.integers(-3, 4, (6, 5, 5))
    want = [spearmanr(a[i].ravel(), b[i].ravel())[0] for i in range(6)]
    np.testing.assert_allclose(spearman_similarity(a, b, absolute=False), want, atol=1e-12)
    np.testing.assert_allclose(spearman_similarity(a, -b), np.abs(want), atol=1e-12)


def test_spearman_of_a_constant_map_is_zero():
    a = np.random.default_rng(0).random((1, 4, 4))
    assert spearman_similarity(a, np.zeros((1, 4, 4))).tolist() == [0.0]


def test_ssim_matches_tensorflow_in_the_interior():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = rng.random((2, 24, 24))
    b = np.clip(a + 0.3 * rng.standard_normal((2, 24, 24)), 0, 1)
    ours = _ssim_map(a, b, sigma=1.5, data_range=1.0, normalize=False)[:, 5:-5, 5:-5].mean(axis=(1, 2))
    theirs = tf.image.ssim(a[..., None], b[..., None], max_val=1.0).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_ssim_identity_and_noise():
    a = np.random.default_rng(0).random((1, 16, 16))
    assert ssim(a, a)[0] == pytest.approx(1.0)
    assert ssim(a, 3 * a)[0] == pytest.approx(1.0)  # normalised by the max first
    assert ssim(a, np.random.default_rng(1).random((1, 16, 16)))[0] < 0.3


def test_layers_go_from_output_to_input(trained_cnn):
    assert [layer.name for layer in randomizable_layers(trained_cnn)] == ["logits", "last_conv", "conv2", "conv1"]


def test_broken_explainer_fails_and_users_model_is_untouched(trained_cnn, phantom_data):
    from xai_helpers import sobel_fn

    _, (x, y, _) = phantom_data
    before = [w.copy() for w in trained_cnn.get_weights()]
    r = cascading_randomization(trained_cnn, x[:12], y[:12], sobel_fn)
    assert SanityResult.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    assert r.passed is False
    assert r.layers == ("original", "logits", "last_conv", "conv2", "conv1")
    assert r.final.spearman == pytest.approx(1.0) and r.final.ssim == pytest.approx(1.0)
    for w0, w1 in zip(before, trained_cnn.get_weights()):
        np.testing.assert_array_equal(w0, w1)


def test_gradcam_passes(trained_cnn, phantom_data):
    from xai_helpers import gradcam_fn

    _, (x, y, _) = phantom_data
    r = cascading_randomization(trained_cnn, x[:16], y[:16], gradcam_fn, seed=1)
    assert r.passed is True, r
    assert r.spearman[0] == 1.0 and len(r.spearman) == 5
    assert r.final.spearman < 0.5
    assert r.final.ssim < 0.9 and r.ssim[0] == 1.0


def test_given_original_maps_are_not_explained_again(trained_cnn, phantom_data):
    from xai_helpers import gradcam_fn

    _, (x, y, _) = phantom_data
    calls = []

    def counting(model, images, targets):
        calls.append(model is trained_cnn)
        return gradcam_fn(model, images, targets)

    original = gradcam_fn(trained_cnn, x[:6], y[:6])
    r = cascading_randomization(trained_cnn, x[:6], y[:6], counting, original_maps=original, max_layers=2)
    assert calls == [False, False]  # only the randomized clone, once per layer
    assert r.layers == ("original", "logits", "last_conv")


def test_sanity_metric_checks_its_settings():
    assert Sanity(n_images=4).requires == {"model", "maps", "explain_fn"}
    with pytest.raises(ExplainError, match="threshold"):
        Sanity(threshold=2.0)


def test_explain_fn_shape_is_checked(trained_cnn, phantom_data):
    _, (x, y, _) = phantom_data
    with pytest.raises(ExplainError, match="shape"):
        cascading_randomization(trained_cnn, x[:2], y[:2], lambda m, i, t: np.zeros((2, 3, 3)))
