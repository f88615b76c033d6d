"""The built-in subcommands, registered as an ordinary plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from neuroxai.plugins import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.cli._commands import CommandRegistry

__all__ = ["neuroxai_register_commands"]


@hookimpl(tryfirst=True)  # built-ins register first: a plugin replacing one must say override=True
def neuroxai_register_commands(registry: CommandRegistry) -> None:
    """Register demo, audit, models, train, evaluate, predict, calibrate, explain, evaluate-xai and report (in that order)."""
    from neuroxai.cli import _audit, _calibrate, _demo, _evaluate_xai, _explain, _models, _report, _train

    for module in (_demo, _audit, _models, _train, _calibrate, _explain, _evaluate_xai, _report):
        for command in module.COMMANDS:
            registry.register(command)
