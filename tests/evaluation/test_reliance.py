"""Tumour reliance: control placement (properties) and the metric on models built to ignore or to use the tumour."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroxai.errors import DataError, ExplainError
from neuroxai.evaluation import (
    TumourReliance,
    TumourRelianceResult,
    control_regions,
    evaluate_explanations,
    head_foreground,
    tumour_reliance,
)
from neuroxai.evaluation.localization import _dilate
from numerics import difference_tol

# ---- control placement ----------------------------------------------------------------------------


@st.composite
def masks_and_heads(draw):
    n = draw(st.integers(1, 3))
    h = draw(st.integers(6, 14))
    w = draw(st.integers(6, 14))
    masks = np.zeros((n, h, w), bool)
    heads = np.zeros((n, h, w), bool)
    for i in range(n):
        y0 = draw(st.integers(0, h - 1))
        x0 = draw(st.integers(0, w - 1))
        masks[i, y0 : y0 + draw(st.integers(1, 5)), x0 : x0 + draw(st.integers(1, 5))] = True
        if draw(st.booleans()):  # an irregular shape
            masks[i, draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = True
        hy, hx = draw(st.integers(0, h // 2)), draw(st.integers(0, w // 2))
        heads[i, hy : h - draw(st.integers(0, h // 3)), hx : w - draw(st.integers(0, w // 3))] = True
    return masks, heads, draw(st.integers(0, 2)), draw(st.integers(0, 5))


def _offsets_that_fit(mask, forbidden, allowed=None):
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    out = []
    for dy in range(-h + 1, h):
        for dx in range(-w + 1, w):
            yy, xx = ys + dy, xs + dx
            if yy.min() < 0 or xx.min() < 0 or yy.max() >= h or xx.max() >= w:
                continue
            if forbidden[yy, xx].any() or (allowed is not None and not allowed[yy, xx].all()):
                continue
            out.append((dy, dx))
    return out


@settings(max_examples=60, deadline=None)
@given(masks_and_heads())
def test_control_region_is_the_moved_shape_outside_the_dilated_tumour(case):
    masks, heads, margin, seed = case
    c = control_regions(masks, heads, margin_px=margin, seed=seed)
    forbidden = _dilate(masks, margin)
    for i in range(len(masks)):
        fits_anywhere = _offsets_that_fit(masks[i], forbidden[i])
        fits_in_head = _offsets_that_fit(masks[i], forbidden[i], heads[i])
        assert bool(c.placed[i]) == bool(fits_anywhere)
        if not c.placed[i]:
            assert not c.masks[i].any()
            continue
        dy, dx = (int(v) for v in c.offsets[i])
        assert (dy, dx) in fits_anywhere
        # the same shape, moved: same area, inside the image, never touching the dilated tumour
        np.testing.assert_array_equal(np.argwhere(c.masks[i]), np.argwhere(masks[i]) + np.array([dy, dx]))
        assert not (c.masks[i] & forbidden[i]).any()
        # inside the head whenever the head allows it
        assert bool(c.inside_head[i]) == bool(fits_in_head)
        if c.inside_head[i]:
            assert (dy, dx) in fits_in_head and not (c.masks[i] & ~heads[i]).any()


def test_control_placement_is_seeded_and_independent_of_chunking():
    rng = np.random.default_rng(0)
    masks = np.zeros((7, 20, 20), bool)
    for i in range(7):
        y, x = rng.integers(0, 15, 2)
        masks[i, y : y + 4, x : x + 3] = True
    a = control_regions(masks, margin_px=1, seed=3, chunk=1)
    b = control_regions(masks, margin_px=1, seed=3, chunk=16)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    assert not np.array_equal(a.offsets, control_regions(masks, margin_px=1, seed=4).offsets)


def test_head_foreground_fills_holes_per_image():
    x = np.zeros((2, 7, 7, 1), np.float32)
    x[0, 1:6, 1:6] = 1.0
    x[0, 3, 3] = 0.0  # a hole inside the head
    fg = head_foreground(x)
    assert fg[0].sum() == 25 and fg[1].all()  # the constant second image is all foreground


# ---- models that ignore or use the tumour -------------------------------------------------------------


def _border_model(size: int):
    """Reads only the pixels outside the phantoms' brain ellipse (the shortcut corner markers), never the head."""
    import keras
    from xai_helpers import CLASS_NAMES

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2
    brain = ((yy - c) / (0.42 * size)) ** 2 + ((xx - c) / (0.36 * size)) ** 2 <= 1
    border = keras.ops.convert_to_tensor((~brain).astype(np.float32)[None, :, :, None])
    inp = keras.Input((size, size, 1))
    x = keras.layers.Lambda(lambda t: t * border)(inp)
    x = keras.layers.AveragePooling2D(pool_size=size // 2)(x)  # four quadrants: where the marker is
    x = keras.layers.Flatten()(x)  # TL, TR, BL, BR
    dense = keras.layers.Dense(len(CLASS_NAMES), activation="softmax")
    out = dense(x)
    # shortcut markers: glioma top-left, meningioma bottom-left, notumor top-right
    w = np.zeros((4, 3), np.float32)
    w[0, 0], w[2, 1], w[1, 2] = 400.0, 400.0, 400.0
    dense.set_weights([w, np.zeros(3, np.float32)])
    return keras.Model(inp, out)


def _texture_data(n: int = 8, size: int = 40, seed: int = 0):
    """A flat background with a square patch of random binary texture (the tumour) at a random place."""
    rng = np.random.default_rng(seed)
    x = np.full((n, size, size, 1), 0.3, np.float32)
    masks = np.zeros((n, size, size), bool)
    for i in range(n):
        s = int(rng.integers(6, 10))
        y0, x0 = rng.integers(2, size - s - 2, 2)
        x[i, y0 : y0 + s, x0 : x0 + s, 0] = rng.integers(0, 2, (s, s))
        masks[i, y0 : y0 + s, x0 : x0 + s] = True
    return x, np.ones(n, np.int64), masks


def _texture_model(size: int):
    """P(tumour) is high when the image has a strong Laplacian response (fine texture), which only the tumour has."""
    import keras

    inp = keras.Input((size, size, 1))
    lap = keras.layers.Conv2D(1, 3, padding="valid", use_bias=False)
    x = lap(inp)
    x = keras.layers.Lambda(lambda t: keras.ops.abs(t))(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    head = keras.layers.Dense(2, activation="softmax")
    out = head(x)
    lap.set_weights([np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)[:, :, None, None]])
    head.set_weights([np.array([[0.0, 10.0]], np.float32), np.array([0.0, -15.0], np.float32)])
    return keras.Model(inp, out)


def test_a_model_that_ignores_the_tumour_has_no_drop_and_no_large_ratio():
    from xai_helpers import CLASS_NAMES, make_phantoms

    x, y, masks = make_phantoms(6, seed=3, shortcut=True)
    model = _border_model(x.shape[1])
    assert (model.predict(x, verbose=0).argmax(1) == y).all()  # it classifies by the markers alone
    # a 1 px margin: the phantoms' large gliomas leave no room for a copy inside a 48 px head at the default 3 px
    r = tumour_reliance(model, x, masks, y, class_names=CLASS_NAMES, margin=5.0, batch_size=8)
    assert r.settings.margin_px == 1
    assert r.n_scored == 12 and r.n_excluded_no_mask == 6 and r.n_unplaced == 0
    assert all(r.control_inside_head)
    assert np.abs(r.tumour_drop).max() < 0.02 and np.abs(r.control_drop).max() < 1e-6
    assert r.ratio < 3.0


def test_a_model_that_looks_only_at_the_tumour_has_a_large_ratio():
    x, y, masks = _texture_data()
    model = _texture_model(x.shape[1])
    assert model.predict(x, verbose=0)[:, 1].min() > 0.99
    r = tumour_reliance(model, x, masks, y, class_names=["none", "tumour"], batch_size=6)
    assert r.n_scored == len(x)
    assert r.overall.tumour_drop > 0.9 and abs(r.overall.control_drop) < 0.05
    assert r.ratio > 10 and r.per_class["tumour"].ratio == r.ratio and r.per_class["none"].n == 0
    # per-image arrays, in input order of the scored images
    assert r.index == tuple(range(len(x))) and min(r.tumour_drop) > 0.5
    assert r.area_px == tuple(int(m.sum()) for m in masks)


def test_batching_and_given_probabilities_do_not_change_the_numbers():
    x, y, masks = _texture_data(n=5, seed=1)
    model = _texture_model(x.shape[1])
    a = tumour_reliance(model, x, masks, y, batch_size=3)
    b = tumour_reliance(model, x, masks, y, batch_size=64, probabilities=model.predict(x, verbose=0))
    # drops are differences of two probabilities (<= 1), from forward passes over batches of other sizes
    np.testing.assert_allclose(a.tumour_drop, b.tumour_drop, atol=difference_tol(1.0))
    np.testing.assert_allclose(a.control_drop, b.control_drop, atol=difference_tol(1.0))
    assert a.control_offset == b.control_offset


def test_result_round_trips_and_empty_masks_are_counted():
    x, y, masks = _texture_data(n=4, seed=2)
    masks[1] = False
    model = _texture_model(x.shape[1])
    r = tumour_reliance(model, x, masks, y, baseline="mean")
    assert r.n_scored == 3 and r.n_excluded_no_mask == 1 and 1 not in r.index
    assert TumourRelianceResult.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    none = tumour_reliance(model, x, np.zeros_like(masks), y)
    assert none.n_scored == 0 and none.overall.ratio is None


def test_inputs_and_settings_are_checked():
    x, y, masks = _texture_data(n=2)
    model = _texture_model(x.shape[1])
    with pytest.raises(DataError, match="one label per image"):
        tumour_reliance(model, x, masks, y[:1])
    with pytest.raises(DataError, match="baseline"):
        tumour_reliance(model, x, masks, y, baseline="noise")
    with pytest.raises(DataError, match="class indices"):
        tumour_reliance(model, x, masks, np.array([0, 5]))
    with pytest.raises(ExplainError, match="baseline"):
        TumourReliance(baseline="noise")
    assert TumourReliance().explainer_free and TumourReliance().requires == {"model", "masks", "labels"}


def test_reliance_in_evaluate_explanations_runs_once_without_an_explainer():
    x, y, masks = _texture_data(n=4, seed=3)
    model = _texture_model(x.shape[1])
    r = evaluate_explanations(model, x, masks, y, [], metrics=[TumourReliance(baseline="zero")], class_names=["none", "tumour"])
    assert r.reliance is not None and r.reliance.settings.baseline == "zero" and r.reliance.ratio > 10
    assert not r.localization and r.methods == ()
