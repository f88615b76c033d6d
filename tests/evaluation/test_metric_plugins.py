"""Explanation metrics as plugins: the registry, a metric registered by a plugin object, and reading reports back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from neuroxai import hookimpl
from neuroxai._records import Record
from neuroxai.errors import ExplainError, PluginError, UnknownMetricError
from neuroxai.evaluation import (
    ExplanationMetric,
    Faithfulness,
    MetricInputs,
    MetricRegistry,
    RawResult,
    XAIReport,
    available_metrics,
    evaluate_explanations,
    resolve_metrics,
)
from neuroxai.plugins import get_plugin_manager


@dataclass(frozen=True)
class SparsityResult(Record):
    n_images: int
    mean: float
    per_image: tuple[float, ...]


@dataclass(frozen=True)
class Sparsity(ExplanationMetric):
    """Share of each map's pixels below ``cut`` (a tiny per-method metric)."""

    name: ClassVar[str] = "sparsity"
    requires: ClassVar[frozenset] = frozenset({"maps"})
    result_type: ClassVar[type[Record]] = SparsityResult

    cut: float = 0.5

    def compute(self, inputs: MetricInputs) -> SparsityResult:
        maps = inputs.require_maps()
        per = (maps < self.cut).reshape(len(maps), -1).mean(axis=1)
        return SparsityResult(len(maps), float(per.mean()), tuple(float(v) for v in per))


@dataclass(frozen=True)
class MeanConfidence(ExplanationMetric):
    """An explainer-free metric: the model's mean probability of the target class."""

    name: ClassVar[str] = "confidence"
    requires: ClassVar[frozenset] = frozenset({"model"})
    result_type: ClassVar[type[Record]] = SparsityResult

    def compute(self, inputs: MetricInputs) -> SparsityResult:
        p = inputs.probabilities[np.arange(len(inputs.targets)), inputs.targets]
        return SparsityResult(len(p), float(p.mean()), tuple(float(v) for v in p))


class SparsityPlugin:
    @hookimpl
    def neuroxai_register_metrics(self, registry):
        registry.register("sparsity", Sparsity)
        registry.register("confidence", MeanConfidence)


@pytest.fixture
def plugin():
    """The plugin registered with the process's plugin host for one test (as an installed plugin would be)."""
    pm = get_plugin_manager(autoload=False)
    obj = SparsityPlugin()
    pm.register(obj, name="sparsity-test-plugin")
    try:
        yield obj
    finally:
        pm.unregister(obj)


def test_builtin_metrics_are_registered_by_the_builtin_plugin():
    registry = MetricRegistry(autoload=False)
    assert registry.names() == ["faithfulness", "localization", "reliance", "sanity"]
    assert registry.origin("reliance").builtin
    assert available_metrics(autoload=False) == registry.names()
    with pytest.raises(UnknownMetricError, match="Did you mean 'localization'"):
        registry.get("localisation")
    assert isinstance(registry.create("faithfulness", steps=3), Faithfulness)


def test_registry_rejects_what_is_not_a_metric_class():
    registry = MetricRegistry(autoload=False)
    with pytest.raises(PluginError, match="subclass of neuroxai.evaluation.ExplanationMetric"):
        registry.register("bad", Sparsity())  # an instance, not the class
    with pytest.raises(PluginError, match="already registered"):
        registry.register("localization", Sparsity)


def test_a_plugin_object_adds_metrics_to_a_registry():
    registry = MetricRegistry(autoload=False, plugins=[SparsityPlugin()])
    assert "sparsity" in registry and "confidence" in registry
    assert not registry.origin("sparsity").builtin
    assert "sparsity" not in MetricRegistry(autoload=False)  # only for that registry


def test_plugin_metrics_appear_in_the_report(plugin, trained_cnn, phantom_data, tmp_path):
    from xai_helpers import gradcam_fn

    _, (x, y, m) = phantom_data
    assert "sparsity" in [mt.metric_name for mt in resolve_metrics(autoload=False)]  # default: every registered metric
    r = evaluate_explanations(trained_cnn, x[:6], m[:6], y[:6], gradcam_fn, metrics=["localization", "sparsity", "confidence"])
    assert not r.errors, r.errors
    got = r.plugin_results["sparsity"]["gradcam_fn"]
    assert isinstance(got, SparsityResult) and got.n_images == 6 and 0 < got.mean < 1
    assert r.result("sparsity", "gradcam_fn") is got
    assert isinstance(r.plugin_model_results["confidence"], SparsityResult)
    assert r.summary()["gradcam_fn"].other == {"sparsity.n_images": 6, "sparsity.mean": got.mean}
    assert "sparsity.mean" in r.format() and "confidence (model, no explainer)" in r.format()
    assert r.settings.metrics["sparsity"] == {"cut": 0.5}
    # written and read back as the plugin's own records while the plugin is installed
    r.save(tmp_path)
    back = XAIReport.from_dict(json.loads((tmp_path / "xai_metrics.json").read_text()))
    assert back.plugin_results["sparsity"]["gradcam_fn"] == got


def test_a_configured_instance_needs_no_registration(trained_cnn, phantom_data):
    from xai_helpers import gradcam_fn

    _, (x, y, _) = phantom_data
    r = evaluate_explanations(trained_cnn, x[:4], None, y[:4], gradcam_fn, metrics=[Sparsity(cut=0.1)])
    assert r.plugin_results["sparsity"]["gradcam_fn"].n_images == 4
    # read back where the plugin is not installed: the data survives as a RawResult, unchanged
    d = json.loads(json.dumps(r.to_dict()))
    back = XAIReport.from_dict(d)
    raw = back.plugin_results["sparsity"]["gradcam_fn"]
    assert isinstance(raw, RawResult) and raw.data["n_images"] == 4
    assert json.loads(json.dumps(back.to_dict())) == d


@dataclass(frozen=True)
class Failing(ExplanationMetric):
    name: ClassVar[str] = "failing"
    error: type[Exception] = ExplainError

    def compute(self, inputs: MetricInputs) -> Record:
        raise self.error("cannot measure this")


def test_a_metric_failing_on_purpose_is_recorded_a_bug_propagates(trained_cnn, phantom_data):
    from xai_helpers import gradcam_fn

    _, (x, y, _) = phantom_data
    r = evaluate_explanations(trained_cnn, x[:4], None, y[:4], gradcam_fn, metrics=["localization", Failing(), Sparsity()])
    assert [(e.method, e.metric) for e in r.errors] == [("gradcam_fn", "failing")]
    assert "ExplainError: cannot measure this" in r.errors[0].error
    assert "sparsity" in r.plugin_results  # the other metrics still ran
    # named explicitly without masks, localization is skipped with the reason
    assert "localization" in r.skipped and "masks" in r.skipped["localization"]
    with pytest.raises(ZeroDivisionError):
        evaluate_explanations(trained_cnn, x[:4], None, y[:4], gradcam_fn, metrics=[Failing(error=ZeroDivisionError)])
