"""Subcommands as registry items: built-in ones and those plugins add (tox-style)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field

from neuroxai.errors import PluginError, UnknownNameError
from neuroxai.plugins import PluginInfo, Registry

__all__ = ["Command", "CommandRegistry"]


@dataclass(frozen=True)
class Command:
    """One ``neuroxai`` subcommand.

    Attributes:
        name: What users type (``neuroxai NAME``); letters, digits and ``-``.
        help: One line for ``neuroxai --help``.
        run: ``run(args) -> exit status`` (``None`` counts as 0). Raise a
            :class:`~neuroxai.errors.NeuroxaiError` for a one-line error.
        configure: ``configure(parser)`` adds the command's arguments to its
            ``argparse.ArgumentParser`` (``None``: the command takes none).
        description: The longer text of ``neuroxai NAME --help`` (default: ``help``).

    Example:
        >>> Command(name="hello", help="say hello", run=lambda args: print("hello"))
        Command(name='hello', ...)
    """

    name: str
    help: str
    run: Callable[[argparse.Namespace], int | None] = field(repr=False)
    configure: Callable[[argparse.ArgumentParser], None] | None = field(default=None, repr=False)
    description: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Command(name={self.name!r}, ...)"

    def add_to(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
        """Add this command's parser to ``subparsers`` and return it."""
        parser = subparsers.add_parser(self.name, help=self.help, description=self.description or self.help)
        if self.configure is not None:
            self.configure(parser)
        parser.set_defaults(func=self.run)
        return parser


class CommandRegistry(Registry[Command]):
    """The ``neuroxai`` subcommands: built-ins first, then those installed plugins add.

    Args:
        autoload: Include installed plugins (default: unless ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1``).
        plugins: Extra plugin objects used for this registry.
        populate: Fill the registry through the ``neuroxai_register_commands`` hook.
    """

    kind = "command"
    hook = "neuroxai_register_commands"
    error = PluginError
    unknown_error = UnknownNameError

    def _builtin_plugin(self) -> object:
        from neuroxai.cli import _plugin

        return _plugin

    def _check(self, name: str, item: object, origin: PluginInfo | None) -> Command:
        if not isinstance(item, Command):
            who = f" (from {origin.describe().lower()})" if origin else ""
            raise PluginError(f"registry.register expects a neuroxai.cli.Command, got {type(item).__name__}{who}.")
        if (
            not name.replace("-", "").isalnum()
            or not callable(item.run)
            or not (item.configure is None or callable(item.configure))
        ):
            raise PluginError(
                f"Command {name!r}: expected a name of letters, digits and '-' and callable run and configure; got {item!r}."
            )
        return item

    def register(self, command: Command, override: bool = False) -> Command:
        """Add ``command`` under ``command.name``.

        Raises:
            PluginError: Not a :class:`Command`, or the name is taken and ``override`` is false.
        """
        return self._add(str(getattr(command, "name", "?")), command, override=override)

    def in_order(self) -> list[Command]:
        """The commands in registration order (built-ins first, in the order ``neuroxai --help`` lists them)."""
        return [self.get(n) for n in self._items]
