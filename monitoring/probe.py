"""The periodic probe: event-loop delay, process resources, buffer sizes, history and checks.

One asyncio task per worker process, started lazily by the first hook or
monitoring request that runs on the event loop (daphne has no lifespan
events).  Every ``CHAT_LOOP_PROBE_INTERVAL_MS`` it sleeps and measures how
late it woke up: that overshoot is the event-loop delay, the time callbacks
waited behind whatever held the loop.  On slower cadences it samples memory
and CPU, measures the in-memory buffers, appends a point to the dashboard
history and re-checks the database and Redis.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from typing import Any

from monitoring import checks, conf, metrics, registry, service

logger = logging.getLogger(__name__)

_task: asyncio.Task[None] | None = None
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def ensure_started() -> None:
    """Start the probe on the running loop unless it already runs there (cheap when it does)."""
    global _task
    task = _task
    if task is not None and not task.done():
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    _task = loop.create_task(Probe().run(), name="monitoring-probe")


def running() -> bool:
    return _task is not None and not _task.done()


async def stop() -> None:
    global _task
    task, _task = _task, None
    if task is not None:
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass


def resident_memory_bytes() -> int:
    """Current RSS from ``/proc`` (Linux); the peak RSS where ``/proc`` is missing."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def buffer_sizes() -> dict[str, dict[str, int]]:
    """Sizes of the bounded in-memory buffers: the application's (:mod:`monitoring.registry`) and our own."""
    sizes = registry.buffer_sizes()
    state = metrics.local
    sizes["metrics_samples"] = {"items": sum(len(window) for window in state.samples.values())}
    sizes["metrics_sessions"] = {"items": len(state.joined)}
    sizes["metrics_history"] = {"items": len(service.history)}
    return sizes


class Probe:
    def __init__(self) -> None:
        config = conf.get()
        self.interval = config.probe_interval_ms / 1000
        self.history_every = config.history_interval_s
        self.check_every = config.check_interval_s
        self.window = config.window_s
        self._cpu = time.process_time()
        self._wall = time.monotonic()
        self._next_sample = 0.0
        self._next_history = time.monotonic() + self.history_every
        self._next_check = 0.0
        self._checking: asyncio.Task[Any] | None = None

    async def run(self) -> None:
        self.sample_process()
        while True:
            started = time.monotonic()
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            delay = max(0.0, now - started - self.interval)
            metrics.LOOP_DELAY.observe(delay)
            metrics.local.samples["loop_delay"].add(now, delay)
            try:
                self.tick(now)
            except Exception:
                logger.exception("monitoring probe failed; continuing")

    def tick(self, now: float) -> None:
        window = metrics.local.samples["loop_delay"].values(now, self.window)
        metrics.LOOP_DELAY_MAX.set(max(window) if window else 0.0)
        if now >= self._next_sample:
            self._next_sample = now + 1.0
            self.sample_process()
        if now >= self._next_check and (self._checking is None or self._checking.done()):
            self._next_check = now + self.check_every
            self._checking = asyncio.get_running_loop().create_task(self._check())
        if now >= self._next_history:
            self._next_history = now + self.history_every
            self.sample_buffers()
            service.record_history(now)

    def sample_process(self) -> None:
        cpu, wall = time.process_time(), time.monotonic()
        used, elapsed = cpu - self._cpu, wall - self._wall
        self._cpu, self._wall = cpu, wall
        rss = resident_memory_bytes()
        metrics.MEMORY.set(rss)
        if used > 0:
            metrics.CPU_SECONDS.inc(used)
        ratio = used / elapsed if elapsed > 0 else 0.0
        metrics.CPU_RATIO.set(ratio)
        metrics.local.process = {"rss_bytes": rss, "cpu_ratio": ratio, "cpu_seconds": cpu}

    def sample_buffers(self) -> None:
        sizes = buffer_sizes()
        for name, values in sizes.items():
            metrics.BUFFER_ITEMS.labels(name).set(values.get("items", 0))
            if "bytes" in values:
                metrics.BUFFER_BYTES.labels(name).set(values["bytes"])
        metrics.local.buffers = sizes

    async def _check(self) -> None:
        try:
            await checks.check_dependencies()
        except Exception:
            logger.exception("dependency check failed")
