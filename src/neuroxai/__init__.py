"""neuroxai: explainable brain-tumour MRI classification on Keras 3.

The public API is small and lives here:

- :class:`Dataset`: index, audit, split and stream image folders, manifests
  or synthetic phantoms.
- :class:`ModelRegistry` and :class:`ModelSpec`: the built-in models and any
  installed plugin models, by name.
- :class:`Trainer`: fit, fine-tune, evaluate and save a run directory.
- :class:`Explainer`: Grad-CAM-family explanations for any Keras model.
- :func:`load`: a predictor from a saved run directory.
- :func:`pretrained` and :func:`list_pretrained`: the trained models shipped with
  neuroxai (and installed plugins), by name, without a network or training.
- :data:`hookimpl`: the decorator plugins use.

Heavy dependencies (TensorFlow, Keras) are imported on first use of a name,
so ``import neuroxai`` and the command line stay fast.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

# Library messages go to the 'neuroxai' logger and stay silent unless the application configures logging
# (the command line does: -v / -q).
logging.getLogger("neuroxai").addHandler(logging.NullHandler())

try:
    __version__ = version("neuroxai")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "Dataset",
    "Explainer",
    "ModelRegistry",
    "ModelSpec",
    "Trainer",
    "__version__",
    "hookimpl",
    "list_pretrained",
    "load",
    "pretrained",
]

# public name -> module that defines it
_LAZY = {
    "Dataset": "neuroxai.data",
    "ModelRegistry": "neuroxai.models",
    "ModelSpec": "neuroxai.models",
    "Trainer": "neuroxai.training",
    "load": "neuroxai.runs",
    "pretrained": "neuroxai.runs",
    "list_pretrained": "neuroxai.models",
    "Explainer": "neuroxai.explain",
    "hookimpl": "neuroxai.plugins",
}

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.data import Dataset
    from neuroxai.explain import Explainer
    from neuroxai.models import ModelRegistry, ModelSpec, list_pretrained
    from neuroxai.plugins import hookimpl
    from neuroxai.runs import load, pretrained
    from neuroxai.training import Trainer


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'neuroxai' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
