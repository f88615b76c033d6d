"""The pluggy markers, in a module of their own so hookspecs can import them."""

from __future__ import annotations

import pluggy

__all__ = ["PROJECT", "hookimpl", "hookspec"]

#: The pluggy project name and the entry-point group plugins declare.
PROJECT = "neuroxai"

#: Marks a hook specification (used only in :mod:`neuroxai.plugins.hookspecs`).
hookspec = pluggy.HookspecMarker(PROJECT)

#: Marks a hook implementation in a plugin module or object.
hookimpl = pluggy.HookimplMarker(PROJECT)
