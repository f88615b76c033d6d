"""The registry of explanation methods, filled through the plugin hook.

Built-in methods come from :mod:`neuroxai.explain._plugin`; installed plugins
add theirs with ``@hookimpl def neuroxai_register_explainers(registry)``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator

from neuroxai.errors import ExplainError, PluginError
from neuroxai.explain._base import ExplainMethod

__all__ = ["MethodRegistry"]


class MethodRegistry:
    """Explanation methods by name.

    Args:
        autoload: Load installed plugins' methods (entry points of group
            ``neuroxai``). ``None``: yes unless ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1``.
        plugins: Extra plugin objects (modules or classes with hook implementations) to load.
        populate: Fill the registry through the plugin hook (``False`` gives an empty registry).

    Example:
        >>> registry = MethodRegistry(autoload=False)
        >>> "gradcam" in registry
        True
        >>> registry.get("gradcampp").name
        'gradcam++'
    """

    def __init__(self, autoload: bool | None = None, *, plugins: Iterable[object] = (), populate: bool = True) -> None:
        self._methods: dict[str, type[ExplainMethod]] = {}
        if populate:
            self._populate(autoload, tuple(plugins))

    def _populate(self, autoload: bool | None, plugins: tuple[object, ...]) -> None:
        try:
            from neuroxai.plugins import call_hook, get_plugin_manager
        except ImportError:  # pragma: no cover - plugins package missing
            from neuroxai.explain import _plugin

            _plugin.neuroxai_register_explainers(self)
            return
        pm = get_plugin_manager(autoload, plugins=plugins)
        from neuroxai.explain import _plugin

        if not pm.is_registered(_plugin):
            _plugin.neuroxai_register_explainers(self)
        call_hook(pm, "neuroxai_register_explainers", registry=self)

    def register(self, name: str, cls: type, override: bool = False) -> None:
        """Add a method class under ``name``.

        Args:
            name: The name users pass as ``method=`` (case-insensitive).
            cls: A subclass of :class:`~neuroxai.explain.ExplainMethod`.
            override: Replace an existing method of the same name.

        Raises:
            PluginError: ``cls`` is not an ExplainMethod subclass, or the name is taken and ``override`` is False.
        """
        if not isinstance(name, str) or not name.strip():
            raise PluginError(f"Explainer method names must be non-empty strings; got {name!r}.")
        if not (isinstance(cls, type) and issubclass(cls, ExplainMethod)):
            raise PluginError(
                f"Explainer method {name!r} must be a subclass of neuroxai.explain.ExplainMethod "
                f"(e.g. CAMMethod or GradientMethod); got {cls!r}."
            )
        key = name.strip().lower()
        if key in self._methods and not override:
            raise PluginError(
                f"Explainer method {name!r} is already registered ({self._methods[key].__qualname__}); "
                "pass override=True to replace it or pick another name."
            )
        self._methods[key] = cls

    def get(self, name: str) -> type[ExplainMethod]:
        """The method class registered under ``name``.

        Raises:
            ExplainError: Unknown name; the message suggests a close match and lists all methods.
        """
        key = str(name).strip().lower()
        if key in self._methods:
            return self._methods[key]
        close = difflib.get_close_matches(key, list(self._methods), n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ExplainError(f"Unknown explanation method {name!r}.{hint} Available: {', '.join(self.names())}.")

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._methods)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip().lower() in self._methods

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._methods)

    def __repr__(self) -> str:
        return f"MethodRegistry({', '.join(self.names())})"
