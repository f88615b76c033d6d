"""A model that learns a shortcut (a class-coded corner marker) is caught by localization and by tumour reliance."""

from __future__ import annotations

import pytest

from neuroxai.evaluation import localization_report, tumour_reliance

pytestmark = pytest.mark.slow


def _localize(shortcut: bool):
    from xai_helpers import gradcam_fn, make_phantoms, train_cnn

    x, y, _ = make_phantoms(40, seed=1, shortcut=shortcut)
    xt, yt, mt = make_phantoms(12, seed=2, shortcut=shortcut)
    model = train_cnn(x, y)
    acc = float((model.predict(xt, verbose=0).argmax(1) == yt).mean())
    return acc, localization_report(gradcam_fn(model, xt, yt), mt, yt).overall, tumour_reliance(model, xt, mt, yt)


def test_shortcut_model_localizes_far_worse_than_clean_model():
    clean_acc, clean, clean_reliance = _localize(False)
    short_acc, short, short_reliance = _localize(True)
    # both models classify the test set (with its marker) well: accuracy alone cannot tell them apart ...
    assert clean_acc >= 0.9 and short_acc >= 0.9
    # ... but the explanations of the shortcut model stop pointing at the tumour
    assert clean.method.pointing_game >= 0.9
    assert short.method.pointing_game <= clean.method.pointing_game - 0.5
    assert short.method.energy <= 0.5 * clean.method.energy
    # and fall below the centre prior, a map that never saw the image
    assert short.method.pointing_game < short.center_prior.pointing_game
    # tumour reliance asks the model, with no explainer: blurring the tumour costs the clean model far more
    # than blurring an equal area elsewhere; the shortcut model does not care where it is blurred
    assert clean_reliance.ratio > 5
    assert short_reliance.ratio < 2 and short_reliance.overall.tumour_drop < 0.05


def test_library_shortcut_phantoms_are_caught():
    """The data package's phantoms(shortcut=True): perfect accuracy, pointing game below chance."""
    from xai_helpers import gradcam_fn, train_cnn

    from neuroxai.data import phantoms

    ds = phantoms(n_per_class=30, image_size=64, seed=0, shortcut=True)
    x, y = ds.arrays("train", image_size=(64, 64), channels=1)
    xt, yt, mt = ds.arrays("test", image_size=(64, 64), channels=1, with_masks=True)
    model = train_cnn(x, y, epochs=8)
    acc = float((model.predict(xt, verbose=0).argmax(1) == yt).mean())
    r = localization_report(gradcam_fn(model, xt, yt), mt, yt).overall
    assert acc >= 0.9
    assert r.method.pointing_game <= r.uniform.pointing_game
    assert r.method.energy <= 2 * r.uniform.energy
