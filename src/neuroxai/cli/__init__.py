"""The ``neuroxai`` command.

Thin by design: each subcommand is a :class:`Command` (its arguments, and a
function that parses nothing more, calls the public API and prints). The
built-in commands come from :mod:`neuroxai.cli._plugin`; installed plugins add
theirs through the ``neuroxai_register_commands`` hook, so ``neuroxai --help``
lists them too.

Errors the library raises on purpose (:class:`neuroxai.errors.NeuroxaiError`)
are printed as one clear message with exit status 2; anything else is a bug
and keeps its traceback. Library messages go through :mod:`logging` (logger
``neuroxai``): the command shows warnings by default, ``-v`` adds progress
information, ``-vv`` debugging detail, and ``-q`` shows errors only.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from neuroxai.cli._commands import Command, CommandRegistry

__all__ = ["Command", "CommandRegistry", "build_parser", "main"]

_LOG_FORMAT = "neuroxai: %(message)s"


def build_parser(registry: CommandRegistry | None = None) -> argparse.ArgumentParser:
    """Build the full argument parser: the global options and every registered command (used by ``main`` and the docs)."""
    from neuroxai import __version__

    parser = argparse.ArgumentParser(
        prog="neuroxai",
        description="Explainable brain-tumour MRI classification: audit data, train, explain, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"neuroxai {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="count", default=0, help="more messages (-vv for debugging detail)")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (registry if registry is not None else CommandRegistry()).in_order():
        command.add_to(subparsers)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logger = logging.getLogger("neuroxai")
    logger.setLevel(level)
    if not any(getattr(h, "_neuroxai_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
        handler._neuroxai_cli = True  # type: ignore[attr-defined]  # marks the handler this function owns
        logger.addHandler(handler)
    logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``neuroxai`` command; returns the process exit status."""
    from neuroxai._tf import quiet_tensorflow
    from neuroxai.errors import NeuroxaiError, PluginError

    quiet_tensorflow()
    command = "neuroxai"
    try:
        broken: PluginError | None = None
        try:
            registry = CommandRegistry()
        except PluginError as exc:  # a broken plugin must not take `--help` and the built-in commands down with it
            broken, registry = exc, CommandRegistry(autoload=False)
        parser = build_parser(registry)
        args = parser.parse_args(argv)
        _configure_logging(args.verbose, args.quiet)
        if broken is not None:
            logging.getLogger("neuroxai.cli").warning("installed plugins' commands are not available: %s", broken)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return 0
        command = f"neuroxai {args.command}"
        return int(args.func(args) or 0)
    except NeuroxaiError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
