"""One value per model object, built on first use and dropped with the model.

Compiled forward passes, perturbation steps and explanation functions are
built once per Keras model object. :class:`PerModel` holds them in a
weak-keyed map: an entry goes when its model is garbage-collected, so a loop
over many models does not keep them all alive. What a value holds must reach
the model only weakly (``weakref.ref``), or the entry would keep its own key alive.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["PerModel"]

T = TypeVar("T")
_MISSING = object()


class PerModel(Generic[T]):
    """A weak-keyed cache of one value per model object.

    Example:
        >>> class M: ...
        >>> cache: PerModel[int] = PerModel()
        >>> m = M()
        >>> cache.get(m, lambda model: 41) + 1
        42
        >>> cache.get(m, lambda model: 0)  # built once
        41
    """

    def __init__(self) -> None:
        self._values: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def get(self, model: Any, build: Callable[[Any], T]) -> T:
        """The value for ``model``, built by ``build(model)`` the first time it is asked for."""
        value = self._values.get(model, _MISSING)
        if value is _MISSING:
            value = build(model)
            self._values[model] = value
        return value  # type: ignore[no-any-return]
