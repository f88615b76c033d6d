"""Sphinx directive ``.. neuroxai-cli::`` rendering the command-line reference.

The text comes from the real argument parser (:func:`neuroxai.cli.build_parser`),
so the reference cannot drift from the command.
"""

from __future__ import annotations

import argparse

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public accessor for subparsers
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


class NeuroxaiCli(SphinxDirective):
    """Emit one section per subcommand with its ``--help`` text."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from neuroxai.cli import build_parser

        parser = build_parser()
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        out: list[nodes.Node] = [nodes.literal_block(text=parser.format_help())]
        for name, sub in _subparsers(parser).items():
            section = nodes.section(ids=[f"cli-{name}"])
            section += nodes.title(text=f"neuroxai {name}")
            section += nodes.literal_block(text=sub.format_help())
            out.append(section)
        return out


def setup(app):
    app.add_directive("neuroxai-cli", NeuroxaiCli)
    return {"parallel_read_safe": True, "version": "1"}
