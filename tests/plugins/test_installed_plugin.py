"""A real third-party plugin, installed with pip: loaded from its entry point, listed, and broken on purpose."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest

from neuroxai.errors import PluginError
from neuroxai.models import ModelRegistry
from neuroxai.plugins import get_plugin_manager

pytestmark = pytest.mark.slow

CLI = "import sys; from neuroxai.cli import main; sys.exit(main())"


def run_cli(args, site, *, autoload=True):
    env = {k: v for k, v in os.environ.items() if k != "NEUROXAI_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if not autoload:
        env["NEUROXAI_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, env=env, timeout=300)


def test_entry_point_metadata_is_real(tinyresnet_site, on_path):
    on_path(tinyresnet_site)
    [ep] = [ep for ep in entry_points(group="neuroxai") if ep.name == "tinyresnet"]
    assert ep.value == "neuroxai_tinyresnet.plugin"
    assert ep.dist.metadata["Name"] == "neuroxai-tinyresnet"


def test_registry_autoloads_the_installed_plugin(tinyresnet_site, on_path):
    on_path(tinyresnet_site)
    registry = ModelRegistry(autoload=True)
    assert registry.names() == ["cnn", "efficientnetb0", "tinyresnet"]
    spec = registry.get("tinyresnet")
    assert spec.source == "neuroxai-tinyresnet"
    assert spec.target_layer == "stage3_out"
    [plugin] = [p for p in registry.plugins() if p.models == ("tinyresnet",)]
    assert plugin.info.distribution == "neuroxai-tinyresnet" and plugin.info.version == "0.1.0"
    assert plugin.info.entry_point == "tinyresnet = neuroxai_tinyresnet.plugin" and plugin.info.builtin is False

    model = registry.create("tinyresnet", num_classes=3, input_shape=(32, 32, 1), base_filters=8)
    probs = np.asarray(model(np.zeros((2, 32, 32, 1), "float32")))
    assert probs.shape == (2, 3)
    assert {"logits", "probabilities", "stage3_out"} <= {layer.name for layer in model.layers}


def test_autoload_off_ignores_the_installed_plugin(tinyresnet_site, on_path, monkeypatch):
    on_path(tinyresnet_site)
    assert "tinyresnet" not in ModelRegistry(autoload=False)
    monkeypatch.setenv("NEUROXAI_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "tinyresnet" not in ModelRegistry()
    monkeypatch.setenv("NEUROXAI_DISABLE_PLUGIN_AUTOLOAD", "0")
    assert "tinyresnet" in ModelRegistry()


def test_cli_lists_the_installed_plugin_model(tinyresnet_site):
    result = run_cli(["models", "--format", "json"], tinyresnet_site)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"cnn", "efficientnetb0", "tinyresnet"}
    tiny = rows["tinyresnet"]
    assert tiny["source"] == "neuroxai-tinyresnet"
    assert tiny["input_shape"] == [96, 96, 1]
    assert isinstance(tiny["params"], int) and tiny["params"] > 0
    assert rows["cnn"]["source"] == "neuroxai" and rows["efficientnetb0"]["input_shape"] == [224, 224, 3]

    text = run_cli(["models", "--no-params"], tinyresnet_site)
    assert text.returncode == 0, text.stderr
    assert "tinyresnet" in text.stdout and "neuroxai-tinyresnet" in text.stdout

    off = run_cli(["models", "--format", "json", "--no-params"], tinyresnet_site, autoload=False)
    assert [row["name"] for row in json.loads(off.stdout)] == ["cnn", "efficientnetb0"]


def test_broken_plugin_names_entry_point_and_distribution(broken_site, on_path):
    on_path(broken_site)
    with pytest.raises(PluginError) as info:
        get_plugin_manager(autoload=True)
    message = str(info.value)
    assert "entry point 'broken = neuroxai_broken_plugin'" in message
    assert "distribution 'neuroxai-broken-plugin 0.3.1'" in message
    assert "ImportError: neuroxai_broken_plugin needs the package 'torchvision'" in message
    assert "pip uninstall neuroxai-broken-plugin" in message and "NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1" in message
    assert isinstance(info.value.__cause__, ImportError)
    with pytest.raises(PluginError, match="neuroxai-broken-plugin"):
        ModelRegistry(autoload=True)
    # autoload off still works
    assert ModelRegistry(autoload=False).names() == ["cnn", "efficientnetb0"]


def test_cli_reports_broken_plugin_cleanly(broken_site):
    result = run_cli(["models", "--no-params"], broken_site)
    assert result.returncode == 2
    assert "neuroxai models: error: Plugin entry point 'broken = neuroxai_broken_plugin'" in result.stderr
    assert "Traceback" not in result.stderr


def test_installed_plugin_adds_a_metric_that_runs_in_reports(tinyresnet_site, on_path):
    import keras

    from neuroxai.evaluation import MetricRegistry, evaluate_explanations

    on_path(tinyresnet_site)
    registry = MetricRegistry(autoload=True)
    assert "focus" in registry and registry.origin("focus").distribution == "neuroxai-tinyresnet"
    model = ModelRegistry(autoload=True).create("tinyresnet", num_classes=2, input_shape=(32, 32, 1), base_filters=4)
    assert isinstance(model, keras.Model)
    x = np.random.default_rng(0).random((3, 32, 32, 1)).astype("float32")
    report = evaluate_explanations(model, x, labels=[0, 1, 0], methods="gradcam", metrics=["focus"])
    result = report.plugin_results["focus"]["gradcam"]
    assert type(result).__name__ == "FocusResult" and result.n_images == 3 and 0.0 < result.mean <= 1.0
    assert "focus" in report.format()


def test_installed_plugin_adds_a_subcommand(tinyresnet_site):
    help_text = run_cli(["--help"], tinyresnet_site)
    assert help_text.returncode == 0 and "tinyresnet-info" in help_text.stdout
    result = run_cli(["tinyresnet-info", "--base-filters", "4"], tinyresnet_site)
    assert result.returncode == 0, result.stderr
    assert "tinyresnet with base_filters=4:" in result.stdout and "parameters" in result.stdout
    off = run_cli(["--help"], tinyresnet_site, autoload=False)
    assert "tinyresnet-info" not in off.stdout
