"""Small pieces shared by the subcommands."""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterable
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


def add_overwrite_option(parser: argparse.ArgumentParser, what: str = "earlier outputs of neuroxai") -> None:
    """Add ``--overwrite`` (replace our own earlier outputs; a file neuroxai did not write is never replaced)."""
    parser.add_argument(
        "--overwrite", action="store_true", help=f"replace {what} (files neuroxai did not write are never replaced)"
    )


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--allow-outside-root`` (manifest paths may leave the manifest's folder)."""
    parser.add_argument(
        "--allow-outside-root",
        action="store_true",
        help="let a CSV manifest list files outside its own folder (absolute paths, '..'); refused by default",
    )


def dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for :class:`~neuroxai.data.Dataset` from the data options of ``args``.

    Raises:
        NeuroxaiError: ``--allow-outside-root`` with a Dataset that does not know it.
    """
    if not getattr(args, "allow_outside_root", False):
        return {}
    import inspect

    from neuroxai.data import Dataset
    from neuroxai.errors import DataError

    if "allow_outside_root" not in inspect.signature(Dataset).parameters:  # pragma: no cover - older data layer
        raise DataError("--allow-outside-root is not supported by this version of neuroxai's Dataset.")
    return {"allow_outside_root": True}


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1)."""
    value = finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def report_skipped(command: str, skipped: Iterable[tuple[str, str]], *, verb: str = "skipped") -> int:
    """Print each skipped file (``path``, ``reason``) on stderr, control characters escaped; returns how many."""
    from neuroxai._io import display_path

    n = 0
    for path, reason in skipped:
        print(f"{command}: {verb} {display_path(path)}: {display_path(reason)}", file=sys.stderr)
        n += 1
    return n


class SafeCSVWriter:
    """A ``csv.writer`` whose text cells cannot run as spreadsheet formulas (see :func:`neuroxai._io.csv_cell`)."""

    def __init__(self, stream: Any) -> None:
        import csv

        self._writer = csv.writer(stream, lineterminator="\n")

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row."""
        from neuroxai._io import csv_cell

        self._writer.writerow([csv_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write rows."""
        for row in rows:
            self.writerow(row)


def is_prediction_csv(path: Any) -> bool:
    """Whether ``path`` is a CSV ``neuroxai predict`` wrote (its header starts ``path,predicted,confidence``)."""
    from pathlib import Path

    with open(Path(path), encoding="utf-8", errors="replace") as f:
        return f.readline(200).startswith("path,predicted,confidence")
