"""The hooks a neuroxai plugin can implement.

Every hook is prefixed ``neuroxai_`` and receives a *registry* to add to, so
that new hook arguments never break old plugins (pluggy passes a hook
implementation only the arguments it names).

A plugin is a module (or any object) with functions decorated by
:data:`neuroxai.hookimpl` whose names match the hooks below. Installed
packages expose their plugin module through an entry point in the
``neuroxai`` group::

    [project.entry-points.neuroxai]
    tinyresnet = "neuroxai_tinyresnet.plugin"

A decorated function whose name matches no hook here makes plugin loading
fail with :class:`neuroxai.errors.PluginError` (a misspelt hook never
silently does nothing).

Hooks are called in registration order: the built-in plugins first, then
entry-point plugins, then plugin objects passed explicitly. A plugin that
wants to replace a built-in model therefore registers it with
``override=True``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from neuroxai.plugins._markers import hookspec

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.models import ModelRegistry

__all__ = ["ExplainerRegistryLike", "neuroxai_register_explainers", "neuroxai_register_models"]


class ExplainerRegistryLike(Protocol):
    """What :func:`neuroxai_register_explainers` receives: anything with this ``register``."""

    def register(self, name: str, cls: type, override: bool = False) -> Any:
        """Register explanation method class ``cls`` under ``name``."""


@hookspec
def neuroxai_register_models(registry: ModelRegistry) -> None:
    """Add models to the model registry.

    Called once for every new :class:`neuroxai.ModelRegistry`. Register each
    model with ``registry.register(ModelSpec(...))``; pass ``override=True``
    to replace a model of the same name registered earlier (for example a
    built-in). The spec's ``source`` is filled in with the plugin's
    distribution name when left at its default.

    Args:
        registry: The :class:`neuroxai.ModelRegistry` being populated.

    Example:
        >>> from neuroxai import ModelSpec, hookimpl
        >>> @hookimpl
        ... def neuroxai_register_models(registry):
        ...     registry.register(ModelSpec(name="mynet", factory=build_mynet,
        ...                                 input_shape=(128, 128, 1), input_range=(0.0, 1.0),
        ...                                 target_layer="features"))
    """


@hookspec
def neuroxai_register_explainers(registry: ExplainerRegistryLike) -> None:
    """Add explanation methods to the explainer registry.

    Called once for every new explainer registry. Register each method with
    ``registry.register(name, cls)``; ``override=True`` replaces a method of
    the same name registered earlier.

    Args:
        registry: The explainer registry being populated (see
            :class:`ExplainerRegistryLike`).

    Example:
        >>> from neuroxai import hookimpl
        >>> @hookimpl
        ... def neuroxai_register_explainers(registry):
        ...     registry.register("mycam", MyCAM)
    """
