"""The plugin manager: built-ins first, optional explain plugin, autoload switch, hook specs."""

from __future__ import annotations

import importlib

import pluggy
import pytest

import neuroxai
from neuroxai import plugins
from neuroxai.errors import PluginError
from neuroxai.plugins import PROJECT, autoload_enabled, get_plugin_manager, hookimpl, hookspecs


def test_markers_and_project_name():
    assert PROJECT == "neuroxai"
    assert neuroxai.hookimpl is hookimpl
    assert isinstance(hookimpl, pluggy.HookimplMarker) and hookimpl.project_name == "neuroxai"


def test_builtins_registered_first_and_hooks_known():
    pm = get_plugin_manager(autoload=False)
    names = [info.name for _, info in plugins.registered_plugins(pm)]
    assert names[0] == "neuroxai.models.builtin"
    assert all(info.builtin for _, info in plugins.registered_plugins(pm))
    assert pm.hook.neuroxai_register_models.has_spec()
    assert pm.hook.neuroxai_register_explainers.has_spec()


def test_hookspecs_are_documented():
    for name in ("neuroxai_register_models", "neuroxai_register_explainers"):
        assert "registry" in getattr(hookspecs, name).__doc__


@pytest.mark.parametrize(("value", "expected"), [("1", False), ("true", False), ("0", True), ("", True)])
def test_autoload_environment_switch(monkeypatch, value, expected):
    monkeypatch.setenv("NEUROXAI_DISABLE_PLUGIN_AUTOLOAD", value)
    assert autoload_enabled(None) is expected
    assert autoload_enabled(True) is True and autoload_enabled(False) is False


def test_missing_explain_plugin_is_tolerated_but_other_import_errors_are_not(monkeypatch):
    real = importlib.import_module

    def fake(name, *args, **kwargs):
        if name == "neuroxai.explain._plugin":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(plugins.importlib, "import_module", fake)
    pm = get_plugin_manager(autoload=False)
    assert not pm.has_plugin("neuroxai.explain._plugin")
    assert pm.has_plugin("neuroxai.models.builtin")

    def broken_dependency(name, *args, **kwargs):
        if name == "neuroxai.explain._plugin":
            raise ModuleNotFoundError("No module named 'cv2'", name="cv2")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(plugins.importlib, "import_module", broken_dependency)
    with pytest.raises(ModuleNotFoundError, match="cv2"):
        get_plugin_manager(autoload=False)


def test_call_hook_runs_in_registration_order_and_names_current_plugin():
    seen = []

    class First:
        @hookimpl
        def neuroxai_register_explainers(self, registry):
            seen.append(("first", plugins.current_plugin().name))

    class Second:
        @hookimpl
        def neuroxai_register_explainers(self, registry):
            seen.append(("second", plugins.current_plugin().name))

    first, second = First(), Second()
    pm = get_plugin_manager(autoload=False, plugins=[first, second])

    class Registry:
        def register(self, name, cls, override=False):
            pass

    plugins.call_hook(pm, "neuroxai_register_explainers", registry=Registry())
    ours = [s for s in seen if s[0] in {"first", "second"}]
    assert [s[0] for s in ours] == ["first", "second"]
    assert ours[0][1] == pm.get_name(first)
    assert plugins.current_plugin() is None


def test_misspelt_hook_in_plugin_object_fails_at_manager_creation():
    class Typo:
        @hookimpl
        def neuroxai_register_explainer(self, registry):
            pass

    with pytest.raises(
        PluginError, match=r"unknown hook 'neuroxai_register_explainer'\. Did you mean 'neuroxai_register_explainers'\?"
    ):
        get_plugin_manager(autoload=False, plugins=[Typo()])


def test_optional_unknown_hook_is_allowed():
    class Future:
        @hookimpl(optionalhook=True)
        def neuroxai_register_datasets(self, registry):
            pass

    pm = get_plugin_manager(autoload=False, plugins=[Future()])
    assert len(plugins.registered_plugins(pm)) >= 2
