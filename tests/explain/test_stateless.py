"""Stateless methods, the Explainer's compile cache, the gradient-free bases and typed results."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from explain_models import SIZE, functional_rgb, images_for, sequential_gray, square_images
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroxai.explain import (
    CAMMethod,
    Explainer,
    GradCAM,
    GradCAMPlusPlus,
    GradientFreeCAMMethod,
    HiResCAM,
    LayerCAM,
    Occlusion,
    ScoreCAM,
    SmoothGrad,
    normalize_maps,
)
from numerics import difference_tol, forward_tol, normalised_tol

SHARED = [GradCAM(), ScoreCAM(max_channels=4), Occlusion(patch_size=8), SmoothGrad(samples=2)]


@pytest.fixture(scope="module")
def two_models():
    return sequential_gray(num_classes=3), functional_rgb(num_classes=4)


@pytest.mark.parametrize("method", SHARED, ids=lambda m: m.name)
def test_two_explainers_sharing_one_method_instance_do_not_interfere(two_models, method):
    small, large = two_models
    x_small, x_large = images_for(small, 3), images_for(large, 2)
    first = Explainer(small, method, batch_size=8)
    second = Explainer(large, method, batch_size=8)
    a = first.explain(x_small)
    b = second.explain(x_large)
    again = first.explain(x_small)  # after the second explainer was built and used
    assert a.probabilities.shape == again.probabilities.shape == (3, 3)
    assert b.probabilities.shape == (2, 4)
    # probabilities (<= 1) compiled against eager: one forward pass's rounding
    np.testing.assert_allclose(again.probabilities, np.asarray(small(x_small, training=False)), atol=forward_tol(1.0))
    np.testing.assert_allclose(b.probabilities, np.asarray(large(x_large, training=False)), atol=forward_tol(1.0))
    np.testing.assert_array_equal(a.maps, again.maps)
    fresh = Explainer(small, type(method)(**method.options), batch_size=8).explain(x_small)
    np.testing.assert_array_equal(again.maps, fresh.maps)  # an equal method finds the same compiled functions


def test_method_instance_holds_settings_only(two_models):
    method = ScoreCAM(max_channels=2)
    small, _ = two_models
    Explainer(small, method, batch_size=4).explain(images_for(small, 2))
    assert set(vars(method)) == {"_options"}  # no model, batch size or compiled function stuck to it
    assert dict(method.options) == {"max_channels": 2}
    with pytest.raises(TypeError):
        method.options["max_channels"] = 3  # read-only: the compile cache keys on the options


@pytest.mark.parametrize(
    "method, options, functions",
    [("gradcam", {}, 1), ("smoothgrad", {"samples": 2}, 1), ("scorecam", {}, 3), ("occlusion", {"patch_size": 8}, 3)],
)
def test_compiled_once_for_every_batch_size(two_models, method, options, functions):
    small, _ = two_models
    explainer = Explainer(small, method, batch_size=4, **options)
    explainer.explain(images_for(small, 5))  # calls of 4 and 1 images (fewer for smoothgrad)
    explainer.explain(images_for(small, 3, seed=1), targets=1)
    assert len(explainer.cache) == functions
    assert explainer.cache.tracing_count() == functions  # one trace each, whatever the batch and chunk sizes


def _features(model, layer, x):
    return np.asarray(keras.Model(model.inputs, model.get_layer(layer).output)([x], training=False))


def test_scorecam_matches_reference(two_models):
    """Score-CAM by the paper, per image and per channel, eager: the chunked, compiled base must agree."""
    model, _ = two_models
    x = images_for(model, 2, seed=3)
    exp = Explainer(model, "scorecam", target_layer="conv2", batch_size=3).explain(x, targets=[0, 2])
    acts = _features(model, "conv2", x)  # [B, h, w, K]
    raw = np.zeros(acts.shape[:3], np.float32)
    for i, target in enumerate([0, 2]):
        for k in range(acts.shape[-1]):
            up = tf.image.resize(acts[i, :, :, k][None, ..., None], (SIZE, SIZE), method="bilinear").numpy()[0, ..., 0]
            span = up.max() - up.min()
            mask = (up - up.min()) / span if span > 1e-12 else np.zeros_like(up)
            score = float(model(x[i : i + 1] * mask[None, ..., None], training=False)[0, target])
            raw[i] += score * acts[i, :, :, k]
    # a sum of non-negative terms (probabilities times conv2's ReLU'd activations) carries one forward pass's
    # rounding of itself, per image; then divided by its peak
    peak = raw.max(axis=(1, 2))
    tol = max(normalised_tol(forward_tol(p), p) for p in peak)
    np.testing.assert_allclose(exp.maps, normalize_maps(raw, (SIZE, SIZE)).numpy(), atol=tol)


def _reference_patch_masks(height, width, patch, stride):
    """The patch grid as neuroxai 0.x built it in numpy: every ``stride``, plus one flush with the far edge."""
    ys = list(range(0, max(height - patch, 0) + 1, stride))
    xs = list(range(0, max(width - patch, 0) + 1, stride))
    if ys[-1] + patch < height:
        ys.append(height - patch)
    if xs[-1] + patch < width:
        xs.append(width - patch)
    masks = np.zeros((len(ys) * len(xs), height, width), np.float32)
    for i, (y, x) in enumerate((y, x) for y in ys for x in xs):
        masks[i, y : y + patch, x : x + patch] = 1.0
    return masks


def _reference_occlusion(model, x, targets, patch, stride, fill):
    """Occlusion by the paper, eager, one patch at a time: the raw maps and the largest score they subtract."""
    masks = _reference_patch_masks(x.shape[1], x.shape[2], patch, stride)
    rows = np.arange(len(x))
    clean = np.asarray(model(x, training=False))[rows, targets]
    raw = np.zeros(x.shape[:3], np.float32)
    scale = clean.max()
    for m in masks:
        covered = np.asarray(model(x * (1 - m[None, ..., None]) + fill * m[None, ..., None], training=False))[rows, targets]
        raw += (clean - covered)[:, None, None] * m[None]
        scale = max(scale, covered.max())
    return raw / np.maximum(masks.sum(axis=0), 1.0)[None], scale


def _occlusion_tol(raw, scale):
    """Raw maps are drops, differences of two forward passes of scores up to ``scale``; divided by their peak."""
    return normalised_tol(difference_tol(scale), np.maximum(raw, 0).max(axis=(1, 2)))


@pytest.mark.parametrize("patch, stride", [(8, 8), (12, 8), (5, 3)])
def test_occlusion_matches_reference(two_models, patch, stride):
    model, _ = two_models
    x = square_images(model, 2, seed=4)
    exp = Explainer(model, "occlusion", patch_size=patch, stride=stride, fill=0.5, batch_size=16).explain(x, targets=1)
    raw, scale = _reference_occlusion(model, x, np.array([1, 1]), patch, stride, fill=0.5)
    np.testing.assert_allclose(exp.maps, normalize_maps(raw, (SIZE, SIZE)).numpy(), atol=_occlusion_tol(raw, scale))


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    patch=st.integers(1, 20),
    stride=st.integers(1, 20),
)
def test_occlusion_patch_grid_covers_every_pixel(height, width, patch, stride):
    x = tf.ones((1, height, width, 1))
    occlusion = Occlusion(patch_size=patch, stride=stride)
    units = occlusion.units(x, None)  # [1, 2, P]: each patch's start along each axis
    masks = 1.0 - occlusion.perturb(x, units).numpy()[0, ..., 0]  # [P, H, W]: a patch filled with 0 on ones
    np.testing.assert_array_equal(masks, _reference_patch_masks(height, width, patch, stride))
    assert set(np.unique(masks)) <= {0.0, 1.0}
    assert np.all(masks.sum(axis=(1, 2)) == min(patch, height) * min(patch, width))  # whole patches, inside the image
    if stride <= patch:
        assert masks.sum(axis=0).min() >= 1  # no gaps: every pixel is covered by some patch


def test_occlusion_drops_within_rounding_of_the_score_give_an_all_zero_map():
    """A model the patches do not change gives an all-zero map, also where the kernels of the clean and the
    covered batches round the score differently (Eigen's softmax gives 1/3 one ulp apart): not its noise at full scale."""
    x = tf.zeros((2, SIZE, SIZE, 1))
    method = Occlusion(patch_size=8)
    units = method.units(x, None)
    clean = tf.constant([1 / 3, 0.9], tf.float32)
    ulp = np.spacing(clean.numpy())
    scores = clean[:, None] - tf.constant(ulp[:, None] * np.linspace(-2, 2, units.shape[-1]), tf.float32)
    noise_only = normalize_maps(method.attribute(x, units, scores, clean), (SIZE, SIZE)).numpy()
    np.testing.assert_array_equal(noise_only, 0.0)
    real = scores.numpy().copy()
    real[1, 3] -= 1e-3  # one patch that matters, in the second image only
    maps = normalize_maps(method.attribute(x, units, tf.constant(real), clean), (SIZE, SIZE)).numpy()
    np.testing.assert_array_equal(maps[0], 0.0)
    assert maps[1].max() == 1.0


@pytest.mark.parametrize("method, options", [("scorecam", {}), ("occlusion", {"patch_size": 6, "stride": 4})])
def test_gradient_free_results_do_not_depend_on_batch_size(two_models, method, options):
    _, model = two_models
    x = square_images(model, 3, seed=5)
    one = Explainer(model, method, batch_size=1, **options).explain(x)
    many = Explainer(model, method, batch_size=64, **options).explain(x)
    np.testing.assert_array_equal(one.targets, many.targets)
    if method == "occlusion":
        raw, scale = _reference_occlusion(model, x, one.targets, options["patch_size"], options["stride"], fill=0.0)
        tol = _occlusion_tol(raw, scale)
    else:  # Score-CAM: a sum of non-negative terms (probabilities times ReLU'd activations) carries one forward pass's
        tol = normalised_tol(forward_tol(1.0), 1.0)  # rounding of itself: relative to its peak, before and after
    np.testing.assert_allclose(one.maps, many.maps, atol=tol)


class ScoreDropCAM(GradientFreeCAMMethod):
    """A plugin-style gradient-free CAM: overrides only the weighting hook."""

    name = "scoredropcam"

    def weigh(self, scores, clean_scores):
        return clean_scores[:, None] - scores  # channels whose mask alone loses the class weigh most


def test_gradient_free_cam_subclass_overrides_one_hook(two_models):
    _, model = two_models
    x = images_for(model, 2)
    exp = Explainer(model, ScoreDropCAM, max_channels=4).explain(x)
    assert exp.method == "scoredropcam" and exp.layer == "conv3"
    assert exp.maps.shape == (2, SIZE, SIZE) and np.all(np.isfinite(exp.maps))
    assert exp.maps.min() >= 0 and exp.maps.max() <= 1
    assert not np.allclose(exp.maps, Explainer(model, ScoreCAM, max_channels=4).explain(x).maps)


@pytest.mark.parametrize(
    "cls, base",
    [
        (GradCAM, CAMMethod),
        (GradCAMPlusPlus, CAMMethod),
        (LayerCAM, CAMMethod),
        (HiResCAM, CAMMethod),
        (ScoreCAM, GradientFreeCAMMethod),
    ],
)
def test_builtin_cams_override_only_weigh(cls, base):
    assert issubclass(cls, base)
    overridden = {name for name, value in vars(cls).items() if callable(value) and not name.startswith("__")}
    assert overridden == {"weigh"}


def test_explanation_is_frozen_and_typed(two_models):
    small, _ = two_models
    exp = Explainer(small, "scorecam", max_channels=4, batch_size=8).explain(images_for(small, 2))
    assert exp.score_source == "logits"
    assert exp.options == {"max_channels": 4} and exp.batch_size == 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        exp.maps = np.zeros(1)  # type: ignore[misc]
    assert not hasattr(exp, "metadata")
