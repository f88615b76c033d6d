"""``neuroxai models [PATTERN] [--format json] [--plugins]``: list the registered models."""

from __future__ import annotations

import argparse
from typing import Any

from neuroxai.cli._commands import Command
from neuroxai.cli._common import add_format_option, print_json

__all__ = ["COMMANDS", "run"]


def _configure_models(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neuroxai models``."""
    parser.add_argument(
        "pattern", nargs="?", default="*", metavar="PATTERN", help="shell-style name filter, e.g. 'eff*' (default: all)"
    )
    add_format_option(parser)
    parser.add_argument("--plugins", action="store_true", help="list the loaded plugins instead of the models")
    parser.add_argument(
        "--pretrained",
        action="store_true",
        help="list only the pretrained models (trained weights shipped with neuroxai or a plugin; use with --pretrained NAME)",
    )
    parser.add_argument(
        "--no-params", dest="params", action="store_false", help="skip building models to count parameters (faster)"
    )


def run(args: argparse.Namespace) -> int:
    """Print the models (or plugins, or pretrained models) as a table or JSON; returns 0."""
    from neuroxai.models import ModelRegistry, PretrainedRegistry

    if args.pretrained:
        shipped = PretrainedRegistry()
        items = [shipped.get(n) for n in shipped.names(args.pattern)]
        if args.format == "json":
            print_json([item.to_dict() for item in items])
        else:
            _print_pretrained(items)
        return 0
    registry = ModelRegistry()
    if args.plugins:
        plugins = registry.plugins()
        if args.format == "json":
            print_json([p.to_dict() for p in plugins])
        else:
            for p in plugins:
                info = p.info
                origin = "built-in" if info.builtin else f"{info.distribution or '?'} {info.version or ''}".strip()
                where = f" [{info.entry_point}]" if info.entry_point else ""
                print(f"{info.name}  ({origin}){where}: models {', '.join(p.models) or '-'}")
        return 0
    rows = registry.describe(args.pattern, params=args.params)
    if args.format == "json":
        print_json([row.to_dict() for row in rows])
        return 0
    if not rows:
        print(f"No model matches {args.pattern!r}. Available: {', '.join(registry.names()) or '(none)'}")
        return 0
    table = [("NAME", "SOURCE", "INPUT", "RANGE", "PARAMS", "TARGET LAYER", "DESCRIPTION")]
    for row in rows:
        shape = "x".join(str(d) for d in row.input_shape)
        low, high = row.input_range
        params = "-" if row.params is None else f"{row.params:,}"
        table.append((row.name, row.source, shape, f"{low:g}..{high:g}", params, row.target_layer or "-", row.description))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]) - 1)]
    for r in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1])
    for row in rows:
        if row.error:
            print(f"warning: {row.name}: {row.error}")
    shipped = PretrainedRegistry()
    items = [shipped.get(n) for n in shipped.names(args.pattern)]
    if items:
        print()
        _print_pretrained(items)
    return 0


def _print_pretrained(items: list[Any]) -> None:
    """The pretrained models as text: name, who ships it, summary, and how to use one."""
    if not items:
        print("No pretrained model matches.")
        return
    print("Pretrained (trained weights, no download): neuroxai predict --pretrained NAME FILES...")
    width = max(len(item.name) for item in items)
    for item in items:
        print(f"  {item.name.ljust(width)}  ({item.source})  {item.summary}")


COMMANDS: tuple[Command, ...] = (
    Command(
        name="models",
        help="list the models you can train: built-ins and installed plugins",
        description=(
            "List every registered model with the plugin it came from, its default input shape, the pixel range "
            "it expects, its parameter count (built once at the default shape, no weights downloaded) and its "
            "default explanation layer. Installed plugins (entry points in group 'neuroxai') are included unless "
            "NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1."
        ),
        configure=_configure_models,
        run=run,
    ),
)
