"""Timing shared by the benchmark scripts (run as ``python benchmarks/<script>.py``: this folder is on the path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_time(fn: Callable[[], Any], repeats: int) -> float:
    """Seconds of the best of ``repeats`` runs of ``fn`` after one warm-up run (tracing, caches).

    The best run is the least disturbed one on a shared machine; ratios are taken between best runs
    measured side by side in one process.
    """
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
