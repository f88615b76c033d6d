"""Progress bars for long work (audits, training data loads, explaining folders).

A thin wrapper over tqdm so every long loop in the library shows progress the
same way, and so callers can switch it off (``progress=False``) in tests,
scripts and notebooks. Bars go to stderr and are disabled automatically when
``NEUROXAI_NO_PROGRESS=1`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

__all__ = ["progress"]


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "img",
    enabled: bool = True,
    **kwargs: Any,
) -> Any:
    """Wrap ``iterable`` in a progress bar (or return a manual bar if ``iterable`` is None).

    Args:
        iterable: What to iterate over; ``None`` returns a bar to ``update()`` by hand.
        total: Number of items, when ``len(iterable)`` is unknown.
        desc: Short label shown before the bar.
        unit: Name of one item.
        enabled: ``False`` hides the bar (the iterable is still consumed normally).
        **kwargs: Passed to ``tqdm``.

    Returns:
        A tqdm object: iterate over it, or call ``update(n)`` and ``close()``.
    """
    disable = (not enabled) or os.environ.get("NEUROXAI_NO_PROGRESS") == "1"
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, leave=False, dynamic_ncols=True, **kwargs)
