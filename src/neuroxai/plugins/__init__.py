"""Plugins: pluggy with one project name and entry-point group, ``neuroxai``.

A plugin is a module (or object) whose functions are decorated with
:data:`hookimpl` and named after a hook in :mod:`neuroxai.plugins.hookspecs`.
Installed packages advertise their plugin module through an entry point in the
``neuroxai`` group; :func:`get_plugin_manager` loads, in this order:

1. the built-in plugins (:data:`BUILTIN_PLUGINS`), registered explicitly;
2. every entry point of group ``neuroxai`` (unless autoload is off);
3. plugin objects passed in ``plugins=``;

and then checks that every hook implementation matches a hook specification,
so a misspelt hook fails loudly with :class:`~neuroxai.errors.PluginError`.

Set the environment variable ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1`` to skip
entry points (the built-ins still load).
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import importlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from neuroxai.errors import NeuroxaiError, PluginError
from neuroxai.plugins import hookspecs
from neuroxai.plugins._markers import PROJECT, hookimpl, hookspec

__all__ = [
    "AUTOLOAD_ENV",
    "BUILTIN_PLUGINS",
    "PROJECT",
    "PluginInfo",
    "autoload_enabled",
    "call_hook",
    "current_plugin",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "hookspecs",
    "plugin_info",
    "registered_plugins",
]

#: Environment variable that, set to ``1``, turns entry-point loading off.
AUTOLOAD_ENV = "NEUROXAI_DISABLE_PLUGIN_AUTOLOAD"

#: Built-in plugin modules, registered (in this order) before any entry point.
BUILTIN_PLUGINS: tuple[str, ...] = ("neuroxai.models.builtin", "neuroxai.explain._plugin")

# Built-ins allowed to be absent while they are being written (only a
# ModuleNotFoundError for exactly this module name is tolerated).
_OPTIONAL_BUILTINS = frozenset({"neuroxai.explain._plugin"})

_ATTR_INFO = "_neuroxai_plugin_info"


@dataclass(frozen=True)
class PluginInfo:
    """Where a registered plugin came from.

    Attributes:
        name: The plugin's name in the plugin manager (the entry point name for
            installed plugins, the module name for built-ins).
        module: Module name of the plugin object (``None`` if unknown).
        builtin: True for the plugins shipped with neuroxai.
        distribution: Name of the installed distribution that declared the
            entry point (``None`` for built-ins and explicit plugin objects).
        version: That distribution's version (``None`` when not applicable).
        entry_point: The entry point as ``"name = value"`` (``None`` when not
            loaded from an entry point).
    """

    name: str
    module: str | None
    builtin: bool
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None

    @property
    def source(self) -> str:
        """The name to show as a model's source: ``"neuroxai"``, the distribution, or the plugin name."""
        if self.builtin:
            return PROJECT
        return self.distribution or self.name

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description."""
        return {
            "name": self.name,
            "module": self.module,
            "builtin": self.builtin,
            "distribution": self.distribution,
            "version": self.version,
            "entry_point": self.entry_point,
        }


_current: contextvars.ContextVar[PluginInfo | None] = contextvars.ContextVar("neuroxai_current_plugin", default=None)


def autoload_enabled(autoload: bool | None = None) -> bool:
    """Whether entry-point plugins should load.

    Args:
        autoload: An explicit choice; ``None`` means "yes, unless the
            environment variable ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD`` is ``1``"
            (also ``true``/``yes``/``on``).

    Returns:
        True when entry points should be loaded.
    """
    if autoload is not None:
        return bool(autoload)
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}


def plugin_info(pm: pluggy.PluginManager, plugin: object) -> PluginInfo:
    """The :class:`PluginInfo` recorded for ``plugin`` in ``pm``.

    Args:
        pm: A plugin manager from :func:`get_plugin_manager`.
        plugin: A registered plugin object.

    Returns:
        Its recorded origin (a minimal record for plugins registered by hand).
    """
    infos: dict[int, PluginInfo] = getattr(pm, _ATTR_INFO, {})
    info = infos.get(id(plugin))
    if info is None:
        name = pm.get_name(plugin) or repr(plugin)
        module = getattr(plugin, "__name__", None) or type(plugin).__module__
        info = PluginInfo(name=name, module=module, builtin=False)
    return info


def registered_plugins(pm: pluggy.PluginManager) -> list[tuple[object, PluginInfo]]:
    """The plugins registered in ``pm``, in registration order, with their origin.

    Args:
        pm: A plugin manager from :func:`get_plugin_manager`.

    Returns:
        ``(plugin, PluginInfo)`` pairs: built-ins first, then entry points, then explicit plugins.
    """
    infos: dict[int, PluginInfo] = getattr(pm, _ATTR_INFO, {})
    by_id = {id(p): p for p in pm.get_plugins()}
    ordered = [(by_id[i], info) for i, info in infos.items() if i in by_id]
    seen = set(infos)
    ordered += [(p, plugin_info(pm, p)) for i, p in by_id.items() if i not in seen]
    return ordered


def current_plugin() -> PluginInfo | None:
    """The plugin whose hook :func:`call_hook` is running now, else ``None``.

    Registries use it to name the plugin a model came from.
    """
    return _current.get()


def _register(pm: pluggy.PluginManager, plugin: object, info: PluginInfo) -> None:
    try:
        pm.register(plugin, name=info.name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"{_describe(info)} has an invalid hook implementation: {exc}. Fix the plugin's hook signature (see neuroxai.plugins.hookspecs)."
        ) from exc
    except ValueError as exc:  # duplicate name / object
        raise PluginError(f"{_describe(info)} could not be registered: {exc}.") from exc
    getattr(pm, _ATTR_INFO)[id(plugin)] = info


def _describe(info: PluginInfo) -> str:
    if info.entry_point:
        dist = f"{info.distribution} {info.version}" if info.distribution else "an unknown distribution"
        return f"Plugin entry point '{info.entry_point}' (group '{PROJECT}') from distribution '{dist}'"
    if info.builtin:
        return f"Built-in plugin '{info.name}'"
    return f"Plugin '{info.name}'"


def _entry_point_info(ep: EntryPoint) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    dist_name = dist.metadata["Name"] if dist is not None else None
    return PluginInfo(
        name=ep.name,
        module=ep.module,
        builtin=False,
        distribution=dist_name,
        version=dist.version if dist is not None else None,
        entry_point=f"{ep.name} = {ep.value}",
    )


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    for ep in entry_points(group=PROJECT):
        info = _entry_point_info(ep)
        if pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            uninstall = f"`pip uninstall {info.distribution}`" if info.distribution else "uninstall it"
            raise PluginError(
                f"{_describe(info)} failed to import: {type(exc).__name__}: {exc}. "
                f"Fix or reinstall that distribution, {uninstall}, or set {AUTOLOAD_ENV}=1 to skip installed plugins."
            ) from exc
        if pm.is_registered(plugin):
            continue  # the same module advertised twice (e.g. a built-in re-exported)
        existing = pm.get_plugin(ep.name)
        if existing is not None:
            other = plugin_info(pm, existing)
            raise PluginError(
                f"{_describe(info)} uses the plugin name '{ep.name}', already taken by {_describe(other).lower()}. "
                "Rename one of the entry points."
            )
        _register(pm, plugin, info)


def _check_hooks(pm: pluggy.PluginManager) -> None:
    known = sorted(name for name in dir(hookspecs) if name.startswith(f"{PROJECT}_"))
    for name in sorted(vars(pm.hook)):
        caller = getattr(pm.hook, name)
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            info = plugin_info(pm, impl.plugin)
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise PluginError(
                f"{_describe(info)} implements unknown hook '{name}'.{hint} "
                f"Known hooks: {', '.join(known)}. Rename the function (or mark it "
                f"@hookimpl(optionalhook=True) if it targets a newer neuroxai)."
            )
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # pragma: no cover - _check_hooks catches these first
        raise PluginError(f"Plugin '{exc.plugin}' implements an unknown hook: {exc}") from exc


def get_plugin_manager(autoload: bool | None = None, *, plugins: Iterable[object] = ()) -> pluggy.PluginManager:
    """Create a plugin manager with the built-ins, installed plugins and ``plugins``.

    Args:
        autoload: Load entry points of group ``neuroxai``. ``None`` (default)
            loads them unless ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1``.
        plugins: Extra plugin objects (modules, classes or instances with
            hook implementations) registered after the entry points; handy
            for applications and tests that do not package their plugin.

    Returns:
        A :class:`pluggy.PluginManager` for project ``neuroxai`` with the hook
        specifications of :mod:`neuroxai.plugins.hookspecs`.

    Raises:
        PluginError: An entry point failed to import (its entry point and
            distribution are named and the original error chained), a plugin
            has an invalid or unknown (misspelt) hook implementation, or two
            plugins share a name.

    Example:
        >>> pm = get_plugin_manager(autoload=False)
        >>> pm.has_plugin("neuroxai.models.builtin")
        True
    """
    pm = pluggy.PluginManager(PROJECT)
    setattr(pm, _ATTR_INFO, {})
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name and module_name in _OPTIONAL_BUILTINS:
                continue
            raise
        _register(pm, module, PluginInfo(name=module_name, module=module_name, builtin=True))
    if autoload_enabled(autoload):
        _load_entry_points(pm)
    for plugin in plugins:
        if pm.is_registered(plugin):
            continue
        name = pm.get_canonical_name(plugin)
        module = (
            getattr(plugin, "__name__", None) if isinstance(getattr(plugin, "__name__", None), str) else type(plugin).__module__
        )
        _register(pm, plugin, PluginInfo(name=name, module=module, builtin=False))
    _check_hooks(pm)
    return pm


@contextlib.contextmanager
def _running(info: PluginInfo) -> Iterator[None]:
    token = _current.set(info)
    try:
        yield
    finally:
        _current.reset(token)


def call_hook(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> None:
    """Call every implementation of ``hook_name`` in registration order.

    Unlike ``pm.hook.<name>(...)`` (last registered runs first), this runs
    built-ins first, so a plugin re-registering a built-in name must say
    ``override=True``. ``tryfirst``/``trylast`` markers are honoured. While an
    implementation runs, :func:`current_plugin` names its plugin.

    Args:
        pm: A plugin manager from :func:`get_plugin_manager`.
        hook_name: The hook, e.g. ``"neuroxai_register_models"``.
        **kwargs: The hook's arguments; each implementation gets those it names.

    Raises:
        PluginError: An implementation raised something other than a
            :class:`~neuroxai.errors.NeuroxaiError` (the original is chained).
        NeuroxaiError: Errors the registry raised on purpose pass through.
    """
    caller = getattr(pm.hook, hook_name)
    impls = caller.get_hookimpls()
    ordered = (
        [i for i in impls if i.tryfirst]
        + [i for i in impls if not i.tryfirst and not i.trylast]
        + [i for i in impls if i.trylast]
    )
    for impl in ordered:
        info = plugin_info(pm, impl.plugin)
        args = [kwargs[name] for name in impl.argnames]
        with _running(info):
            try:
                impl.function(*args)
            except NeuroxaiError:
                raise
            except Exception as exc:
                raise PluginError(f"{_describe(info)} failed in hook '{hook_name}': {type(exc).__name__}: {exc}") from exc
