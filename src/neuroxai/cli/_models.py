"""``neuroxai models [PATTERN] [--format json] [--plugins]``: list the registered models."""

from __future__ import annotations

import argparse

from neuroxai.cli._common import add_format_option, print_json

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``models`` subcommand."""
    parser = subparsers.add_parser(
        "models",
        help="list the models you can train: built-ins and installed plugins",
        description=(
            "List every registered model with the plugin it came from, its default input shape, the pixel range "
            "it expects, its parameter count (built once at the default shape, no weights downloaded) and its "
            "default explanation layer. Installed plugins (entry points in group 'neuroxai') are included unless "
            "NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1."
        ),
    )
    parser.add_argument(
        "pattern", nargs="?", default="*", metavar="PATTERN", help="shell-style name filter, e.g. 'eff*' (default: all)"
    )
    add_format_option(parser)
    parser.add_argument("--plugins", action="store_true", help="list the loaded plugins instead of the models")
    parser.add_argument(
        "--no-params", dest="params", action="store_false", help="skip building models to count parameters (faster)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the models (or plugins) as a table or JSON; returns 0."""
    from neuroxai.models import ModelRegistry

    registry = ModelRegistry()
    if args.plugins:
        rows = registry.plugins()
        if args.format == "json":
            print_json(rows)
        else:
            for row in rows:
                origin = "built-in" if row["builtin"] else f"{row['distribution'] or '?'} {row['version'] or ''}".strip()
                where = f" [{row['entry_point']}]" if row["entry_point"] else ""
                print(f"{row['name']}  ({origin}){where}: models {', '.join(row['models']) or '-'}")
        return 0
    rows = registry.describe(args.pattern, params=args.params)
    if args.format == "json":
        print_json(rows)
        return 0
    if not rows:
        print(f"No model matches {args.pattern!r}. Available: {', '.join(registry.names()) or '(none)'}")
        return 0
    table = [("NAME", "SOURCE", "INPUT", "RANGE", "PARAMS", "TARGET LAYER", "DESCRIPTION")]
    for row in rows:
        shape = "x".join(str(d) for d in row["input_shape"])
        low, high = row["input_range"]
        params = "-" if row.get("params") is None else f"{row['params']:,}"
        table.append(
            (row["name"], row["source"], shape, f"{low:g}..{high:g}", params, row["target_layer"] or "-", row["description"])
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]) - 1)]
    for r in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1])
    for row in rows:
        if row.get("error"):
            print(f"warning: {row['name']}: {row['error']}")
    return 0
