"""The built-in explanation metrics, registered as an ordinary plugin."""

from __future__ import annotations

from typing import Any

from neuroxai.plugins import hookimpl

__all__ = ["neuroxai_register_metrics"]


@hookimpl(tryfirst=True)  # built-ins register first: a plugin replacing one must say override=True
def neuroxai_register_metrics(registry: Any) -> None:
    """Register localization, faithfulness, sanity and reliance."""
    from neuroxai.evaluation.faithfulness import Faithfulness
    from neuroxai.evaluation.localization import Localization
    from neuroxai.evaluation.reliance import TumourReliance
    from neuroxai.evaluation.sanity import Sanity

    for cls in (Localization, Faithfulness, Sanity, TumourReliance):
        registry.register(cls.name, cls)
