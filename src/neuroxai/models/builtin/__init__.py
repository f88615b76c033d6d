"""The built-in models, registered as an ordinary neuroxai plugin.

* ``cnn``: :func:`neuroxai.models.builtin.cnn.build_cnn`, the fast custom
  baseline (128x128 grayscale, pixels in [0, 1]).
* ``efficientnetb0``: :func:`neuroxai.models.builtin.efficientnet.build_efficientnetb0`,
  ImageNet transfer learning (224x224 RGB, pixels in 0..255, two-phase
  fine-tuning).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from neuroxai.models._pretrained import PretrainedModel
from neuroxai.models._spec import ModelSpec
from neuroxai.models.builtin import cnn, efficientnet
from neuroxai.models.builtin._shipped import SHIPPED
from neuroxai.plugins import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.models import ModelRegistry, PretrainedRegistry

__all__ = ["BUILTIN_PRETRAINED", "BUILTIN_SPECS", "PRETRAINED_DIR", "neuroxai_register_models", "neuroxai_register_pretrained"]

#: The specs this plugin registers.
BUILTIN_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="cnn",
        factory=cnn.build_cnn,
        input_shape=cnn.DEFAULT_INPUT_SHAPE,
        input_range=(0.0, 1.0),
        target_layer=cnn.TARGET_LAYER,
        description="Fast residual separable-conv baseline for MRI slices (trains on a CPU; options: width, dropout, feature_stride).",
    ),
    ModelSpec(
        name="efficientnetb0",
        factory=efficientnet.build_efficientnetb0,
        input_shape=efficientnet.DEFAULT_INPUT_SHAPE,
        input_range=(0.0, 255.0),
        target_layer=efficientnet.TARGET_LAYER,
        description="EfficientNetB0 (ImageNet) transfer learning; pixels 0..255, grayscale tiled to RGB (options: weights, dense_units, dropout).",
        transfer=efficientnet.TRANSFER,
    ),
)


@hookimpl(tryfirst=True)  # built-ins register first: a plugin replacing one must say override=True
def neuroxai_register_models(registry: ModelRegistry) -> None:
    """Register ``cnn`` and ``efficientnetb0``."""
    for spec in BUILTIN_SPECS:
        registry.register(spec)


#: Where the shipped weights live: one run directory per pretrained model (package data).
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"

#: The pretrained models neuroxai ships: ``(name, summary, {file: SHA-256})``. The digests are part of the code, so a
#: damaged or replaced weights file is refused (:meth:`neuroxai.models.PretrainedModel.verified_folder`).
BUILTIN_PRETRAINED: tuple[tuple[str, str, dict[str, str]], ...] = SHIPPED


@hookimpl(tryfirst=True)
def neuroxai_register_pretrained(registry: PretrainedRegistry) -> None:
    """Register the weights neuroxai ships (:data:`BUILTIN_PRETRAINED`)."""
    for name, summary, digests in BUILTIN_PRETRAINED:
        registry.register(PretrainedModel(name=name, folder=str(PRETRAINED_DIR / name), sha256=dict(digests), summary=summary))
