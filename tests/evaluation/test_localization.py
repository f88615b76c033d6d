"""Localization metrics against hand-computed values and invariants."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from neuroxai.errors import DataError, ExplainError
from neuroxai.evaluation import (
    Localization,
    LocalizationResult,
    center_prior_map,
    dice,
    energy_pointing_game,
    iou,
    localization_report,
    localization_scores,
    pixel_average_precision,
    pointing_game,
    tolerance_pixels,
    uniform_map,
)


def _mask(h=6, w=6, box=(1, 3, 1, 3)):
    m = np.zeros((1, h, w), bool)
    y0, y1, x0, x1 = box
    m[0, y0:y1, x0:x1] = True
    return m


def test_tolerance_scales_from_224_pixels():
    assert tolerance_pixels((224, 224)) == 15
    assert tolerance_pixels((448, 300)) == 30
    assert tolerance_pixels((64, 64)) == 4
    assert tolerance_pixels((64, 64), tolerance=0) == 0


def test_pointing_game_hit_miss_and_tolerance():
    mask = _mask()  # rows 1-2, cols 1-2
    hit = np.zeros((1, 6, 6))
    hit[0, 2, 2] = 1
    near = np.zeros((1, 6, 6))
    near[0, 2, 3] = 1  # one pixel right of the mask
    far = np.zeros((1, 6, 6))
    far[0, 5, 5] = 1
    assert pointing_game(hit, mask, tolerance=0).tolist() == [1.0]
    assert pointing_game(near, mask, tolerance=0).tolist() == [0.0]
    # 224 px -> 15 px tolerance; at 6 px a tolerance of 40 (at 224) becomes round(40*6/224) = 1 px
    assert pointing_game(near, mask, tolerance=40).tolist() == [1.0]
    assert pointing_game(far, mask, tolerance=40).tolist() == [0.0]


def test_pointing_game_ties_count_the_share_inside():
    mask = _mask()
    m = np.zeros((1, 6, 6))
    m[0, 1, 1] = 1
    m[0, 5, 5] = 1  # two maxima, one inside
    assert pointing_game(m, mask, tolerance=0).tolist() == [0.5]
    # a constant map: the (undilated) mask's area fraction 4/36
    assert pointing_game(np.ones((1, 6, 6)), mask, tolerance=0)[0] == pytest.approx(4 / 36)


def test_energy_hand_computed():
    mask = _mask()
    m = np.zeros((1, 6, 6))
    m[0, 1, 1] = 3
    m[0, 0, 0] = 1
    m[0, 5, 5] = -7  # negatives are clipped
    assert energy_pointing_game(m, mask)[0] == pytest.approx(0.75)
    assert energy_pointing_game(np.zeros((1, 6, 6)), mask)[0] == pytest.approx(4 / 36)


def test_iou_and_dice_hand_computed():
    mask = _mask()  # 4 pixels
    m = np.zeros((1, 6, 6))
    m[0, 1:3, 1:4] = 1.0
    m[0, 4, 4] = 0.4  # 6 pixels >= 0.5, 4 of them inside
    assert iou(m, mask)[0] == pytest.approx(4 / 6)
    assert dice(m, mask)[0] == pytest.approx(2 * 4 / (6 + 4))
    # threshold 0.3 of the range also selects the 0.4 pixel: 7 pixels, 4 inside
    assert iou(m, mask, threshold=0.3)[0] == pytest.approx(4 / 7)
    # top_k: the 4 highest of 36 pixels -> 4 ties at 1.0 in the first row (cols 1..3) plus ties kept
    assert iou(m, mask, top_k=4 / 36)[0] == pytest.approx(4 / 6)


def test_pixel_ap_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    maps = rng.integers(0, 4, (12, 7, 9)).astype(float)  # many ties
    masks = rng.random((12, 7, 9)) < 0.3
    got = pixel_average_precision(maps, masks)
    want = [average_precision_score(masks[i].ravel(), maps[i].ravel()) for i in range(12)]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_pixel_ap_hand_computed_and_empty_mask():
    m = np.array([[[0.9, 0.8], [0.1, 0.0]]])
    k = np.array([[[True, False], [True, False]]])
    # ranked: T, F, T, F -> AP = 0.5*1 + 0.5*(2/3)
    assert pixel_average_precision(m, k)[0] == pytest.approx(0.5 + 1 / 3)
    assert np.isnan(pixel_average_precision(m, np.zeros_like(k))[0])


def test_uniform_reference_scores_area_fraction_everywhere():
    mask = _mask(8, 8, (2, 6, 2, 4))  # 8 of 64 pixels
    s = localization_scores(uniform_map((1, 8, 8)), mask, tolerance=0)
    for name in ("pointing_game", "energy", "iou", "pixel_ap"):
        assert s[name][0] == pytest.approx(8 / 64), name


def test_center_prior_peaks_in_the_middle():
    g = center_prior_map((2, 9, 9))
    assert g.shape == (2, 9, 9)
    assert g[0, 4, 4] == pytest.approx(1.0)
    assert g[0, 0, 0] < g[0, 2, 2] < g[0, 4, 4]


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(DataError, match="same shape"):
        iou(np.ones((2, 4, 4)), np.ones((2, 5, 5), bool))
    with pytest.raises(DataError, match=r"\[N, H, W\].*\[N, D, H, W\] for volumes"):
        pointing_game(np.ones((2, 3, 4, 4, 2)), np.ones((2, 4, 4), bool))
    with pytest.raises(DataError, match="same shape"):  # a map of volumes against masks of images
        pointing_game(np.ones((2, 3, 4, 4, 1)), np.ones((2, 4, 4), bool))


def test_report_per_class_excludes_empty_masks_and_is_json():
    masks = np.zeros((4, 16, 16), bool)
    masks[0, 2:6, 2:6] = True
    masks[1, 8:12, 8:12] = True
    maps = masks.astype(np.float32)
    maps[1] = 0
    maps[1, 0, 0] = 1  # class 1 image points outside
    r = localization_report(maps, masks, [0, 1, 2, 2], class_names=["a", "b", "c"], tolerance=0)
    assert isinstance(r, LocalizationResult)
    assert r.n_images == 4 and r.n_scored == 2 and r.n_excluded_no_mask == 2
    assert r.per_class["a"].method.pointing_game == 1.0
    assert r.per_class["b"].method.pointing_game == 0.0
    assert r.per_class["c"].n_scored == 0 and r.per_class["c"].n_excluded_no_mask == 2
    assert r.per_class["c"].method.iou is None
    assert r.overall.method.pointing_game == 0.5
    assert r.overall.uniform.energy == pytest.approx(16 / 256)
    assert r.overall.center_prior.value("energy") == r.overall.center_prior.energy
    # the record round-trips through JSON unchanged
    back = LocalizationResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    assert json.loads(json.dumps(r.to_dict()))["per_class"]["c"]["method"]["iou"] is None


def test_report_without_labels_has_one_group():
    masks = np.zeros((2, 8, 8), bool)
    masks[:, 2:4, 2:4] = True
    r = localization_report(masks.astype(float), masks)
    assert list(r.per_class) == ["all"] and r.per_class["all"].n_scored == 2


def test_localization_metric_holds_its_settings_and_checks_them():
    assert Localization(tolerance=0.0, top_k=0.1).settings() == {
        "tolerance": 0.0,
        "threshold": 0.5,
        "top_k": 0.1,
        "center_sigma": 0.25,
    }
    with pytest.raises(ExplainError, match="top_k"):
        Localization(top_k=2.0)
    assert Localization().requires == {"maps", "masks"} and not Localization().explainer_free


# ---- properties ---------------------------------------------------------------------------------


@st.composite
def _mask_and_map(draw):
    h = draw(st.integers(4, 12))
    w = draw(st.integers(4, 12))
    y0 = draw(st.integers(0, h - 2))
    y1 = draw(st.integers(y0 + 1, h))
    x0 = draw(st.integers(0, w - 2))
    x1 = draw(st.integers(x0 + 1, w))
    mask = np.zeros((1, h, w), bool)
    mask[0, y0:y1, x0:x1] = True
    seed = draw(st.integers(0, 2**16))
    noise = np.random.default_rng(seed).random((1, h, w))
    return mask, noise


@settings(max_examples=40, deadline=None)
@given(_mask_and_map(), st.floats(0.1, 5.0))
def test_map_equal_to_mask_scores_perfectly(data, scale):
    mask, _ = data
    s = localization_scores(scale * mask.astype(float), mask, tolerance=0)
    for name, v in s.items():
        assert v[0] == pytest.approx(1.0), name


@settings(max_examples=40, deadline=None)
@given(_mask_and_map())
def test_map_outside_mask_scores_zero(data):
    mask, noise = data
    if mask.all():
        return
    m = (noise + 0.1) * ~mask  # positive only outside the mask
    s = localization_scores(m, mask, tolerance=0)
    for name in ("pointing_game", "energy", "iou", "dice"):
        assert s[name][0] == 0.0, name
    # AP of a map that ranks every mask pixel last is exactly the precision at full recall
    assert s["pixel_ap"][0] == pytest.approx(mask.mean())


@settings(max_examples=40, deadline=None)
@given(_mask_and_map(), st.floats(1e-3, 1e3))
def test_scores_invariant_to_positive_scaling(data, scale):
    mask, noise = data
    a = localization_scores(noise, mask)
    b = localization_scores(noise * scale, mask)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-9, err_msg=name)


def test_localization_on_volumes():
    """Maps and masks of volumes [N, D, H, W] (a 3-D model's): voxels count as pixels, the tolerance is a ball."""
    masks = np.zeros((3, 8, 16, 16), bool)
    masks[0, 2:4, 4:8, 4:8] = True
    masks[1, 5:7, 10:14, 2:6] = True  # image 2 has no tumour
    perfect = masks.astype(np.float32)
    np.testing.assert_array_equal(iou(perfect[:2], masks[:2]), [1.0, 1.0])
    np.testing.assert_array_equal(dice(perfect[:2], masks[:2]), [1.0, 1.0])
    np.testing.assert_array_equal(energy_pointing_game(perfect[:2], masks[:2]), [1.0, 1.0])
    np.testing.assert_allclose(pixel_average_precision(perfect[:2], masks[:2]), [1.0, 1.0])
    near = np.zeros_like(perfect[:1])
    near[0, 4, 8, 8] = 1.0  # one voxel off the cube on each axis: outside it, sqrt(3) from it (within a ball of radius 2)
    assert pointing_game(near, masks[:1], tolerance=0)[0] == 0.0
    assert pointing_game(near, masks[:1], tolerance=2 * 224 / 16)[0] == 1.0
    ball = _dilate_ball_reference(masks[:1], 2)
    assert pointing_game(near, ball, tolerance=0)[0] == 1.0
    report = localization_report(perfect, masks, [0, 1, 1], class_names=["glioma", "notumor"])
    assert report.n_excluded_no_mask == 1 and report.overall.method.iou == 1.0
    assert report.overall.uniform.energy == pytest.approx(masks[:2].reshape(2, -1).mean(axis=1).mean())
    prior = center_prior_map((1, 7, 9, 9))
    assert prior.shape == (1, 7, 9, 9) and prior[0, 3, 4, 4] == 1.0 and prior[0, 0, 0, 0] < prior[0, 3, 4, 0]


def _dilate_ball_reference(masks, radius):
    """Each mask grown by every voxel within ``radius`` (a plain loop over offsets)."""
    out = masks.copy()
    for dz in range(-radius, radius + 1):
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                if dz * dz + dy * dy + dx * dx <= radius * radius:
                    out |= np.roll(masks, (dz, dy, dx), axis=(1, 2, 3))
    return out
