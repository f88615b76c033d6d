"""evaluate_explanations: the whole report on a small trained CNN."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuroxai.errors import DataError
from neuroxai.evaluation import XAIReport, evaluate_explanations


@pytest.fixture(scope="module")
def report(trained_cnn, phantom_data):
    from xai_helpers import CLASS_NAMES, gradcam_fn, sobel_fn

    def broken(model, images, targets):
        raise RuntimeError("this explainer is broken")

    _, (x, y, m) = phantom_data
    return evaluate_explanations(
        trained_cnn,
        x,
        m,
        y,
        {"gradcam": gradcam_fn, "edges": sobel_fn, "broken": broken},
        class_names=CLASS_NAMES,
        steps=8,
        n_sanity=12,
        seed=0,
    )


def test_report_numbers_tell_a_good_method_from_a_broken_one(report):
    assert isinstance(report, XAIReport)
    s = report.summary()
    assert report.methods == ["gradcam", "edges", "broken"]
    assert s["gradcam"]["sanity_passed"] is True
    assert s["edges"]["sanity_passed"] is False
    assert s["gradcam"]["pointing_game"] >= 0.9
    assert s["gradcam"]["pointing_game"] > s["gradcam"]["pointing_game_center_prior"]
    assert s["gradcam"]["energy"] > 2 * s["gradcam"]["energy_center_prior"]
    assert s["gradcam"]["pointing_game_uniform"] < 0.2
    assert s["gradcam"]["n_excluded_no_mask"] == 12  # the notumor images
    assert "RuntimeError: this explainer is broken" in report.errors["broken"]
    assert "broken" not in report.localization


def test_report_per_class_and_json(report):
    d = report.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["methods"] == ["gradcam", "edges", "broken"]
    per_class = d["localization"]["gradcam"]["per_class"]
    assert per_class["notumor"]["n_scored"] == 0 and per_class["notumor"]["n_excluded_no_mask"] == 12
    assert per_class["glioma"]["n_scored"] == 12
    assert set(per_class["glioma"]) >= {"method", "uniform", "center_prior"}
    assert d["settings"]["accuracy"] >= 0.9
    assert "gradcam:" in report.format() and "FAIL" in report.format()


def test_report_saves_json_and_figures(report, tmp_path):
    paths = report.save(tmp_path)
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [
            "xai_metrics.json",
            "xai_localization.png",
            "xai_localization_energy.png",
            "xai_deletion_insertion.png",
            "xai_randomization.png",
        ]
    )
    for p in paths:
        assert p.stat().st_size > 0
    assert json.loads((tmp_path / "xai_metrics.json").read_text())["summary"]["gradcam"]["sanity_passed"] is True
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_named_method_uses_the_explainer(trained_cnn, phantom_data):
    pytest.importorskip("neuroxai.explain")
    from xai_helpers import gradcam_fn

    _, (x, y, m) = phantom_data
    r = evaluate_explanations(trained_cnn, x[:8], m[:8], y[:8], ["gradcam"], faithfulness=False, sanity=False)
    assert not r.errors, r.errors
    ours = evaluate_explanations(trained_cnn, x[:8], m[:8], y[:8], gradcam_fn, faithfulness=False, sanity=False)
    a = r.localization["gradcam"]["overall"]["method"]
    b = ours.localization["gradcam_fn"]["overall"]["method"]
    assert a == pytest.approx(b, abs=0.05)


def test_inputs_are_checked(trained_cnn, phantom_data):
    _, (x, y, m) = phantom_data
    with pytest.raises(DataError, match="labels"):
        evaluate_explanations(trained_cnn, x, m, None, "gradcam")
    with pytest.raises(DataError, match="one label per image"):
        evaluate_explanations(trained_cnn, x, m, y[:3], "gradcam")


def test_named_explain_fn_sees_weights_randomized_in_place(trained_cnn, phantom_data):
    pytest.importorskip("neuroxai.explain")
    from xai_helpers import gradcam_fn

    from neuroxai.evaluation.report import named_explain_fn
    from neuroxai.evaluation.sanity import _clone, _randomize, randomizable_layers

    _, (x, y, _) = phantom_data
    clone = _clone(trained_cnn)
    fn = named_explain_fn("gradcam", target_layer="last_conv")
    before = fn(clone, x[:6], y[:6])  # builds and keeps an explainer for the clone
    for layer in randomizable_layers(clone)[:2]:
        _randomize(layer, np.random.default_rng(0))
    after = fn(clone, x[:6], y[:6])
    assert np.abs(after - before).max() > 0.1
    np.testing.assert_allclose(after, gradcam_fn(clone, x[:6], y[:6]), atol=1e-4)
