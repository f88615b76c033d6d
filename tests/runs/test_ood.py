"""The out-of-distribution score: fitting, the threshold's promise, storage, and use through a saved run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroxai.errors import DataError, ModelError
from neuroxai.runs import OODDetector, fit_ood_detector


def _clusters(n_per_class: int, dim: int = 12, classes: int = 3, seed: int = 0, draw: int = 0):
    """Gaussian features around ``classes`` well separated means, with correlated noise (as real features have).

    ``seed`` fixes the distribution (means, correlation), ``draw`` the samples.
    """
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 4, (classes, dim))
    mix = rng.normal(0, 1, (dim, dim)) / np.sqrt(dim)
    y = np.repeat(np.arange(classes), n_per_class)
    f = means[y] + np.random.default_rng([seed, draw]).normal(0, 1, (len(y), dim)) @ mix
    return f, y, means, mix


def test_threshold_leaves_the_asked_share_of_validation_images_above_it():
    f, y, means, mix = _clusters(400)
    v, _, _, _ = _clusters(300, draw=1)  # same distribution, other draws
    det = fit_ood_detector(f, y, v, classes=3, flag_rate=0.02)
    assert det.method == "mahalanobis" and (det.dim, det.classes, det.n_fit, det.n_threshold) == (12, 3, 1200, 900)
    scores = det.scores(v)
    assert np.mean(scores > det.threshold) <= 0.02 and det.flagged == pytest.approx(np.mean(scores > det.threshold))
    assert 0.0 <= det.shrinkage <= 1.0
    # in distribution the score is about the chi-square mean over the dimension (1); far points score far more
    assert 0.5 < float(np.median(scores)) < 1.5
    far = means[0] + 12 * np.linalg.svd(mix)[2][-1]  # along the direction the classes hardly vary in
    assert det.scores(far[None])[0] > 10 * det.threshold and det.flags(det.scores(far[None]))[0]
    fitted = np.stack([f[y == k].mean(axis=0) for k in range(3)])
    # a fitted class mean is as typical as it gets: 0, up to the float32 rounding of the stored means (~1e-7 of
    # values of ~10, squared and weighted by the precision: far below 1e-6)
    np.testing.assert_allclose(det.scores(fitted), 0.0, atol=1e-6)


def test_the_detector_survives_json_bit_for_bit():
    f, y, _, _ = _clusters(100, dim=6)
    det = fit_ood_detector(f, y, f[:50], classes=3)
    again = OODDetector.from_dict(json.loads(json.dumps(det.to_dict())))
    assert again == det
    np.testing.assert_array_equal(again.scores(f), det.scores(f))  # same float32 statistics, same scores
    assert "threshold=" in repr(det) and det.means not in repr(det)  # the arrays stay out of the repr


def test_a_class_without_training_images_never_attracts_an_image():
    f, y, _, _ = _clusters(50, dim=5, classes=2)
    det = fit_ood_detector(f, y, f, classes=3)  # class 2 (e.g. notumor) absent from the training features
    assert det.classes == 3 and np.all(det.scores(f) < 1e3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"flag_rate": 0.0}, "flag_rate"),
        ({"flag_rate": 0.6}, "flag_rate"),
        ({"val": np.zeros((0, 4))}, "No validation image"),
        ({"labels": np.zeros(10, int)}, "two or more classes"),
        ({"train": np.full((10, 4), np.nan)}, "not finite"),
        ({"val": np.zeros((3, 5))}, "Expected features"),
    ],
)
def test_bad_fits_say_what_is_wrong(kwargs, match):
    rng = np.random.default_rng(0)
    train = kwargs.get("train", rng.normal(size=(10, 4)))
    labels = kwargs.get("labels", np.arange(10) % 2)
    val = kwargs.get("val", rng.normal(size=(4, 4)))
    with pytest.raises(DataError, match=match):
        fit_ood_detector(train, labels, val, classes=2, flag_rate=kwargs.get("flag_rate", 0.02))


def test_scores_refuse_features_of_another_size():
    f, y, _, _ = _clusters(20, dim=4)
    det = fit_ood_detector(f, y, f, classes=3)
    with pytest.raises(ModelError, match=r"\[N, 4\]"):
        det.scores(np.zeros((2, 5)))


@settings(max_examples=30, deadline=None)
@given(shift=st.floats(0.0, 50.0), seed=st.integers(0, 1000))
def test_moving_an_image_away_from_every_class_never_lowers_its_score_below_the_nearest(shift, seed):
    f, y, means, _ = _clusters(60, dim=4, seed=seed % 7)
    det = fit_ood_detector(f, y, f, classes=3)
    centre = means.mean(axis=0)
    direction = np.random.default_rng(seed).normal(size=4)
    direction /= np.linalg.norm(direction)
    base = det.scores(centre[None])[0]
    # far enough out, every class mean is behind: the score grows with the distance
    near, farther = det.scores(np.stack([centre + (40 + shift) * direction, centre + (80 + 2 * shift) * direction]))
    assert farther >= near >= 0 and farther > base
