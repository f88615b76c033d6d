"""The settings of mask-guided training (no TensorFlow needed to read or write them).

The losses themselves, and why they look as they do, are in
:mod:`neuroxai.training._guided`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from neuroxai._records import Record
from neuroxai.errors import ModelError

__all__ = ["GUIDANCE_KINDS", "MaskGuidance"]

#: Accepted values of :attr:`MaskGuidance.kind`.
GUIDANCE_KINDS = ("cam", "gradients")


@dataclass(frozen=True)
class MaskGuidance(Record):
    """Settings of mask-guided training (``Trainer(guidance=...)``).

    Attributes:
        kind: ``"cam"`` (class-activation energy at the target layer, default)
            or ``"gradients"`` (input gradients, "right for the right reasons").
        weight: Weight of the guidance term beside cross-entropy (>= 0).
        layer: Target layer of ``"cam"``: a name, or a tuple path through nested
            models; ``None`` uses the model spec's target layer, else the last
            4-D layer.

    Raises:
        ModelError: Unknown kind, or a weight that is negative or not finite.

    Example:
        >>> MaskGuidance("cam", weight=2.0)
        MaskGuidance(kind='cam', weight=2.0, layer=None)
    """

    kind: str = "cam"
    weight: float = 1.0
    layer: str | tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in GUIDANCE_KINDS:
            raise ModelError(f"Expected guidance kind {' or '.join(map(repr, GUIDANCE_KINDS))}, got {self.kind!r}.")
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ModelError(f"Expected a guidance weight >= 0, got {w!r}. Try 1.0.")

    @classmethod
    def coerce(cls, value: MaskGuidance | str | None) -> MaskGuidance | None:
        """``None``, a kind name (default weight) or a :class:`MaskGuidance` -> a :class:`MaskGuidance` or ``None``.

        Raises:
            ModelError: Anything else.
        """
        if value is None or isinstance(value, MaskGuidance):
            return value
        if isinstance(value, str):
            return cls(kind=value)
        raise ModelError(f"Expected guidance to be None, 'cam', 'gradients' or a MaskGuidance, got {value!r}.")
