"""The ``neuroxai`` command.

Thin by design: each subcommand is a :class:`Command` (its arguments, and a
function that parses nothing more, calls the public API and prints). The
built-in commands come from :mod:`neuroxai.cli._plugin`; installed plugins add
theirs through the ``neuroxai_register_commands`` hook, so ``neuroxai --help``
lists them too.

Errors the library raises on purpose (:class:`neuroxai.errors.NeuroxaiError`)
and files that cannot be read or written (``OSError``) are printed as one
clear line with exit status 2; anything else is a bug: one line with exit
status 1 that says so, and the traceback with ``-v``. Library messages go
through :mod:`logging` (logger ``neuroxai``): the command shows warnings by
default, ``-v`` adds progress information, ``-vv`` debugging detail, and
``-q`` shows errors only. Control characters in messages (a file name with a
newline, say) are escaped, so no message can forge another line. Warnings of
the libraries the command uses (Python warnings such as matplotlib's missing
glyphs, and the log records of nibabel, pydicom, Pillow and matplotlib) are
shown the same way: one ``neuroxai:`` line each, never a raw traceback-style
warning.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from neuroxai.cli._commands import Command, CommandRegistry

__all__ = ["Command", "CommandRegistry", "build_parser", "main"]

_LOG_FORMAT = "neuroxai: %(message)s"
#: Loggers of the libraries the commands read and draw with: their records reach the terminal as one line each.
_THIRD_PARTY_LOGGERS = ("nibabel", "pydicom", "PIL", "matplotlib")


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


def one_line(text: object) -> str:
    """``text`` on one line: line breaks become spaces, other control characters escapes (``\\x1b``)."""
    flat = " ".join(str(text).splitlines())
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in flat)


class _OneLineFormatter(logging.Formatter):
    """Log records as single lines: a file name holding a newline cannot forge a log line."""

    def format(self, record: logging.LogRecord) -> str:
        return one_line(super().format(record))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever ``sys.stderr`` is when a record comes (not the one at set-up)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ sets it; the current sys.stderr is used instead
        pass


@contextmanager
def _warnings_as_log() -> Iterator[None]:
    """Pillow's DecompressionBombWarning (and other library warnings) as one logged line instead of a raw warning."""
    log = logging.getLogger("neuroxai.cli")
    original = warnings.showwarning

    def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if category.__name__ == "DecompressionBombWarning":
            log.warning("very large image (Pillow: %s); it is read, but needs much memory", message)
        else:  # any other library's warning (matplotlib's missing glyphs, pydicom's invalid values ...): one line
            log.warning("%s (%s in %s)", message, category.__name__, _module_of(filename))

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


def _module_of(filename: str) -> str:
    """Where a warning was raised: the installed package (``matplotlib``), else the file's name."""
    import os

    parts = os.path.normpath(filename).split(os.sep)
    for marker in ("site-packages", "dist-packages"):
        if marker in parts and parts.index(marker) + 1 < len(parts):
            return parts[parts.index(marker) + 1].removesuffix(".py")
    return os.path.basename(filename) or "?"


def _own_handler(logger: logging.Logger, fmt: str) -> None:
    if not any(getattr(h, "_neuroxai_cli", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_OneLineFormatter(fmt))
        handler._neuroxai_cli = True  # type: ignore[attr-defined]  # marks the handler this function owns
        logger.addHandler(handler)
    logger.propagate = False


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logger = logging.getLogger("neuroxai")
    logger.setLevel(level)
    _own_handler(logger, _LOG_FORMAT)
    for name in _THIRD_PARTY_LOGGERS:  # their warnings as one neuroxai line each; their chatter only with -vv
        other = logging.getLogger(name)
        other.setLevel(max(level, logging.WARNING) if verbose < 2 else level)
        _own_handler(other, "neuroxai: %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``neuroxai`` command; returns the process exit status."""
    from neuroxai._tf import quiet_tensorflow
    from neuroxai.errors import NeuroxaiError, PluginError

    quiet_tensorflow()
    command = "neuroxai"
    verbose = 0
    try:
        broken: PluginError | None = None
        try:
            registry = CommandRegistry()
        except PluginError as exc:  # a broken plugin must not take `--help` and the built-in commands down with it
            broken, registry = exc, CommandRegistry(autoload=False)
        parser = build_parser(registry)
        args = parser.parse_args(argv)
        verbose = int(args.verbose)
        _configure_logging(args.verbose, args.quiet)
        if broken is not None:
            logging.getLogger("neuroxai.cli").warning("installed plugins' commands are not available: %s", broken)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return 0
        command = f"neuroxai {args.command}"
        from neuroxai._keras_backend import enable_jax_compilation_cache

        enable_jax_compilation_cache()  # on JAX, a second run reads its compiled programs from disk
        with _warnings_as_log():
            return int(args.func(args) or 0)
    except NeuroxaiError as exc:
        print(f"{command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a file that cannot be read or written: the environment, not a bug
        from neuroxai._io import display_path

        where = f" ({display_path(exc.filename)})" if exc.filename else ""
        print(f"{command}: error: {one_line(exc.strerror or exc)}{where}. Check the path and its permissions.", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001  # a bug: one line, the traceback on request
        if verbose:
            traceback.print_exc()
        hint = "" if verbose else "; run again with -v to see the traceback"
        print(
            f"{command}: unexpected error: {type(exc).__name__}: {one_line(exc)} (a bug in neuroxai or a plugin; "
            f"please report it{hint})",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
