"""The plugin module named by the ``neuroxai`` entry point.

neuroxai imports this module when it builds a model registry and calls every
function decorated with ``@hookimpl`` whose name matches a hook in
``neuroxai.plugins.hookspecs``. Keep imports here light: it runs each time a
registry is created.
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
