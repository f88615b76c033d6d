"""The ``neuroxai`` command.

Thin by design: each subcommand lives in its own module under this package,
parses its arguments, calls the public API and prints. A module exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
function taking the parsed arguments and returning an exit code.

Errors the library raises on purpose (:class:`neuroxai.errors.NeuroxaiError`)
are printed as one clear message with exit status 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

# Subcommand modules, in the order `neuroxai --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "neuroxai.cli._demo",
    "neuroxai.cli._audit",
    "neuroxai.cli._models",
    "neuroxai.cli._train",
    "neuroxai.cli._explain",
    "neuroxai.cli._evaluate_xai",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser (used by ``main`` and by the docs)."""
    from neuroxai import __version__

    parser = argparse.ArgumentParser(
        prog="neuroxai",
        description="Explainable brain-tumour MRI classification: audit data, train, explain, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"neuroxai {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``neuroxai`` command; returns the process exit status."""
    from neuroxai.errors import NeuroxaiError

    # TensorFlow's C++ start-up messages (CPU features, "failed call to cuInit" on a
    # machine without a GPU) read like failures to a user; set the variable to 0 to see them.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except NeuroxaiError as exc:
        print(f"neuroxai {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"neuroxai {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
