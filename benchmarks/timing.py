"""Timing rules shared by the benchmarks: best of N, garbage collector off, one monotonic clock."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def best_of(func: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Run ``func`` ``repeats`` times; return the shortest wall time in seconds and the last result.

    The minimum is the least disturbed run (other processes, page faults, frequency changes only ever
    add time). The collector is off while timing, as ``timeit`` does, so a collection triggered by
    an earlier allocation is not billed to the codec that happens to be running.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, found {repeats}")
    best = float("inf")
    result = None
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            result = None  # free the previous result before the next run allocates its own
            start = time.perf_counter()
            result = func()
            best = min(best, time.perf_counter() - start)
    finally:
        if was_enabled:
            gc.enable()
    return best, result  # type: ignore[return-value]
