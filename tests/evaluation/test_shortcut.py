"""A model that learns a shortcut (a class-coded corner marker) is caught by the localization metrics."""

from __future__ import annotations

import pytest

from neuroxai.evaluation import localization_report

pytestmark = pytest.mark.slow


def _localize(shortcut: bool):
    from xai_helpers import gradcam_fn, make_phantoms, train_cnn

    x, y, _ = make_phantoms(40, seed=1, shortcut=shortcut)
    xt, yt, mt = make_phantoms(12, seed=2, shortcut=shortcut)
    model = train_cnn(x, y)
    acc = float((model.predict(xt, verbose=0).argmax(1) == yt).mean())
    return acc, localization_report(gradcam_fn(model, xt, yt), mt, yt)["overall"]


def test_shortcut_model_localizes_far_worse_than_clean_model():
    clean_acc, clean = _localize(False)
    short_acc, short = _localize(True)
    # both models classify the test set (with its marker) well: accuracy alone cannot tell them apart ...
    assert clean_acc >= 0.9 and short_acc >= 0.9
    # ... but the explanations of the shortcut model stop pointing at the tumour
    assert clean["method"]["pointing_game"] >= 0.9
    assert short["method"]["pointing_game"] <= clean["method"]["pointing_game"] - 0.5
    assert short["method"]["energy"] <= 0.5 * clean["method"]["energy"]
    # and fall below the centre prior, a map that never saw the image
    assert short["method"]["pointing_game"] < short["center_prior"]["pointing_game"]


def test_library_shortcut_phantoms_are_caught():
    """The data package's phantoms(shortcut=True): perfect accuracy, pointing game below chance."""
    data = pytest.importorskip("neuroxai.data")
    from xai_helpers import gradcam_fn, train_cnn

    try:
        ds = data.phantoms(n_per_class=30, image_size=64, seed=0, shortcut=True)
    except TypeError:  # pragma: no cover - an older data package without the shortcut option
        pytest.skip("neuroxai.data.phantoms has no shortcut option")
    x, y = ds.arrays("train", image_size=(64, 64), channels=1)
    xt, yt, mt = ds.arrays("test", image_size=(64, 64), channels=1, with_masks=True)
    model = train_cnn(x, y, epochs=8)
    acc = float((model.predict(xt, verbose=0).argmax(1) == yt).mean())
    r = localization_report(gradcam_fn(model, xt, yt), mt, yt)["overall"]
    assert acc >= 0.9
    assert r["method"]["pointing_game"] <= r["uniform"]["pointing_game"]
    assert r["method"]["energy"] <= 2 * r["uniform"]["energy"]
