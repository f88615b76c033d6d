"""The plugin module named by the ``neuroxai`` entry point.

neuroxai imports this module when it loads installed plugins and calls every
function decorated with ``@hookimpl`` whose name matches a hook in
``neuroxai.plugins.hookspecs``: here a model, an explanation metric and a
command-line subcommand. Keep imports at the top light (the command line
imports this module to build ``neuroxai --help``); import heavy things inside
the hooks.
"""

from __future__ import annotations

from neuroxai import ModelSpec, hookimpl
from neuroxai_tinyresnet.model import build_tinyresnet


@hookimpl
def neuroxai_register_models(registry):
    """Register ``tinyresnet`` (its source becomes this distribution's name)."""
    registry.register(
        ModelSpec(
            name="tinyresnet",
            factory=build_tinyresnet,
            input_shape=(96, 96, 1),
            input_range=(0.0, 1.0),
            target_layer="stage3_out",
            description="Tiny three-stage ResNet (example plugin).",
        )
    )


@hookimpl
def neuroxai_register_metrics(registry):
    """Register the explanation metric ``focus`` (``neuroxai evaluate-xai --metric focus``)."""
    from neuroxai_tinyresnet.extras import Focus

    registry.register("focus", Focus)


@hookimpl
def neuroxai_register_commands(registry):
    """Register the subcommand ``neuroxai tinyresnet-info``."""
    from neuroxai.cli import Command
    from neuroxai_tinyresnet.extras import configure_info, run_info

    registry.register(
        Command(
            name="tinyresnet-info", help="print the tinyresnet's size (example plugin)", configure=configure_info, run=run_info
        )
    )
