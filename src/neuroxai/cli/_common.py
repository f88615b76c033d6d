"""Small pieces shared by the subcommands."""

from __future__ import annotations

import argparse
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
