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

Hooks are called through pluggy, so ``wrapper=True`` implementations run
around the others. The built-in plugins' implementations are marked
``tryfirst`` and run first; a plugin that replaces a built-in name therefore
registers it with ``override=True``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neuroxai.plugins._markers import hookspec

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.cli import CommandRegistry
    from neuroxai.evaluation import MetricRegistry
    from neuroxai.explain import MethodRegistry
    from neuroxai.models import ModelRegistry, PretrainedRegistry

__all__ = [
    "neuroxai_register_commands",
    "neuroxai_register_explainers",
    "neuroxai_register_metrics",
    "neuroxai_register_models",
    "neuroxai_register_pretrained",
]


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
def neuroxai_register_pretrained(registry: PretrainedRegistry) -> None:
    """Add pretrained models (trained weights a package ships) to the pretrained registry.

    Called once for every new :class:`neuroxai.models.PretrainedRegistry`. Register each with
    ``registry.register(PretrainedModel(name=..., folder=..., sha256={...}, summary=...))``: ``folder`` is a run
    directory your package ships as package data (``model.keras``, ``neuroxai.json`` and ``model_card.json``) and
    ``sha256`` the digest of each of those files, written in your code
    (:func:`neuroxai.models.file_sha256` computes them). :func:`neuroxai.pretrained` then loads it by name,
    checking every digest first.

    Example:
        >>> from importlib.resources import files
        >>> from neuroxai import hookimpl
        >>> from neuroxai.models import PretrainedModel
        >>> @hookimpl
        ... def neuroxai_register_pretrained(registry):
        ...     registry.register(PretrainedModel(
        ...         name="mynet-v1", folder=str(files("mynet") / "weights"), summary="mynet on my data",
        ...         sha256={"model.keras": "...", "neuroxai.json": "...", "model_card.json": "..."}))
    """


@hookspec
def neuroxai_register_explainers(registry: MethodRegistry) -> None:
    """Add explanation methods to the method registry.

    Called once for every new :class:`neuroxai.explain.MethodRegistry`.
    Register each method with ``registry.register(name, cls)``, where ``cls``
    subclasses :class:`neuroxai.explain.ExplainMethod` (in practice
    ``CAMMethod``, ``GradientFreeCAMMethod`` or ``GradientMethod``);
    ``override=True`` replaces a method of the same name registered earlier.

    Args:
        registry: The method registry being populated.

    Example:
        >>> from neuroxai import hookimpl
        >>> @hookimpl
        ... def neuroxai_register_explainers(registry):
        ...     registry.register("mycam", MyCAM)
    """


@hookspec
def neuroxai_register_metrics(registry: MetricRegistry) -> None:
    """Add explanation metrics to the metric registry.

    Called once for every new :class:`neuroxai.evaluation.MetricRegistry`.
    Register each metric with ``registry.register(name, cls)``, where ``cls``
    subclasses :class:`neuroxai.evaluation.ExplanationMetric`; it then runs in
    :func:`neuroxai.evaluation.evaluate_explanations` and
    ``neuroxai evaluate-xai --metric NAME``.

    Args:
        registry: The metric registry being populated.

    Example:
        >>> from neuroxai import hookimpl
        >>> @hookimpl
        ... def neuroxai_register_metrics(registry):
        ...     registry.register("sparsity", Sparsity)
    """


@hookspec
def neuroxai_register_commands(registry: CommandRegistry) -> None:
    """Add subcommands to the ``neuroxai`` command line.

    Called once when the command line is built. Register each command with
    ``registry.register(Command(name=..., help=..., configure=..., run=...))``:
    ``configure(parser)`` adds its arguments to an ``argparse`` parser and
    ``run(args)`` does the work and returns the exit status. Errors derived
    from :class:`neuroxai.errors.NeuroxaiError` are printed as one line.

    Args:
        registry: The command registry being populated.

    Example:
        >>> from neuroxai import hookimpl
        >>> from neuroxai.cli import Command
        >>> @hookimpl
        ... def neuroxai_register_commands(registry):
        ...     registry.register(Command(name="hello", help="say hello",
        ...                               configure=lambda parser: None, run=lambda args: print("hello") or 0))
    """
