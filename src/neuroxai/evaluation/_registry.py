"""The registry of explanation metrics, filled through the plugin hook.

Built-in metrics come from :mod:`neuroxai.evaluation._plugin`; installed
plugins add theirs with ``@hookimpl def neuroxai_register_metrics(registry)``.
"""

from __future__ import annotations

from neuroxai.errors import PluginError, UnknownMetricError
from neuroxai.evaluation._metric import ExplanationMetric
from neuroxai.plugins import PluginInfo, Registry

__all__ = ["MetricRegistry", "available_metrics"]


class MetricRegistry(Registry[type[ExplanationMetric]]):
    """Explanation metrics by name (case-insensitive): built-ins first, then plugins'.

    Args:
        autoload: Load installed plugins' metrics (entry points of group
            ``neuroxai``). ``None``: yes unless ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1``.
        plugins: Extra plugin objects (modules or objects with hook implementations) used for this registry.
        populate: Fill the registry through the plugin hook (``False`` gives an empty registry).

    Raises:
        PluginError: A plugin failed to load or registered something that is not a metric class.

    Example:
        >>> registry = MetricRegistry(autoload=False)
        >>> registry.names()
        ['faithfulness', 'localization', 'reliance', 'sanity']
        >>> registry.create("faithfulness", steps=10).steps
        10
    """

    kind = "explanation metric"
    hook = "neuroxai_register_metrics"
    error = PluginError
    unknown_error = UnknownMetricError

    def _builtin_plugin(self) -> object:
        from neuroxai.evaluation import _plugin

        return _plugin

    def _check(self, name: str, item: object, origin: PluginInfo | None) -> type[ExplanationMetric]:
        if not (isinstance(item, type) and issubclass(item, ExplanationMetric)):
            who = f" (from {origin.describe().lower()})" if origin is not None else ""
            raise PluginError(
                f"Explanation metric {name!r}{who} must be a subclass of neuroxai.evaluation.ExplanationMetric; got {item!r}. "
                "Register the class, not an instance: registry.register('name', MyMetric)."
            )
        return item

    def register(self, name: str, cls: type[ExplanationMetric], override: bool = False) -> type[ExplanationMetric]:
        """Add a metric class under ``name``.

        Args:
            name: The name users pass in ``metrics=`` and ``--metric`` (case-insensitive).
            cls: A subclass of :class:`~neuroxai.evaluation.ExplanationMetric`.
            override: Replace an existing metric of the same name.

        Returns:
            ``cls``.

        Raises:
            PluginError: ``cls`` is not an ExplanationMetric subclass, or the name is taken and ``override`` is False.
        """
        return self._add(name.lower() if isinstance(name, str) else name, cls, override=override)

    def create(self, name: str, **settings: object) -> ExplanationMetric:
        """An instance of the metric ``name`` with ``settings`` (default settings when none are given).

        Raises:
            UnknownMetricError: No such metric (close names are suggested).
            ExplainError: The settings are not valid for that metric.
        """
        from neuroxai.errors import ExplainError

        cls = self.get(name)
        try:
            return cls(**settings)
        except TypeError as exc:
            raise ExplainError(f"Invalid settings for explanation metric {name!r}: {exc}.") from exc


def available_metrics(autoload: bool | None = None) -> list[str]:
    """Names of every registered explanation metric (built-ins and installed plugins).

    Args:
        autoload: Include installed plugins (default: unless ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1``).

    Returns:
        Sorted metric names.

    Example:
        >>> "reliance" in available_metrics(autoload=False)
        True
    """
    return MetricRegistry(autoload).names()
