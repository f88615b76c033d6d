"""Where a target layer's output lies on the input: a spatial feature map, or a token sequence on a grid.

Grad-CAM-family methods read one feature map and weigh its cells. Three kinds of layer give one:

- a **2-D feature map** ``(batch, height, width, channels)`` of an image model (input ``(batch, H, W, C)``);
- a **3-D feature map** ``(batch, depth, height, width, channels)`` of a volume model (input
  ``(batch, D, H, W, C)``, ``Conv3D`` networks);
- a **token sequence** ``(batch, tokens, channels)`` of a transformer (ViT, Swin, DeiT ...): the patch
  tokens lie on a grid of the input, row-major, after or before a few *extra* tokens (a class token,
  register tokens) that belong to no place of the image.

A :class:`FeatureLayout` says which, and :meth:`FeatureLayout.to_grid` turns the layer's output into a
map ``(batch, *grid, channels)``: the identity for feature maps; for tokens, the extra tokens dropped
and the patch tokens reshaped to their grid. Methods compute on that map, so one code path serves
convolutional and transformer models alike.

How a token grid is found (:func:`neuroxai.models.token_layout`): the grid of the nearest spatial layer the tokens
come from (the patch embedding, or a Swin stage's window merge), when the token count fits it with at
most :data:`MAX_EXTRA_TOKENS` extra tokens; else the grid the input's size allows with the fewest extra
tokens (its sides divide the input's; at most :data:`MAX_INFERRED_EXTRA`). A grid that cannot be inferred is given by the user
(:class:`TokenGrid`, or ``token_grid=(rows, cols)`` on the Explainer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from neuroxai._records import Record
from neuroxai.errors import ExplainError

__all__ = [
    "MAX_EXTRA_TOKENS",
    "MAX_INFERRED_EXTRA",
    "ExtraPosition",
    "FeatureKind",
    "FeatureLayout",
    "TokenGrid",
    "check_token_grid",
    "grid_fits",
    "grid_from_input",
]

#: Most extra tokens (class + register tokens) beside the grid of the spatial layer the tokens come from; a given
#: :class:`TokenGrid` may have more.
MAX_EXTRA_TOKENS = 32
#: Most extra tokens when the grid is inferred from the input size alone (weaker evidence: fewer allowed).
MAX_INFERRED_EXTRA = 16
#: Where a token sequence's extra tokens sit: before the patch tokens (ViT, DeiT, DINOv2: class then registers) or after.
ExtraPosition = Literal["first", "last"]
#: What a target layer outputs: a spatial feature map, or a token sequence on a grid.
FeatureKind = Literal["spatial", "tokens"]


@dataclass(frozen=True)
class TokenGrid(Record):
    """How a token sequence ``(batch, tokens, channels)`` lies on the input, when it cannot be inferred.

    Attributes:
        grid: The patch grid, ``(rows, cols)`` for images or ``(depth, rows, cols)`` for volumes; patch
            tokens are in row-major order (the order ``Reshape`` and ``Conv2D`` patch embeddings give).
        extra_tokens: Tokens that belong to no patch (class, register or distillation tokens), dropped
            from the map; ``None``: the token count minus the grid's cells.
        extra_position: Whether the extra tokens come ``"first"`` (default) or ``"last"``.

    Example:
        >>> TokenGrid((14, 14), extra_tokens=1).grid
        (14, 14)
    """

    grid: tuple[int, ...]
    extra_tokens: int | None = None
    extra_position: ExtraPosition = "first"


def check_token_grid(value: Any) -> TokenGrid | None:
    """``token_grid=`` as given (``None``, ``(rows, cols)``, ``(depth, rows, cols)`` or a :class:`TokenGrid`), checked.

    Raises:
        ExplainError: Anything else: not 2 or 3 positive ints, a negative extra-token count, an unknown position.

    Example:
        >>> check_token_grid([7, 7])
        TokenGrid(grid=(7, 7), extra_tokens=None, extra_position='first')
    """
    if value is None:
        return None
    grid = value if isinstance(value, TokenGrid) else TokenGrid(tuple(value) if isinstance(value, (list, tuple)) else value)
    sides = grid.grid
    ok = (
        isinstance(sides, tuple)
        and len(sides) in (2, 3)
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sides)
    )
    if not ok:
        raise ExplainError(
            f"token_grid must be (rows, cols) or (depth, rows, cols) of positive integers, or a TokenGrid; got {value!r}. "
            "Example: token_grid=(14, 14) for a ViT-B/16 at 224 px."
        )
    extra = grid.extra_tokens
    if extra is not None and (isinstance(extra, bool) or not isinstance(extra, int) or extra < 0):
        raise ExplainError(f"TokenGrid.extra_tokens must be None or an integer >= 0; got {extra!r}.")
    if grid.extra_position not in ("first", "last"):
        raise ExplainError(f"TokenGrid.extra_position must be 'first' or 'last'; got {grid.extra_position!r}.")
    return grid


def grid_fits(grid: Sequence[int], tokens: int, input_size: Sequence[int | None], max_extra: int = MAX_EXTRA_TOKENS) -> bool:
    """Whether ``tokens`` patch-plus-extra tokens fit ``grid`` (at most ``max_extra`` extra) and the grid the input's shape.

    The grid must have the input's number of sides, and its cells must be about equally long on every
    side (input side / grid side within a factor 2 of each other; unknown input sides are not compared),
    which rules out a window-partitioned tensor ``(batch, windows, tokens per window, channels)``.
    """
    if len(grid) != len(input_size) or any(int(g) < 1 for g in grid):
        return False
    extra = int(tokens) - math.prod(int(g) for g in grid)
    if not 0 <= extra <= max_extra:
        return False
    strides = [int(s) / int(g) for s, g in zip(input_size, grid) if s is not None]
    return not strides or max(strides) <= 2.0 * min(strides)


def grid_from_input(
    tokens: int, input_size: Sequence[int | None], max_extra: int = MAX_EXTRA_TOKENS
) -> tuple[tuple[int, ...], int] | None:
    """The grid with the fewest extra tokens whose sides divide the input's sides in one common ratio, or ``None``.

    ``tokens = extra + prod(grid)`` and ``grid = input_size / patch`` for one integer patch side (square or
    cubic patches): a ViT-B/16 at 224 px has ``197 = 1 + 14 * 14`` tokens.

    Example:
        >>> grid_from_input(197, (224, 224))
        ((14, 14), 1)
    """
    if any(s is None for s in input_size) or tokens < 1:
        return None
    sizes = [int(s) for s in input_size if s is not None]
    for extra in range(0, min(max_extra, tokens - 1) + 1):
        cells = tokens - extra
        patch = (math.prod(sizes) / cells) ** (1.0 / len(sizes))
        for side in {math.floor(patch), math.ceil(patch)}:
            if side >= 1 and all(s % side == 0 for s in sizes) and math.prod(s // side for s in sizes) == cells:
                return tuple(s // side for s in sizes), extra
    return None


@dataclass(frozen=True)
class FeatureLayout(Record):
    """How a target layer's output maps onto the input (see the module text).

    Attributes:
        kind: ``"spatial"`` (a feature map ``(batch, *grid, channels)``) or ``"tokens"``
            (``(batch, tokens, channels)``).
        grid: The map's spatial sides (``None`` where the model leaves them free); for tokens the patch grid.
        tokens: The token count (tokens only; ``None`` for a feature map).
        extra_tokens: Tokens dropped from the map (class, register tokens).
        extra_position: Where the extra tokens sit: ``"first"`` or ``"last"``.
        source: How the grid was found: ``"feature map"``, ``"given"``, ``"layer <name>"`` (the spatial layer
            the tokens come from) or ``"input size"``.

    Example:
        >>> layout = FeatureLayout("tokens", (4, 4), tokens=17, extra_tokens=1, source="given")
        >>> layout.spatial_rank
        2
    """

    kind: FeatureKind
    grid: tuple[int | None, ...]
    tokens: int | None = None
    extra_tokens: int = 0
    extra_position: ExtraPosition = "first"
    source: str = "feature map"

    @property
    def spatial_rank(self) -> int:
        """2 for images, 3 for volumes."""
        return len(self.grid)

    def describe(self) -> str:
        """One line: ``"tokens (197) -> 14 x 14 grid (1 extra token first; from layer 'patch_embed')"``."""
        sides = " x ".join("?" if g is None else str(g) for g in self.grid)
        if self.kind == "spatial":
            return f"feature map {sides}"
        extra = f"{self.extra_tokens} extra token{'s' if self.extra_tokens != 1 else ''} {self.extra_position}"
        return f"tokens ({self.tokens}) -> {sides} grid ({extra}; from {self.source})"

    def to_grid(self, tensor: Any) -> Any:
        """The layer's output (or its gradient) as a map ``(batch, *grid, channels)``.

        A feature map comes back as it is; tokens lose their extra tokens and are reshaped, row-major.
        Written on ``keras.ops``: runs inside compiled steps on every backend.
        """
        if self.kind == "spatial":
            return tensor
        from keras import ops

        n = int(self.tokens or 0) - int(self.extra_tokens)
        if self.extra_tokens:
            tensor = tensor[:, self.extra_tokens :] if self.extra_position == "first" else tensor[:, :n]
        channels = tensor.shape[-1] if tensor.shape[-1] is not None else ops.shape(tensor)[-1]
        return ops.reshape(tensor, (-1, *(int(g) for g in self.grid if g is not None), channels))
