"""3-D networks (issue 29, item 2): Grad-CAM family, pixel methods and occlusion on ``Conv3D`` models.

A small Conv3D classifier of 16^3 one-channel volumes (``token_models.cnn3d``). Grad-CAM equals a plain
``GradientTape`` reference whose map is upsampled with trilinear interpolation written out in numpy (half-pixel
centres, edges clamped: what ``tf.image.resize`` does in 2-D); occlusion equals a dense loop over its cubes; every
method gives float32 maps in [0, 1] at the input's full resolution; a batch is one compiled call, its maps
independent of ``batch_size``; volumes are drawn at their peak slice.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from token_models import VOLUME, cnn3d, volumes
from zoo_models import FAST, check_maps, fingerprint

from neuroxai.errors import ExplainError
from neuroxai.explain import Explainer, MethodRegistry
from numerics import cam_tol, difference_tol, normalised_tol

_REGISTRY = MethodRegistry(autoload=False)
METHODS = [m for m in _REGISTRY.names() if m != "gradcampp" and not _REGISTRY.get(m).needs_attention]


@pytest.fixture(scope="module")
def model():
    return cnn3d()


def _linear(arr, size, axis):
    """Linear interpolation of ``arr`` along ``axis`` to ``size`` samples: half-pixel centres, edges clamped."""
    n = arr.shape[axis]
    pos = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo).reshape([size if a == axis else 1 for a in range(arr.ndim)])
    return np.take(arr, lo, axis=axis) * (1 - w) + np.take(arr, hi, axis=axis) * w


def _normalize(raw, size):
    """ReLU, trilinear upsampling to ``size``, divided by the peak (zero stays zero): neuroxai's documented map."""
    up = np.maximum(raw, 0.0)
    for axis, side in enumerate(size, start=1):
        up = _linear(up, side, axis)
    peak = up.reshape(len(up), -1).max(axis=1).reshape(-1, 1, 1, 1)
    return np.where(peak > 1e-12, up / np.where(peak > 1e-12, peak, 1.0), 0.0)


def test_gradcam_on_a_conv3d_model_matches_a_gradient_tape_reference(model):
    x = volumes(3, seed=1)
    before = fingerprint(model)
    explainer = Explainer(model, "gradcam")
    exp = explainer.explain(x)
    assert exp.layer == "conv2" and explainer.layout.kind == "spatial" and explainer.layout.grid == (8, 8, 8)
    assert exp.maps.shape == (3, VOLUME, VOLUME, VOLUME) and exp.is_volume
    probe = keras.Model(model.inputs, [model.get_layer("conv2").output, model.get_layer("logits").output])
    with tf.GradientTape() as tape:
        feats, logits = probe(tf.constant(x), training=False)
        picked = tf.gather(logits, exp.targets, axis=1, batch_dims=1)
    grads = tape.gradient(picked, feats).numpy()
    terms = grads.mean(axis=(1, 2, 3), keepdims=True) * feats.numpy()
    reference = _normalize(terms.sum(axis=-1), (VOLUME,) * 3)
    assert reference.max() == pytest.approx(1.0)
    # measured 1.5e-6 by default, under ONEDNN_MAX_CPU_ISA=AVX2 and under TF_ENABLE_ONEDNN_OPTS=0 alike
    np.testing.assert_allclose(exp.maps, reference, atol=cam_tol(terms))
    np.testing.assert_allclose(exp.probabilities, np.asarray(model(x, training=False)), atol=1e-6)
    assert fingerprint(model) == before


@pytest.mark.parametrize("method", METHODS)
def test_every_method_on_a_conv3d_model(model, method):
    x = volumes(2, seed=2)
    options = {"patch_size": 8, "stride": 8} if method == "occlusion" else FAST.get(method, {})
    explainer = Explainer(model, method, batch_size=16, **options)
    exp = explainer.explain(x)
    assert exp.maps.shape == (2, VOLUME, VOLUME, VOLUME)
    check_maps(exp, x, explainer)
    assert exp.layer == ("conv2" if _REGISTRY.get(method).uses_layer else None)


def test_occlusion_of_volumes_matches_a_dense_loop(model):
    x = volumes(2, seed=3)
    patch, stride = 8, 4
    exp = Explainer(model, "occlusion", patch_size=patch, stride=stride, fill=0.5, batch_size=64).explain(x, targets=1)
    starts = [0, 4, 8]
    clean = np.asarray(model(x, training=False))[:, 1]
    raw = np.zeros((2, VOLUME, VOLUME, VOLUME))
    counts = np.zeros((VOLUME, VOLUME, VOLUME))
    for z in starts:
        for y in starts:
            for c in starts:
                m = np.zeros((VOLUME, VOLUME, VOLUME))
                m[z : z + patch, y : y + patch, c : c + patch] = 1.0
                covered = x * (1 - m[None, ..., None]) + 0.5 * m[None, ..., None]
                raw += (clean - np.asarray(model(covered, training=False))[:, 1])[:, None, None, None] * m
                counts += m
    mean_drop = raw / np.maximum(counts, 1.0)
    reference = _normalize(mean_drop, (VOLUME,) * 3)
    # differences of two forward passes' probabilities divided by the map's peak (measured 5e-8 by default, 8e-6 under
    # ONEDNN_MAX_CPU_ISA=AVX2, 2.6e-5 under TF_ENABLE_ONEDNN_OPTS=0)
    peaks = mean_drop.reshape(len(mean_drop), -1).max(axis=1)
    np.testing.assert_allclose(exp.maps, reference, atol=normalised_tol(difference_tol(1.0), peaks))


def test_a_batch_of_volumes_is_one_compiled_call_whatever_its_size(model):
    x = volumes(5, seed=4)
    explainer = Explainer(model, "gradcam", batch_size=5)
    whole = explainer.explain(x)
    explainer.explain(x[:2])
    assert explainer.cache.tracing_count() == 1  # one trace for every batch size (TensorFlow: a fixed signature)
    split = Explainer(model, "gradcam", batch_size=2).explain(x)
    np.testing.assert_allclose(split.maps, whole.maps, atol=1e-6)


def test_volume_shapes_accepted_and_refused(model):
    explainer = Explainer(model, "saliency")
    x = volumes(2, seed=5)
    assert explainer.explain(x[..., 0]).maps.shape == (2, VOLUME, VOLUME, VOLUME)  # [N, D, H, W] for one channel
    assert explainer.explain(x[0]).maps.shape == (1, VOLUME, VOLUME, VOLUME)  # one volume [D, H, W, C]
    with pytest.raises(ExplainError, match=r"Image depth 12 does not match the model input \(16, 16, 16, 1\)"):
        explainer.explain(np.zeros((1, 12, VOLUME, VOLUME, 1), np.float32))
    with pytest.raises(ExplainError, match=r"Expected volumes \[N, D, H, W, C\]"):
        explainer.explain(np.zeros((1, 2, 3, VOLUME, VOLUME, 1), np.float32))


def test_explanations_of_volumes_draw_their_peak_slice(model):
    x = volumes(3, seed=6)
    exp = Explainer(model, "gradcam").explain(x)
    z = exp.peak_slice(0)
    assert z == int(np.argmax(exp.maps[0].sum(axis=(1, 2))))
    np.testing.assert_array_equal(exp.overlay(0), exp.overlay(0, depth=z))
    assert exp.overlay(0, depth=0).shape == (VOLUME, VOLUME, 3)
    with pytest.raises(ExplainError, match="Slice 16 out of range"):
        exp.overlay(0, depth=VOLUME)
    picture = exp.picture(1)
    assert picture.ndim == 3 and picture.shape[-1] == 3
    assert f"slice {exp.peak_slice(1)} of {VOLUME}" in exp._panel_title(1, None, exp.peak_slice(1))
