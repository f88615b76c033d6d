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


_PRETRAINED_HELP = (
    "use a pretrained model shipped with neuroxai (or an installed plugin) instead of RUN_DIR: no download, no "
    "training (`neuroxai models` lists them)"
)


def add_model_argument(
    parser: argparse.ArgumentParser, *, dest: str = "run_dir", help: str = "run directory or .keras file", inputs: bool = False
) -> None:
    """Add the model positional (``RUN_DIR``) and ``--pretrained NAME`` in its place.

    With ``inputs`` the command's next positional takes files (declare it with ``nargs="*"``): given
    ``--pretrained``, the first positional is read as an input (:func:`resolve_model`).
    """
    parser.add_argument(dest, metavar="RUN_DIR", nargs=None if inputs else "?", help=f"{help} (leave out with --pretrained)")
    parser.add_argument("--pretrained", metavar="NAME", default=None, help=_PRETRAINED_HELP)


def resolve_model(args: argparse.Namespace, *, dest: str = "run_dir", inputs: str | None = None) -> str | None:
    """Turn ``--pretrained NAME`` into the installed run directory (checksums verified) in ``args.<dest>``.

    Args:
        args: The parsed arguments of a command configured with :func:`add_model_argument`.
        dest: The model positional's name.
        inputs: The command's input positional, if any: with ``--pretrained`` the model positional holds the
            first input and moves there.

    Returns:
        The pretrained model's name, or ``None`` when a run directory was given.

    Raises:
        NeuroxaiError: Neither or both a run directory and ``--pretrained`` given, or no input.
        UnknownPretrainedError: No pretrained model of that name.
        ModelError: A shipped file fails its checksum.
    """
    from neuroxai.errors import NeuroxaiError
    from neuroxai.models import pretrained_model

    name = getattr(args, "pretrained", None)
    given = getattr(args, dest)
    if name is None:
        if given is None:
            raise NeuroxaiError("Give a run directory (RUN_DIR) or --pretrained NAME (`neuroxai models` lists the shipped ones).")
        if inputs is not None and not getattr(args, inputs):
            raise NeuroxaiError("Give at least one input file or folder after RUN_DIR.")
        return None
    if inputs is not None:
        setattr(args, inputs, ([given] if given is not None else []) + list(getattr(args, inputs)))
        if not getattr(args, inputs):
            raise NeuroxaiError(f"Give at least one input file or folder to use with --pretrained {name}.")
    elif given is not None:
        raise NeuroxaiError(f"Give either RUN_DIR ({given}) or --pretrained {name}, not both.")
    setattr(args, dest, str(pretrained_model(name).verified_folder()))
    return str(name)


def ood_columns(ood: Any, scores: Any, n: int) -> list[list[str]]:
    """The ``ood_score`` and ``ood`` cells of ``n`` prediction rows (``[]`` per row when the run has no score).

    ``ood`` is ``yes`` for a row outside what the model knows (its score above the run's threshold).
    """
    if ood is None or scores is None:
        return [[] for _ in range(n)]
    flags = ood.flags(scores)
    return [[f"{float(s):.4f}", "yes" if f else "no"] for s, f in zip(scores, flags)]
