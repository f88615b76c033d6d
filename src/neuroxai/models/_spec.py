"""ModelSpec and TransferSpec: frozen metadata describing a registered model."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from neuroxai.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = ["ModelSpec", "TransferSpec", "validate_input_range", "validate_input_shape"]

#: Largest magnitude an input range may have (pixel ranges are 0..1, -1..1 or 0..255 in practice).
MAX_INPUT_RANGE = 1e6

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def validate_input_shape(shape: Any, *, model: str | None = None, min_size: int = 1) -> tuple[int, int, int]:
    """Check and normalise an image input shape ``(height, width, channels)``.

    Args:
        shape: Anything iterable of three positive integers.
        model: Model name used in the error message.
        min_size: Smallest allowed height and width.

    Returns:
        The shape as a tuple of three ``int``.

    Raises:
        ModelError: The shape is not three positive integers (a 2-D shape
            such as ``(128, 128)`` is rejected: add the channel axis), or the
            image is smaller than ``min_size``.

    Example:
        >>> validate_input_shape([128, 128, 1])
        (128, 128, 1)
    """
    from neuroxai.data import check_image_shape

    name = f"input_shape for model '{model}'" if model else "input_shape"
    return check_image_shape(shape, name=name, min_size=min_size, error=ModelError)


def validate_input_range(value: Any, *, where: str = "input_range") -> tuple[float, float]:
    """Check and normalise a pixel range ``(low, high)``.

    Args:
        value: Two finite numbers with ``low < high`` and magnitudes up to :data:`MAX_INPUT_RANGE`.
        where: What the value is (named in the message), e.g. ``"input_range in runs/x/neuroxai.json"``.

    Returns:
        ``(low, high)`` as floats.

    Raises:
        ModelError: Not two numbers, not finite, ``low >= high`` or out of range.

    Example:
        >>> validate_input_range([0, 255])
        (0.0, 255.0)
    """
    import math

    try:
        if isinstance(value, (str, bytes)) or any(isinstance(v, bool) for v in value):
            raise TypeError
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ModelError(f"Expected {where} to be two numbers [low, high], e.g. [0, 1]; got {value!r}.") from None
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise ModelError(f"Expected {where} to be two finite numbers with low < high, e.g. [0, 1]; got {value!r}.")
    if max(abs(low), abs(high)) > MAX_INPUT_RANGE:
        raise ModelError(
            f"Expected {where} within +-{MAX_INPUT_RANGE:g} (pixel ranges are like [0, 1] or [0, 255]); got {value!r}."
        )
    return (low, high)


@dataclass(frozen=True)
class TransferSpec:
    """How to fine-tune a pretrained model in two phases.

    Phase 1 ("head") freezes every layer for which ``is_backbone(name)`` is
    true and trains the rest (the new head). Phase 2 ("fine-tune") unfreezes
    the backbone layers for which ``unfreeze(name)`` is true and trains with
    the learning rate multiplied by ``fine_tune_lr_factor``.
    **BatchNormalization layers always stay frozen** in both phases (their
    ImageNet statistics must survive small medical batches); the trainer
    enforces this and :meth:`set_phase` does too.

    Attributes:
        is_backbone: Layer name -> True if the layer belongs to the
            pretrained backbone (frozen in phase 1).
        unfreeze: Layer name -> True if the backbone layer is trained in
            phase 2.
        fine_tune_lr_factor: Phase-2 learning rate as a fraction of phase 1's.
        head_epochs_fraction: Suggested fraction of the epochs spent in
            phase 1 (``None``: the trainer decides).

    Example:
        >>> spec = TransferSpec(is_backbone=lambda n: not n.startswith("head"),
        ...                     unfreeze=lambda n: n.startswith("block7"))
    """

    is_backbone: Callable[[str], bool]
    unfreeze: Callable[[str], bool]
    fine_tune_lr_factor: float = 0.1
    head_epochs_fraction: float | None = None

    def __post_init__(self) -> None:
        if not callable(self.is_backbone) or not callable(self.unfreeze):
            raise ModelError("TransferSpec expects callables is_backbone(name) and unfreeze(name) returning bool.")
        if not (0.0 < float(self.fine_tune_lr_factor) <= 1.0):
            raise ModelError(f"TransferSpec.fine_tune_lr_factor must be in (0, 1], got {self.fine_tune_lr_factor!r}.")
        if self.head_epochs_fraction is not None and not (0.0 < float(self.head_epochs_fraction) < 1.0):
            raise ModelError(f"TransferSpec.head_epochs_fraction must be in (0, 1) or None, got {self.head_epochs_fraction!r}.")

    def set_phase(self, model: keras.Model, phase: str) -> dict[str, int]:
        """Set ``layer.trainable`` for training phase ``"head"`` or ``"fine_tune"``.

        Compile the model *after* calling this (Keras reads ``trainable`` at
        compile time).

        Args:
            model: A model built from the spec this transfer spec belongs to.
            phase: ``"head"`` (backbone frozen) or ``"fine_tune"`` (the
                ``unfreeze`` layers trainable, batch normalisation frozen).

        Returns:
            Counts ``{"trainable": n, "frozen": m}`` of layers.

        Raises:
            ModelError: Unknown phase.
        """
        import keras

        if phase not in {"head", "fine_tune"}:
            raise ModelError(f"Expected phase 'head' or 'fine_tune', got {phase!r}.")
        counts = {"trainable": 0, "frozen": 0}
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                trainable = False
            elif not self.is_backbone(layer.name):
                trainable = True
            else:
                trainable = phase == "fine_tune" and bool(self.unfreeze(layer.name))
            layer.trainable = trainable
            if trainable:  # a trainable nested model or block keeps its own batch norms frozen too
                for sub in layer._flatten_layers(include_self=False, recursive=True):
                    if isinstance(sub, keras.layers.BatchNormalization):
                        sub.trainable = False
            counts["trainable" if trainable else "frozen"] += 1
        return counts


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: frozen metadata plus a factory.

    The factory is called as ``factory(*, num_classes, input_shape, **options)``
    and must return an **uncompiled**, flat functional ``keras.Model`` whose
    output layer is a softmax activation named ``"probabilities"`` fed by a
    layer named ``"logits"`` holding the pre-softmax scores (explanations take
    gradients of the logits).

    Attributes:
        name: Registry name (letters, digits, ``_ . + -``).
        factory: Builds the model (see above).
        input_shape: Default ``(height, width, channels)``.
        input_range: Pixel range the model expects, e.g. ``(0.0, 1.0)`` or
            ``(0.0, 255.0)`` for Keras applications that rescale inside.
        target_layer: Default explanation (Grad-CAM) layer, normally the last
            convolutional feature map; ``None`` to let the explainer search.
        description: One line for listings.
        source: Plugin distribution the model came from (``"neuroxai"`` for
            built-ins; filled in automatically for plugins that leave it).
        transfer: Two-phase fine-tuning recipe, or ``None`` for single-phase
            training from scratch.

    Raises:
        ModelError: A field is malformed (bad name, shape or range).

    Example:
        >>> spec = ModelSpec(name="tiny", factory=build_tiny, input_shape=(64, 64, 1),
        ...                  input_range=(0.0, 1.0), target_layer="features")
    """

    name: str
    factory: Callable[..., keras.Model]
    input_shape: tuple[int, int, int]
    input_range: tuple[float, float]
    target_layer: str | None
    description: str = ""
    source: str = "neuroxai"
    transfer: TransferSpec | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ModelError(f"Expected a model name of letters, digits and '_.+-', got {self.name!r}.")
        if not callable(self.factory):
            raise ModelError(f"Model '{self.name}': factory must be callable, got {type(self.factory).__name__}.")
        object.__setattr__(self, "input_shape", validate_input_shape(self.input_shape, model=self.name))
        object.__setattr__(self, "input_range", validate_input_range(self.input_range, where=f"model '{self.name}' input_range"))
        if self.target_layer is not None and not isinstance(self.target_layer, str):
            raise ModelError(f"Model '{self.name}': target_layer must be a layer name or None, got {self.target_layer!r}.")
        if self.transfer is not None and not isinstance(self.transfer, TransferSpec):
            raise ModelError(f"Model '{self.name}': transfer must be a TransferSpec or None, got {type(self.transfer).__name__}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able metadata (no factory)."""
        return {
            "name": self.name,
            "source": self.source,
            "input_shape": list(self.input_shape),
            "input_range": list(self.input_range),
            "target_layer": self.target_layer,
            "description": self.description,
            "two_phase": self.transfer is not None,
        }
