"""The registry of explanation methods, filled through the plugin hook.

Built-in methods come from :mod:`neuroxai.explain._plugin`; installed plugins
add theirs with ``@hookimpl def neuroxai_register_explainers(registry)``.
"""

from __future__ import annotations

from neuroxai.errors import PluginError, UnknownMethodError
from neuroxai.explain._base import ExplainMethod
from neuroxai.plugins import PluginInfo, Registry

__all__ = ["MethodRegistry"]


class MethodRegistry(Registry[type[ExplainMethod]]):
    """Explanation methods by name (case-insensitive).

    Args:
        autoload: Load installed plugins' methods (entry points of group
            ``neuroxai``). ``None``: yes unless ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1``.
        plugins: Extra plugin objects (modules or classes with hook implementations) used for this registry.
        populate: Fill the registry through the plugin hook (``False`` gives an empty registry).

    Example:
        >>> registry = MethodRegistry(autoload=False)
        >>> "gradcam" in registry
        True
        >>> registry.get("gradcampp").name
        'gradcam++'
    """

    kind = "explanation method"
    hook = "neuroxai_register_explainers"
    error = PluginError
    unknown_error = UnknownMethodError

    def _builtin_plugin(self) -> object:
        from neuroxai.explain import _plugin

        return _plugin

    def _check(self, name: str, item: object, origin: PluginInfo | None) -> type[ExplainMethod]:
        if not (isinstance(item, type) and issubclass(item, ExplainMethod)):
            raise PluginError(
                f"Explanation method {name!r} must be a subclass of neuroxai.explain.ExplainMethod "
                f"(e.g. CAMMethod, GradientFreeCAMMethod or GradientMethod); got {item!r}."
            )
        return item

    def register(self, name: str, cls: type[ExplainMethod], override: bool = False) -> type[ExplainMethod]:
        """Add a method class under ``name``.

        Args:
            name: The name users pass as ``method=`` (case-insensitive).
            cls: A subclass of :class:`~neuroxai.explain.ExplainMethod`.
            override: Replace an existing method of the same name.

        Returns:
            ``cls``.

        Raises:
            PluginError: ``cls`` is not an ExplainMethod subclass, or the name is taken and ``override`` is False.
        """
        return self._add(name.lower() if isinstance(name, str) else name, cls, override=override)
