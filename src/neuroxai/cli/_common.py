"""Small pieces shared by the subcommands."""

from __future__ import annotations

import argparse
import ast
import json
import sys
from typing import Any

from neuroxai._io import _jsonable


def add_format_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--format {text,json}``."""
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--no-progress`` to hide progress bars."""
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")


def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout."""
    json.dump(_jsonable(obj), sys.stdout, indent=2)
    sys.stdout.write("\n")


def layer_path(names: list[str] | None) -> str | tuple[str, ...] | None:
    """A ``--layer``-style argument (one or more names) as a layer name, or a tuple path into nested models."""
    if names is None:
        return None
    return names[0] if len(names) == 1 else tuple(names)


def parse_key_values(items: list[str], flag: str, example: str) -> dict[str, Any]:
    """Turn repeated ``KEY=VALUE`` arguments into a dict; values are Python literals where they parse as one.

    Raises:
        NeuroxaiError: An item without ``=`` or with an empty key.
    """
    from neuroxai.errors import NeuroxaiError

    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise NeuroxaiError(f"{flag} must look like KEY=VALUE (e.g. {example}); got {item!r}.")
        try:
            options[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key.strip()] = value
    return options
