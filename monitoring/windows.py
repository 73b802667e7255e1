"""Bounded in-process rolling windows: event counts per second and recent samples.

Both structures are fixed-size, so memory does not grow with traffic, and
adding to them is O(1) with no lock: they are written from the event loop
only.  Readers on other threads take a snapshot with ``list(...)``, which
the GIL makes atomic for these C-level containers.  Every method takes the
time as an argument (``time.monotonic()`` seconds) so tests drive a fake
clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Iterable


class RateCounter:
    """How many events happened in each of the last ``seconds`` whole seconds.

    A ring of per-second buckets: ``add`` is O(1); ``count`` over a window
    is O(window).  Exact, however high the rate, unlike a log of timestamps.
    """

    __slots__ = ("seconds", "_counts", "_stamps", "total")

    def __init__(self, seconds: int) -> None:
        self.seconds = max(2, int(seconds))
        self._counts = [0] * self.seconds
        self._stamps = [-1] * self.seconds
        #: Everything ever added (the process's lifetime).
        self.total = 0

    def add(self, now: float, amount: int = 1) -> None:
        second = int(now)
        index = second % self.seconds
        if self._stamps[index] != second:
            self._stamps[index] = second
            self._counts[index] = amount
        else:
            self._counts[index] += amount
        self.total += amount

    def count(self, now: float, window_s: float) -> int:
        """Events in the last ``window_s`` seconds, the current second included."""
        current = int(now)
        oldest = current - min(int(math.ceil(window_s)), self.seconds) + 1
        stamps, counts = list(self._stamps), list(self._counts)
        return sum(c for s, c in zip(stamps, counts) if oldest <= s <= current)

    def rate(self, now: float, window_s: float) -> float:
        """Events per second over the window."""
        return self.count(now, window_s) / window_s if window_s > 0 else 0.0


class SampleWindow:
    """The most recent ``maxlen`` samples with their times, for averages and percentiles.

    At high rates the window is the last ``maxlen`` samples rather than the
    full time window; :meth:`stats` says how many samples it used.
    """

    __slots__ = ("_samples", "maxlen", "total_count", "total_sum")

    def __init__(self, maxlen: int = 4096) -> None:
        self.maxlen = maxlen
        self._samples: deque[tuple[float, float]] = deque(maxlen=maxlen)
        self.total_count = 0
        self.total_sum = 0.0

    def add(self, now: float, value: float) -> None:
        self._samples.append((now, value))
        self.total_count += 1
        self.total_sum += value

    def __len__(self) -> int:
        return len(self._samples)

    def values(self, now: float, window_s: float) -> list[float]:
        cutoff = now - window_s
        return [v for t, v in list(self._samples) if t > cutoff]

    def stats(self, now: float, window_s: float) -> Stats:
        return Stats.of(self.values(now, window_s))


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (``q`` in 0..100)."""
    if not ordered:
        return 0.0
    rank = max(1, int(math.ceil(q / 100 * len(ordered))))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Stats:
    count: int = 0
    avg: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max: float = 0.0

    @classmethod
    def of(cls, values: Iterable[float]) -> Stats:
        ordered = sorted(values)
        if not ordered:
            return cls()
        return cls(
            count=len(ordered),
            avg=sum(ordered) / len(ordered),
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            max=ordered[-1],
        )

    def scaled(self, factor: float, digits: int = 3) -> dict[str, float | int]:
        """As a dict, values multiplied by ``factor`` (e.g. seconds to milliseconds)."""
        return {
            "count": self.count,
            "avg": round(self.avg * factor, digits),
            "p50": round(self.p50 * factor, digits),
            "p95": round(self.p95 * factor, digits),
            "p99": round(self.p99 * factor, digits),
            "max": round(self.max * factor, digits),
        }
