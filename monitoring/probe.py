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
import sys
import time
from typing import Any

from monitoring import conf, metrics

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
    """Sizes of the bounded in-memory buffers of the watched objects, by buffer."""
    sizes: dict[str, dict[str, int]] = {}
    engine = metrics.watched.get("engine")
    if engine is not None:
        sessions = list(getattr(engine, "sessions", {}).values())
        packets = sum(len(getattr(session, "_outbox", ())) for session in sessions)
        queued = sum(int(getattr(session, "_outbox_bytes", 0)) for session in sessions)
        sizes["engine_sessions"] = {"items": len(sessions)}
        sizes["polling_outbox"] = {"items": packets, "bytes": queued}
        acks = 0
        for session in sessions:
            connection = getattr(session, "attachment", None)
            for socket in list(getattr(connection, "sockets", {}).values()):
                acks += len(getattr(socket, "_acks", ()))
        sizes["pending_acks"] = {"items": acks}
        relay = getattr(engine, "relay", None)
        if relay is not None:  # polling requests relayed to or from other workers
            sizes["relay_waiting"] = {"items": len(getattr(relay, "_waiting", ()))}
            sizes["relay_serving"] = {"items": len(getattr(relay, "_serving", ()))}
    sockets = metrics.watched.get("sockets")
    if sockets is not None:
        sizes["handler_tasks"] = {"items": len(getattr(sockets, "_tasks", ()))}
        fanout = getattr(sockets, "fanout", None)
        if fanout is not None:
            sizes["rooms"] = {"items": len(getattr(fanout, "_members", {}))}
            sizes["room_subscriptions"] = {"items": len(getattr(fanout, "_subscribed", ()))}
        layer = getattr(fanout, "layer", None)
        channels = getattr(layer, "channels", None)
        if isinstance(channels, dict):  # the in-memory channel layer's queues
            sizes["channel_layer_queues"] = {"items": sum(queue.qsize() for queue in list(channels.values()))}
    # Queues of other modules, read only if those modules are in use (never imported from here).
    writer = getattr(sys.modules.get("chat.events.writer"), "writer", None)
    if writer is not None:
        sizes["message_writer_queue"] = {"items": int(getattr(writer, "queued", 0))}
    recorder = getattr(sys.modules.get("security.events"), "recorder", None)
    if recorder is not None:
        sizes["security_event_queue"] = {"items": int(getattr(recorder, "pending", 0))}
    runner = getattr(sys.modules.get("chat.agents.runner"), "runner", None)
    if runner is not None:
        sizes["agent_runs_local"] = {"items": len(getattr(runner, "_active", ()))}
    state = metrics.local
    sizes["metrics_samples"] = {"items": sum(len(window) for window in state.samples.values())}
    sizes["metrics_sessions"] = {"items": len(state.joined)}
    from monitoring import service

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
            from monitoring import service

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
        from monitoring import checks

        try:
            await checks.check_dependencies()
        except Exception:
            logger.exception("dependency check failed")
