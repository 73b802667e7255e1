"""Measuring what a call costs, for the tests that compare two costs as a ratio.

The CPU time of the calling thread, not the wall clock: other processes on a
busy machine delay a call without making it cost more, and a ratio of costs
is what the tests bound (screening and rendering stay linear).
"""

from __future__ import annotations

import time
from typing import Any, Callable


def best_cpu_time(runs: int, func: Callable[..., Any], *args: Any) -> float:
    """The least CPU time, in seconds, that ``func(*args)`` took over ``runs`` calls."""
    best = float("inf")
    for _ in range(runs):
        start = time.thread_time()
        func(*args)
        best = min(best, time.thread_time() - start)
    return max(best, 1e-6)
