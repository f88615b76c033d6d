"""The plugin host: one pluggy ``PluginManager`` per process, as pytest and tox have.

What it owns:

- the hook specifications (:mod:`neuroxai.plugins.hookspecs`);
- where every registered plugin came from (:class:`PluginInfo`);
- loading installed plugins from entry points of group ``neuroxai``, with an
  error naming the entry point and distribution when one fails to import;
- checking that every hook implementation matches a specification, so a
  misspelt hook fails loudly;
- calling a hook *through pluggy* (``wrapper=True`` implementations run), over
  the built-ins plus, when autoload is on, the installed plugins, plus plugin
  objects given for one call.

What it does not own: which built-in plugins exist. Each layer registers its
own (the model registry registers :mod:`neuroxai.models.builtin`, the method
registry :mod:`neuroxai.explain._plugin` ...) when it is first populated, so
the host imports nothing above it and a broken layer cannot break another.
Built-in hook implementations are marked ``tryfirst``: they run before any
plugin's, so a plugin that replaces a built-in name must say
``override=True``.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import inspect
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from neuroxai._records import Record
from neuroxai.errors import NeuroxaiError, PluginError
from neuroxai.plugins import hookspecs
from neuroxai.plugins._markers import PROJECT

__all__ = [
    "AUTOLOAD_ENV",
    "PluginInfo",
    "PluginManager",
    "autoload_enabled",
    "current_plugin",
    "get_plugin_manager",
]

#: Environment variable that, set to ``1``, turns entry-point loading off.
AUTOLOAD_ENV = "NEUROXAI_DISABLE_PLUGIN_AUTOLOAD"


@dataclass(frozen=True)
class PluginInfo(Record):
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
        """The name to show as an item's source: ``"neuroxai"``, the distribution, or the plugin name."""
        if self.builtin:
            return PROJECT
        return self.distribution or self.name

    def describe(self) -> str:
        """The plugin as an error message names it."""
        if self.entry_point:
            dist = f"{self.distribution} {self.version}" if self.distribution else "an unknown distribution"
            return f"Plugin entry point '{self.entry_point}' (group '{PROJECT}') from distribution '{dist}'"
        if self.builtin:
            return f"Built-in plugin '{self.name}'"
        return f"Plugin '{self.name}'"


_current: contextvars.ContextVar[PluginInfo | None] = contextvars.ContextVar("neuroxai_current_plugin", default=None)


def current_plugin() -> PluginInfo | None:
    """The plugin whose hook implementation is running now, else ``None``.

    Registries use it to record which plugin added an item.
    """
    return _current.get()


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


class PluginManager(pluggy.PluginManager):
    """neuroxai's plugin host (one per process; get it with :func:`get_plugin_manager`).

    A :class:`pluggy.PluginManager` for project ``neuroxai`` that also records
    each plugin's origin, loads entry points with helpful errors and
    attributes every hook implementation's failures to its plugin.
    """

    def __init__(self) -> None:
        super().__init__(PROJECT)
        self.add_hookspecs(hookspecs)
        self._infos: dict[int, PluginInfo] = {}
        self._entry_point_plugins: list[object] = []
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ registration
    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register ``plugin`` (pluggy's contract), recording it as a plugin given by hand."""
        return self.add_plugin(plugin, self._info_for(plugin, name, builtin=False))

    def add_plugin(self, plugin: object, info: PluginInfo) -> str | None:
        """Register ``plugin`` with its origin and check its hook names.

        Raises:
            PluginError: A hook implementation has an invalid signature, names
                an unknown hook, or the plugin name is taken.
        """
        with self._lock:
            try:
                name = super().register(plugin, name=info.name)
            except pluggy.PluginValidationError as exc:
                raise PluginError(
                    f"{info.describe()} has an invalid hook implementation: {exc}. "
                    "Fix the plugin's hook signature (see neuroxai.plugins.hookspecs)."
                ) from exc
            except ValueError as exc:  # duplicate name or object
                raise PluginError(f"{info.describe()} could not be registered: {exc}.") from exc
            self._infos[id(plugin)] = info
            try:
                self._check_unknown_hooks(plugin, info)
            except PluginError:
                self.unregister(plugin)
                raise
            for caller in self.get_hookcallers(plugin) or []:
                for impl in caller.get_hookimpls():
                    if impl.plugin is plugin:  # pluggy declares `function` Final; we wrap it once, at registration
                        wrapped = _attributed(impl.function, info, caller.name, wrapper=bool(impl.wrapper or impl.hookwrapper))
                        setattr(impl, "function", wrapped)  # noqa: B010
            return name

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any | None:
        """Unregister a plugin and forget its origin."""
        with self._lock:
            removed = super().unregister(plugin, name)
            if removed is not None:
                self._infos.pop(id(removed), None)
                with contextlib.suppress(ValueError):
                    self._entry_point_plugins.remove(removed)
            return removed

    def ensure_builtin(self, module: object) -> None:
        """Register a built-in plugin module once (later calls do nothing)."""
        with self._lock:
            if self.is_registered(module):
                return
            name = getattr(module, "__name__", None) or repr(module)
            self.add_plugin(module, PluginInfo(name=name, module=name, builtin=True))

    def load_entry_points(self) -> None:
        """Load every entry point of group ``neuroxai`` not loaded yet (blocked names are skipped).

        Raises:
            PluginError: An entry point failed to import (its entry point and
                distribution are named and the original error chained), has an
                invalid hook, or its name is already taken by another plugin.
        """
        with self._lock:
            for ep in entry_points(group=PROJECT):
                if self.is_blocked(ep.name):
                    continue
                info = _entry_point_info(ep)
                existing = self.get_plugin(ep.name)
                if existing is not None and existing in self._entry_point_plugins:
                    continue
                try:
                    plugin = ep.load()
                except Exception as exc:  # any import-time failure of third-party code
                    uninstall = f"`pip uninstall {info.distribution}`" if info.distribution else "uninstall it"
                    raise PluginError(
                        f"{info.describe()} failed to import: {type(exc).__name__}: {exc}. "
                        f"Fix or reinstall that distribution, {uninstall}, or set {AUTOLOAD_ENV}=1 to skip installed plugins."
                    ) from exc
                if self.is_registered(plugin):
                    continue  # the same module advertised twice
                if existing is not None:
                    raise PluginError(
                        f"{info.describe()} uses the plugin name '{ep.name}', already taken by "
                        f"{self.plugin_info(existing).describe().lower()}. Rename one of the entry points."
                    )
                self.add_plugin(plugin, info)
                self._entry_point_plugins.append(plugin)

    # ------------------------------------------------------------------ what is registered
    def plugin_info(self, plugin: object) -> PluginInfo:
        """The recorded origin of ``plugin`` (a minimal record for an unknown object)."""
        info = self._infos.get(id(plugin))
        if info is None:
            info = self._info_for(plugin, self.get_name(plugin), builtin=False)
        return info

    def registered(self) -> list[tuple[object, PluginInfo]]:
        """``(plugin, PluginInfo)`` pairs in registration order."""
        by_id = {id(p): p for p in self.get_plugins()}
        return [(by_id[i], info) for i, info in self._infos.items() if i in by_id]

    def entry_point_plugins(self) -> list[object]:
        """The plugins loaded from entry points, in load order."""
        return list(self._entry_point_plugins)

    # ------------------------------------------------------------------ calling
    def call_registration(self, hook_name: str, *, autoload: bool | None, plugins: Iterable[object] = (), **kwargs: Any) -> None:
        """Call hook ``hook_name`` through pluggy over built-ins, installed plugins (when autoload is on) and ``plugins``.

        ``plugins`` are registered for this call only. Wrapper implementations run.

        Raises:
            PluginError: An implementation raised something other than a
                :class:`~neuroxai.errors.NeuroxaiError` (its plugin is named and
                the original error chained), or entry-point loading failed.
            NeuroxaiError: Errors a registry raised on purpose pass through.
        """
        load = autoload_enabled(autoload)
        if load:
            self.load_entry_points()
        with self._lock, self._temporary(plugins):
            remove = [] if load else self.entry_point_plugins()
            caller = self.subset_hook_caller(hook_name, remove_plugins=remove) if remove else getattr(self.hook, hook_name)
            caller(**kwargs)

    @contextlib.contextmanager
    def _temporary(self, plugins: Iterable[object]) -> Iterator[None]:
        added: list[object] = []
        try:
            for plugin in plugins:
                if not self.is_registered(plugin):
                    self.register(plugin)
                    added.append(plugin)
            yield
        finally:
            for plugin in added:
                self.unregister(plugin)

    # ------------------------------------------------------------------ checks
    def _check_unknown_hooks(self, plugin: object, info: PluginInfo) -> None:
        known = sorted(name for name in dir(hookspecs) if name.startswith(f"{PROJECT}_"))
        for caller in self.get_hookcallers(plugin) or []:
            if caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin or impl.optionalhook:
                    continue
                close = difflib.get_close_matches(caller.name, known, n=1, cutoff=0.6)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise PluginError(
                    f"{info.describe()} implements unknown hook '{caller.name}'.{hint} "
                    f"Known hooks: {', '.join(known)}. Rename the function (or mark it "
                    f"@hookimpl(optionalhook=True) if it targets a newer neuroxai)."
                )

    def _info_for(self, plugin: object, name: str | None, *, builtin: bool) -> PluginInfo:
        module_attr = getattr(plugin, "__name__", None)
        module = module_attr if isinstance(module_attr, str) else type(plugin).__module__
        return PluginInfo(name=name or self.get_canonical_name(plugin), module=module, builtin=builtin)


def _entry_point_info(ep: EntryPoint) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    return PluginInfo(
        name=ep.name,
        module=ep.module,
        builtin=False,
        distribution=dist.metadata["Name"] if dist is not None else None,
        version=dist.version if dist is not None else None,
        entry_point=f"{ep.name} = {ep.value}",
    )


def _attributed(function: Callable[..., Any], info: PluginInfo, hook: str, *, wrapper: bool) -> Callable[..., Any]:
    """Run ``function`` with :func:`current_plugin` set to ``info``; name the plugin when it fails."""
    if getattr(function, "__neuroxai_attributed__", False):
        return function

    def failed(exc: Exception) -> PluginError:
        return PluginError(f"{info.describe()} failed in hook '{hook}': {type(exc).__name__}: {exc}")

    if wrapper and inspect.isgeneratorfunction(function):

        @functools.wraps(function)
        def run_wrapper(*args: Any) -> Any:
            token = _current.set(info)
            try:
                return (yield from function(*args))
            finally:
                _current.reset(token)

        run_wrapper.__neuroxai_attributed__ = True  # type: ignore[attr-defined]  # marker read above
        return run_wrapper

    @functools.wraps(function)
    def run(*args: Any) -> Any:
        token = _current.set(info)
        try:
            return function(*args)
        except NeuroxaiError:
            raise
        except Exception as exc:  # third-party code: attribute the failure to its plugin
            raise failed(exc) from exc
        finally:
            _current.reset(token)

    run.__neuroxai_attributed__ = True  # type: ignore[attr-defined]  # marker read above
    return run


_MANAGER: PluginManager | None = None
_MANAGER_LOCK = threading.Lock()


def get_plugin_manager(autoload: bool | None = None) -> PluginManager:
    """The process's plugin host; with autoload on, installed plugins are loaded first.

    Args:
        autoload: Load entry points of group ``neuroxai`` (not loaded yet)
            now. ``None`` (default) loads them unless
            ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1``.

    Returns:
        The one :class:`PluginManager` of this process.

    Raises:
        PluginError: An installed plugin failed to import or broke the
            contract (see :meth:`PluginManager.load_entry_points`).

    Example:
        >>> pm = get_plugin_manager(autoload=False)
        >>> pm.project_name
        'neuroxai'
    """
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is None:
            _MANAGER = PluginManager()
        pm = _MANAGER
    if autoload_enabled(autoload):
        pm.load_entry_points()
    return pm


def reset_plugin_manager() -> None:
    """Forget the process's plugin host; the next :func:`get_plugin_manager` builds a new one.

    For tests and long-running applications that install or remove plugin
    packages while running. Registries built before keep what they hold.
    """
    global _MANAGER
    with _MANAGER_LOCK:
        _MANAGER = None
