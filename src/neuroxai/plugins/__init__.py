"""Plugins: pluggy with one project name and entry-point group, ``neuroxai``.

A plugin is a module (or object) whose functions are decorated with
:data:`hookimpl` and named after a hook in :mod:`neuroxai.plugins.hookspecs`:
models, explanation methods, explanation metrics and command-line
subcommands can all be added. Installed packages advertise their plugin
module through an entry point in the ``neuroxai`` group::

    [project.entry-points.neuroxai]
    mynet = "mynet.plugin"

There is one plugin host per process (:func:`get_plugin_manager`, a
:class:`PluginManager`). Each registry registers its layer's built-in plugin
with the host, loads installed plugins unless autoload is off, and calls its
hook through pluggy. Set ``NEUROXAI_DISABLE_PLUGIN_AUTOLOAD=1`` to skip entry
points (the built-ins still load).

:class:`Registry` is the one registry the model, method, metric and command
registries derive from: the same lookup, suggestions and errors everywhere.
:class:`Record` is the base of neuroxai's typed result records (frozen
dataclasses with ``to_dict``/``from_dict``); a metric plugin's result derives
from it.
"""

from __future__ import annotations

from neuroxai._records import Record
from neuroxai.plugins import hookspecs
from neuroxai.plugins._host import (
    AUTOLOAD_ENV,
    PluginInfo,
    PluginManager,
    autoload_enabled,
    current_plugin,
    get_plugin_manager,
    reset_plugin_manager,
)
from neuroxai.plugins._markers import PROJECT, hookimpl, hookspec
from neuroxai.plugins._registry import Registry

__all__ = [
    "AUTOLOAD_ENV",
    "PROJECT",
    "PluginInfo",
    "PluginManager",
    "Record",
    "Registry",
    "autoload_enabled",
    "current_plugin",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "hookspecs",
    "reset_plugin_manager",
]
