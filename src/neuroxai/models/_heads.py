"""What a classifier's output means: its head (softmax, logits, independent sigmoids, one sigmoid unit).

A model's last layer decides how its numbers become class probabilities, and
which scores gradients should be taken of. Four heads are known:

- ``"softmax"``: K >= 2 mutually exclusive classes; the output is their
  probabilities (they sum to 1). Gradients are taken of the pre-softmax
  scores where the softmax can be reached.
- ``"logits"``: the output is raw scores. K >= 2: exclusive classes,
  probabilities are their softmax. One unit: the logit of the positive
  class of a binary problem (probability ``sigmoid(z)``; two classes).
- ``"sigmoid"``: K >= 2 independent (multi-label) scores, each a
  probability on its own; they need not sum to 1.
- ``"binary"``: one sigmoid unit, the probability of the positive class;
  shown as two classes ``[1 - p, p]``.

:func:`neuroxai.models.detect_head` reads the head from the last layer;
users state it where it cannot be read (``head=`` on
:class:`~neuroxai.Explainer`, :func:`neuroxai.load` and the ``predict``
command).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np

from neuroxai.errors import ModelError, NeuroxaiError

__all__ = ["HEADS", "Head", "check_head", "head_classes", "output_probabilities"]

#: What a model's output means (see the module text).
Head = Literal["softmax", "logits", "sigmoid", "binary"]
#: Every head, in documentation order.
HEADS: tuple[Head, ...] = get_args(Head)


def check_head(head: Any, units: int | None = None, *, name: str = "head", error: type[NeuroxaiError] = ModelError) -> Head:
    """Validate a head against the number of output units.

    Args:
        head: One of :data:`HEADS`.
        units: The model output's last dimension (``None``: not checked).
        name: What the value is called in the error message (e.g. ``"head of model 'net'"``).
        error: Exception class raised on a bad value.

    Returns:
        The head; ``"sigmoid"`` on one unit comes back as ``"binary"``.

    Raises:
        ModelError: (or ``error``) not a known head, or a head that does not fit ``units``.

    Example:
        >>> check_head("sigmoid", 1)
        'binary'
    """
    if not isinstance(head, str) or head not in HEADS:
        raise error(f"{name} must be one of {', '.join(HEADS)}; got {head!r}.")
    if units is None:
        return head
    if head == "sigmoid" and units == 1:
        return "binary"
    if head == "binary" and units != 1:
        raise error(
            f"{name} 'binary' means one sigmoid output unit, but the output has {units}; use 'sigmoid' for "
            "independent scores or 'softmax' for exclusive classes."
        )
    if head == "softmax" and units < 2:
        raise error(
            f"{name} 'softmax' needs at least 2 output units, but the output has {units}; use 'binary' for one "
            "sigmoid unit or 'logits' for one raw score."
        )
    return head


def head_classes(head: Head, units: int) -> int:
    """Number of classes a head shows: two for a one-unit output (negative, positive), else ``units``.

    Example:
        >>> head_classes("binary", 1), head_classes("softmax", 4)
        (2, 4)
    """
    return 2 if units == 1 and head in ("binary", "logits") else int(units)


def output_probabilities(raw: Any, head: Head) -> np.ndarray:
    """Class probabilities ``[N, C]`` from a model's raw outputs ``[N, K]``, as the head says.

    ``"softmax"`` and ``"sigmoid"`` outputs are already probabilities; ``"logits"`` are
    softmaxed (one unit: ``[1 - sigmoid(z), sigmoid(z)]``); ``"binary"`` becomes ``[1 - p, p]``.

    Args:
        raw: The model's outputs ``[N, K]`` (or ``[N]`` for one unit).
        head: The model's head.

    Returns:
        float32 ``[N, C]`` with ``C = head_classes(head, K)``.

    Example:
        >>> output_probabilities(np.array([[0.0]]), "logits").tolist()
        [[0.5, 0.5]]
    """
    out = np.asarray(raw, dtype=np.float64)
    if out.ndim == 1:
        out = out[:, None]
    if out.shape[1] == 1 and head in ("binary", "logits", "sigmoid"):
        p = out[:, 0] if head != "logits" else 1.0 / (1.0 + np.exp(-np.clip(out[:, 0], -60.0, 60.0)))
        two: np.ndarray = np.stack([1.0 - p, p], axis=1).astype(np.float32)
        return two
    if head == "logits":
        z = out - out.max(axis=1, keepdims=True)
        e = np.exp(z)
        soft: np.ndarray = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        return soft
    same: np.ndarray = out.astype(np.float32)
    return same
