"""The plugin host: one per process, built-ins first, hooks called through pluggy, errors that name the plugin."""

from __future__ import annotations

import pluggy
import pytest

import neuroxai
from neuroxai.errors import ModelError, PluginError
from neuroxai.models import ModelRegistry, ModelSpec
from neuroxai.plugins import PROJECT, PluginManager, autoload_enabled, current_plugin, get_plugin_manager, hookimpl, hookspecs


def test_markers_and_project_name():
    assert PROJECT == "neuroxai"
    assert neuroxai.hookimpl is hookimpl
    assert isinstance(hookimpl, pluggy.HookimplMarker) and hookimpl.project_name == "neuroxai"


def test_one_host_per_process_and_each_registry_adds_its_builtin():
    pm = get_plugin_manager(autoload=False)
    assert isinstance(pm, PluginManager) and isinstance(pm, pluggy.PluginManager)
    assert get_plugin_manager(autoload=False) is pm
    ModelRegistry(autoload=False)
    from neuroxai.explain import MethodRegistry

    MethodRegistry(autoload=False)
    infos = {info.name: info for _, info in pm.registered()}
    assert {"neuroxai.models.builtin", "neuroxai.explain._plugin"} <= set(infos)
    assert all(info.builtin for info in infos.values())
    for hook in (
        "neuroxai_register_models",
        "neuroxai_register_explainers",
        "neuroxai_register_metrics",
        "neuroxai_register_commands",
    ):
        assert getattr(pm.hook, hook).has_spec(), hook
        assert "registry" in getattr(hookspecs, hook).__doc__


def test_plugins_do_not_import_layers_above_them():
    # the host knows no built-in by name: the explanation registry must not need the model registry's plugin
    import subprocess
    import sys

    code = (
        "import sys; from neuroxai.explain import MethodRegistry; MethodRegistry(autoload=False); "
        "print('neuroxai.models.builtin' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(("value", "expected"), [("1", False), ("true", False), ("0", True), ("", True)])
def test_autoload_environment_switch(monkeypatch, value, expected):
    monkeypatch.setenv("NEUROXAI_DISABLE_PLUGIN_AUTOLOAD", value)
    assert autoload_enabled(None) is expected
    assert autoload_enabled(True) is True and autoload_enabled(False) is False


def tiny_factory(*, num_classes, input_shape=(16, 16, 1)):
    import keras

    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(2, 3, name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x))


def spec(name="tiny", **kw):
    return ModelSpec(
        name=name, factory=tiny_factory, input_shape=(16, 16, 1), input_range=(0.0, 1.0), target_layer="features", **kw
    )


def test_wrapper_implementations_run_around_the_others():
    # hooks go through pluggy: a new-style wrapper sees the registry before and after every other implementation
    seen = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def neuroxai_register_models(self, registry):
            seen.append(("before", sorted(registry.names())))
            result = yield
            seen.append(("after", sorted(registry.names())))
            return result

    class Adds:
        @hookimpl
        def neuroxai_register_models(self, registry):
            registry.register(spec())

    registry = ModelRegistry(autoload=False, plugins=[Wrapper(), Adds()])
    assert seen == [("before", []), ("after", ["cnn", "efficientnetb0", "tiny"])]
    assert "tiny" in registry


def test_explicit_plugins_serve_one_registry_only_and_are_named_as_the_source():
    class Adds:
        @hookimpl
        def neuroxai_register_models(self, registry):
            registry.register(spec())
            seen.append(current_plugin())

    seen: list = []
    plugin = Adds()
    registry = ModelRegistry(autoload=False, plugins=[plugin])
    assert registry.origin("tiny").name == seen[0].name and not seen[0].builtin
    assert current_plugin() is None  # reset after the hook
    assert not get_plugin_manager(autoload=False).is_registered(plugin)
    assert "tiny" not in ModelRegistry(autoload=False)


def test_builtins_run_first_so_replacing_one_needs_override():
    class Clash:
        @hookimpl
        def neuroxai_register_models(self, registry):
            registry.register(spec(name="cnn"))

    with pytest.raises(ModelError, match="Model 'cnn' from '.*' is already registered by 'neuroxai'. Pass override=True"):
        ModelRegistry(autoload=False, plugins=[Clash()])

    class Replaces:
        @hookimpl
        def neuroxai_register_models(self, registry):
            registry.register(spec(name="cnn"), override=True)

    assert ModelRegistry(autoload=False, plugins=[Replaces()]).get("cnn").target_layer == "features"


def test_a_failing_hook_is_reported_with_its_plugin():
    class Fails:
        @hookimpl
        def neuroxai_register_models(self, registry):
            raise RuntimeError("boom")

    with pytest.raises(PluginError, match="failed in hook 'neuroxai_register_models': RuntimeError: boom") as info:
        ModelRegistry(autoload=False, plugins=[Fails()])
    assert isinstance(info.value.__cause__, RuntimeError)


def test_misspelt_hook_fails_loudly_with_a_suggestion():
    class Typo:
        @hookimpl
        def neuroxai_register_explainer(self, registry):
            pass

    with pytest.raises(
        PluginError, match=r"unknown hook 'neuroxai_register_explainer'\. Did you mean 'neuroxai_register_explainers'\?"
    ):
        ModelRegistry(autoload=False, plugins=[Typo()])
    assert not any(isinstance(p, Typo) for p in get_plugin_manager(autoload=False).get_plugins())


def test_optional_unknown_hook_is_allowed():
    class Future:
        @hookimpl(optionalhook=True)
        def neuroxai_register_datasets(self, registry):
            pass

    assert "cnn" in ModelRegistry(autoload=False, plugins=[Future()])
