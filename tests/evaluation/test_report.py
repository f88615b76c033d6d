"""evaluate_explanations: the whole typed report on a small trained CNN."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuroxai.errors import DataError, ExplainError, UnknownMetricError
from neuroxai.evaluation import (
    Faithfulness,
    FaithfulnessResult,
    LocalizationResult,
    MethodSummary,
    MetricFailure,
    Sanity,
    SanityResult,
    TumourRelianceResult,
    XAIReport,
    evaluate_explanations,
)
from numerics import GRADIENT_MAP_TOL


def _broken(model, images, targets):
    raise ExplainError("this explainer is broken")


@pytest.fixture(scope="module")
def report(trained_cnn, phantom_data):
    from xai_helpers import CLASS_NAMES, gradcam_fn, sobel_fn

    _, (x, y, m) = phantom_data
    return evaluate_explanations(
        trained_cnn,
        x,
        m,
        y,
        {"gradcam": gradcam_fn, "edges": sobel_fn, "broken": _broken},
        metrics=["localization", Faithfulness(steps=8), Sanity(n_images=12), "reliance"],
        class_names=CLASS_NAMES,
        seed=0,
    )


def test_report_numbers_tell_a_good_method_from_a_broken_one(report):
    assert isinstance(report, XAIReport)
    s = report.summary()
    assert report.methods == ("gradcam", "edges", "broken")
    assert all(isinstance(row, MethodSummary) for row in s.values())
    assert s["gradcam"].sanity_passed is True
    assert s["edges"].sanity_passed is False
    assert s["gradcam"].pointing_game >= 0.9
    assert s["gradcam"].pointing_game > s["gradcam"].pointing_game_center_prior
    assert s["gradcam"].energy > 2 * s["gradcam"].energy_center_prior
    assert s["gradcam"].pointing_game_uniform < 0.2
    assert s["gradcam"].n_excluded_no_mask == 12  # the notumor images
    assert s["gradcam"].deletion_auc < s["gradcam"].deletion_auc_random
    assert s["broken"].pointing_game is None and s["broken"].sanity_passed is None
    assert report.errors == (MetricFailure(method="broken", metric=None, error="ExplainError: this explainer is broken"),)
    assert "broken" not in report.localization


def test_report_holds_typed_results(report):
    assert isinstance(report.localization["gradcam"], LocalizationResult)
    assert isinstance(report.faithfulness["edges"], FaithfulnessResult)
    assert isinstance(report.sanity["gradcam"], SanityResult)
    assert isinstance(report.reliance, TumourRelianceResult)
    assert report.faithfulness["gradcam"].steps == 8 and report.sanity["gradcam"].n_images == 12
    assert report.result("sanity", "gradcam") is report.sanity["gradcam"]
    assert report.result("reliance") is report.reliance
    assert report.settings.metrics["faithfulness"]["steps"] == 8
    assert report.settings.accuracy >= 0.9 and report.settings.n_images == 36
    # the model's evidence is the tumour: replacing it costs far more than replacing an equal area elsewhere
    assert report.reliance.n_scored + report.reliance.n_unplaced == 24
    assert report.reliance.overall.tumour_drop > report.reliance.overall.control_drop


def test_report_shows_itself_in_a_notebook(report):
    import base64
    import re

    from neuroxai.evaluation import REPR_MAX_FIGURES

    page = report._repr_html_()
    assert page.startswith("<div class='neuroxai-xai-report'>") and page.endswith("</div>")
    assert "<code>gradcam</code>" in page and "<code>edges</code>" in page and "<b>FAIL</b>" in page  # edges fails sanity
    assert "error: broken: ExplainError: this explainer is broken" in page
    assert "tumour reliance (model, no explainer): ratio" in page
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert 1 <= len(images) <= REPR_MAX_FIGURES
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert len(page) < 2_000_000  # small enough for a notebook cell


def test_report_round_trips_through_json(report):
    d = report.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = XAIReport.from_dict(json.loads(text))
    assert json.dumps(back.to_dict(), allow_nan=False) == text
    assert back.summary() == report.summary()
    assert back.reliance == report.reliance and back.errors == report.errors
    assert isinstance(back.localization["gradcam"].per_class["glioma"].method.pointing_game, float)


def test_report_per_class_and_json(report):
    d = json.loads(json.dumps(report.to_dict()))
    assert d["methods"] == ["gradcam", "edges", "broken"]
    per_class = d["localization"]["gradcam"]["per_class"]
    assert per_class["notumor"]["n_scored"] == 0 and per_class["notumor"]["n_excluded_no_mask"] == 12
    assert per_class["glioma"]["n_scored"] == 12
    assert set(per_class["glioma"]) >= {"method", "uniform", "center_prior"}
    assert d["summary"]["gradcam"]["sanity_passed"] is True
    text = report.format()
    assert "gradcam:" in text and "FAIL" in text and "tumour reliance" in text and "broken: ExplainError" in text


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
            "xai_reliance.png",
        ]
    )
    for p in paths:
        assert p.stat().st_size > 0
    assert json.loads((tmp_path / "xai_metrics.json").read_text())["summary"]["gradcam"]["sanity_passed"] is True
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_a_bug_in_a_method_propagates(trained_cnn, phantom_data):
    def buggy(model, images, targets):
        raise RuntimeError("a bug, not an evaluation failure")

    _, (x, y, m) = phantom_data
    with pytest.raises(RuntimeError, match="a bug"):
        evaluate_explanations(trained_cnn, x[:4], m[:4], y[:4], buggy, metrics=["localization"])


def test_wrong_map_shape_is_recorded_and_others_go_on(trained_cnn, phantom_data):
    from xai_helpers import gradcam_fn

    _, (x, y, m) = phantom_data
    r = evaluate_explanations(
        trained_cnn,
        x[:6],
        m[:6],
        y[:6],
        {"bad": lambda model, i, t: np.zeros((6, 3, 3)), "ok": gradcam_fn},
        metrics=["localization"],
    )
    assert [(e.method, e.metric) for e in r.errors] == [("bad", None)] and "shape" in r.errors[0].error
    assert list(r.localization) == ["ok"]


def test_default_metrics_are_those_that_apply(trained_cnn, phantom_data):
    from xai_helpers import gradcam_fn

    _, (x, y, _) = phantom_data
    r = evaluate_explanations(trained_cnn, x[:6], None, y[:6], gradcam_fn, metrics=None)
    assert not r.localization and r.reliance is None
    assert set(r.skipped) == {"localization", "reliance"} and "masks" in r.skipped["localization"]
    assert list(r.faithfulness) == ["gradcam_fn"] and list(r.sanity) == ["gradcam_fn"]


def test_predicts_once_and_explains_once(trained_cnn, phantom_data, monkeypatch):
    """The model predicts the images once (shared probabilities) and the sanity check reuses the maps."""
    from xai_helpers import gradcam_fn

    _, (x, y, m) = phantom_data
    predicts = []
    original_predict = type(trained_cnn).predict

    def counting_predict(self, *args, **kwargs):
        predicts.append(len(args[0]))
        return original_predict(self, *args, **kwargs)

    explained = []

    def counting(model, images, targets):
        explained.append(model is trained_cnn)
        return gradcam_fn(model, images, targets)

    monkeypatch.setattr(type(trained_cnn), "predict", counting_predict)
    r = evaluate_explanations(
        trained_cnn, x[:8], m[:8], y[:8], counting, metrics=[Sanity(n_images=4, max_layers=1), "reliance", "localization"]
    )
    assert not r.errors, r.errors
    assert predicts == [8]
    assert explained == [True, False]  # once on the model, once on the randomized clone


def test_explainer_free_metrics_alone(trained_cnn, phantom_data):
    _, (x, y, m) = phantom_data
    r = evaluate_explanations(trained_cnn, x, m, y, [], metrics=["reliance"])
    assert r.methods == () and r.reliance is not None and not r.summary()
    with pytest.raises(ExplainError, match="Nothing to evaluate"):
        evaluate_explanations(trained_cnn, x, m, y, [], metrics=["localization"])


def test_named_method_uses_the_explainer(trained_cnn, phantom_data):
    from xai_helpers import gradcam_fn

    _, (x, y, m) = phantom_data
    r = evaluate_explanations(trained_cnn, x[:8], m[:8], y[:8], ["gradcam"], metrics=["localization"])
    assert not r.errors, r.errors
    ours = evaluate_explanations(trained_cnn, x[:8], m[:8], y[:8], gradcam_fn, metrics=["localization"])
    a = r.localization["gradcam"].overall.method
    b = ours.localization["gradcam_fn"].overall.method
    # the two Grad-CAMs agree to rounding (test_explainer.py), so the continuous metrics (energy, pixel AP) do to
    # about that; a thresholded one (pointing game, IoU and Dice at 0.5) moves only where a pixel sits within
    # rounding of the threshold: means over 8 images may move by a few pixels' worth, never by a flipped image (1/8)
    assert a.to_dict() == pytest.approx(b.to_dict(), abs=0.05)


def test_predicted_targets_come_from_the_first_explanation(trained_cnn, phantom_data):
    _, (x, _, m) = phantom_data
    r = evaluate_explanations(trained_cnn, x[:8], m[:8], None, ["gradcam"], metrics=["localization"], targets="predicted")
    assert not r.errors and r.settings.targets == "predicted" and r.settings.accuracy is None
    assert list(r.localization["gradcam"].per_class) == ["all"]


def test_inputs_are_checked(trained_cnn, phantom_data):
    _, (x, y, m) = phantom_data
    with pytest.raises(DataError, match="labels"):
        evaluate_explanations(trained_cnn, x, m, None, "gradcam")
    with pytest.raises(DataError, match="one label per image"):
        evaluate_explanations(trained_cnn, x, m, y[:3], "gradcam")
    with pytest.raises(UnknownMetricError, match="Did you mean 'faithfulness'"):
        evaluate_explanations(trained_cnn, x, m, y, "gradcam", metrics=["faithfulnes"])
    with pytest.raises(ExplainError, match="given twice"):
        evaluate_explanations(trained_cnn, x, m, y, "gradcam", metrics=[Faithfulness(steps=4), "faithfulness"])


def test_named_explain_fn_sees_weights_randomized_in_place(trained_cnn, phantom_data):
    from xai_helpers import gradcam_fn

    from neuroxai.evaluation import named_explain_fn
    from neuroxai.evaluation.sanity import _clone, _randomize, randomizable_layers

    _, (x, y, _) = phantom_data
    clone = _clone(trained_cnn)
    fn = named_explain_fn("gradcam", target_layer="last_conv")
    before = fn(clone, x[:6], y[:6])  # builds and keeps an explainer for the clone
    for layer in randomizable_layers(clone)[:2]:
        _randomize(layer, np.random.default_rng(0))
    after = fn(clone, x[:6], y[:6])
    assert np.abs(after - before).max() > 0.1
    np.testing.assert_allclose(after, gradcam_fn(clone, x[:6], y[:6]), atol=GRADIENT_MAP_TOL)  # another graph
