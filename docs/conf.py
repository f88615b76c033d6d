"""Sphinx configuration for the neuroxai documentation (built with `make docs`)."""

from __future__ import annotations

import os
import sys
from importlib.metadata import version as _version

sys.path.insert(0, os.path.abspath("_ext"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

project = "neuroxai"
author = "The neuroxai developers"
copyright = "2026, The neuroxai developers"
release = _version("neuroxai")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
    "cliref",
]

napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
nitpicky = False

intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

html_theme = "alabaster"
html_theme_options = {
    "description": "Explainable brain-tumour MRI classification",
    "fixed_sidebar": True,
}
html_static_path: list[str] = []
exclude_patterns = ["_build"]
