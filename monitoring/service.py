"""The metrics service: current numbers, a windowed summary, health and recommendations.

The seed's ``chatMetricsCollector`` (``getCurrentMetrics``,
``getMetricsSummary``, ``getHealthStatus``) and
``chatPerformanceOptimizer.getOptimizationRecommendations``, computed from
this worker's rolling windows (:data:`monitoring.metrics.local`) and the
dependency checks (:mod:`monitoring.checks`).

Health is a set of checks, each ``healthy``, ``degraded`` or ``unhealthy``
against documented thresholds (``docs/monitoring.md``, settings in
:mod:`monitoring.conf`).  The status is the worst check's level; the score
starts at 100 and loses :data:`PENALTY` points per check that is not healthy
(floored at 0); ``issues`` has one sentence per such check, with the
measured number and the threshold it crossed.

Every recommendation carries the number that triggered it (``value``) and
the line it crossed (``threshold``), so it can be checked against
``/metrics``.

Everything here is computed on demand from bounded data; :func:`record_history`
adds one point per ``CHAT_METRICS_HISTORY_INTERVAL_S`` (called by the probe)
for the dashboard's last hour.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from django.conf import settings

from monitoring import checks, conf, metrics, registry
from monitoring.checks import CheckResult
from monitoring.windows import Stats

#: Score lost per check at each level.
PENALTY = {"healthy": 0, "degraded": 15, "unhealthy": 50}
LEVEL_ORDER = {"healthy": 0, "degraded": 1, "unhealthy": 2}
#: Percentiles and ratios need at least this many samples in the window to count.
MIN_SAMPLES = 20
#: A dependency slower than this (ms) is degraded even though it answered.
SLOW_DATABASE_MS = 1000.0
SLOW_REDIS_MS = 500.0

MB = 1024 * 1024


@dataclass
class Check:
    name: str
    status: str
    value: float | None
    threshold: float | None
    unit: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "value": self.value,
            "threshold": self.threshold,
            "unit": self.unit,
            "message": self.message,
        }


@dataclass
class HealthScore:
    """The seed's ``HealthScore``: ``{status, issues, score}``, plus the checks behind it."""

    status: str
    score: int
    issues: list[str]
    checks: list[Check] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "score": self.score,
            "issues": list(self.issues),
            "checks": [check.as_dict() for check in self.checks],
        }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _ratio_pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


class MetricsService:
    def __init__(
        self,
        state: Callable[[], metrics.LocalState] = lambda: metrics.local,
        config: Callable[[], conf.MonitoringConfig] = conf.get,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._config = config
        self.clock = clock

    # --- current numbers -----------------------------------------------------------------

    def current(self) -> dict[str, Any]:
        """What is true right now on this worker (the seed's ``getCurrentMetrics``)."""
        state = self._state()
        active = dict(state.active)
        sessions = list(state.session_members.items())
        rates = state.rates
        return {
            "worker": _worker_id(),
            "pid": os.getpid(),
            "uptime_s": round(self.clock() - state.started, 1),
            "connections": {"active": {**active, "total": sum(active.values())}},
            "sessions": {"active": len(sessions), "members": sum(count for _, count in sessions)},
            "totals": {name: counter.total for name, counter in rates.items()},
            "agent_runs_active": state.agent_runs_active,
            "process": dict(state.process),
            "buffers": {name: dict(values) for name, values in list(state.buffers.items())},
            "housekeeping": {**state.housekeeping, "purged": dict(state.housekeeping["purged"])},
        }

    # --- summary -------------------------------------------------------------------------

    def summary(self, window_s: float | None = None) -> dict[str, Any]:
        """Rates, averages and percentiles over the window (the seed's ``getMetricsSummary``)."""
        state = self._state()
        window = float(window_s or self._config().window_s)
        now = self.clock()

        def rate(name: str) -> float:
            return round(state.rates[name].rate(now, window), 3)

        def count(name: str) -> int:
            return state.rates[name].count(now, window)

        def stats(name: str) -> Stats:
            return state.samples[name].stats(now, window)

        size, fanout = stats("message_size"), stats("fanout")
        duration = stats("connection_duration")
        active = dict(state.active)
        total_active = sum(active.values())
        return {
            "window_s": window,
            "worker": _worker_id(),
            "connections": {
                "active": {**active, "total": total_active},
                "opened": count("opened"),
                "closed": count("closed"),
                "errors": count("connection_errors"),
                "opened_per_s": rate("opened"),
                "error_ratio_pct": _ratio_pct(count("connection_errors"), count("opened") + count("connection_errors")),
                "duration_s": {key: round(value, 3) for key, value in duration.scaled(1).items()},
            },
            "messages": {
                "received": count("received"),
                "delivered": count("delivered"),
                "broadcasts": count("broadcasts"),
                "received_per_s": rate("received"),
                "delivered_per_s": rate("delivered"),
                "broadcasts_per_s": rate("broadcasts"),
                "size_bytes": size.scaled(1, 1),
                "processing_ms": stats("processing").scaled(1000),
                "fanout": fanout.scaled(1, 2),
                "client_errors": count("client_errors"),
                "internal_errors": count("internal_errors"),
                "dropped": count("dropped"),
                "dropped_since_start": dict(state.dropped),
                "slow_clients_disconnected": count("slow_clients"),
            },
            "latency": {
                "channel_layer_send_ms": stats("layer_send").scaled(1000),
                "channel_layer_errors": count("layer_errors"),
                "event_loop_delay_ms": stats("loop_delay").scaled(1000),
            },
            "sessions": {
                "active": len(state.session_members),
                "members": sum(state.session_members.values()),
                "joins": count("joins"),
                "leaves": count("leaves"),
                "joins_per_s": rate("joins"),
                "per_workspace": local_sessions_per_workspace(state),
            },
            "security": {
                "rate_limited": count("rate_limited"),
                "security_events": count("security_events"),
            },
            "agents": {
                "runs": count("agent_runs"),
                "errors": count("agent_errors"),
                "active": state.agent_runs_active,
                "duration_ms": stats("agent_duration").scaled(1000),
                "first_chunk_ms": stats("agent_first_chunk").scaled(1000),
            },
            "process": dict(state.process),
        }

    # --- health --------------------------------------------------------------------------

    def health(self, dependencies: Mapping[str, CheckResult] | None = None) -> HealthScore:
        """The seed's ``getHealthStatus``: ``{status, score, issues}``, with the checks behind it."""
        config = self._config()
        state = self._state()
        now = self.clock()
        window = float(config.window_s)
        checks: list[Check] = []

        loop = state.samples["loop_delay"].values(now, window)
        if loop:
            worst = max(loop) * 1000
            level = config.loop_delay_ms.level(worst)
            checks.append(
                Check(
                    "event_loop_delay",
                    level,
                    round(worst, 1),
                    _threshold(config.loop_delay_ms, level),
                    "ms",
                    f"Event loop delayed up to {worst:.0f} ms in the last {window:.0f} s"
                    f" (degraded at {config.loop_delay_ms.degraded:.0f} ms, unhealthy at"
                    f" {config.loop_delay_ms.unhealthy:.0f} ms).",
                )
            )

        rss = state.process.get("rss_bytes")
        if rss:
            rss_mb = rss / MB
            level = config.memory_mb.level(rss_mb)
            checks.append(
                Check(
                    "memory",
                    level,
                    round(rss_mb, 1),
                    _threshold(config.memory_mb, level),
                    "MB",
                    f"Resident memory {rss_mb:.0f} MB (degraded at {config.memory_mb.degraded:.0f} MB,"
                    f" unhealthy at {config.memory_mb.unhealthy:.0f} MB).",
                )
            )

        for name, sample, levels, label in (
            ("processing_p95", "processing", config.processing_p95_ms, "Message processing"),
            ("channel_layer_p95", "layer_send", config.layer_p95_ms, "Channel-layer send"),
        ):
            values = state.samples[sample].stats(now, window)
            if values.count >= MIN_SAMPLES:
                p95 = values.p95 * 1000
                level = levels.level(p95)
                checks.append(
                    Check(
                        name,
                        level,
                        round(p95, 2),
                        _threshold(levels, level),
                        "ms",
                        f"{label} p95 {p95:.1f} ms over {values.count} samples (degraded at"
                        f" {levels.degraded:.0f} ms, unhealthy at {levels.unhealthy:.0f} ms).",
                    )
                )

        rates = state.rates
        errors, opened = rates["connection_errors"].count(now, window), rates["opened"].count(now, window)
        internal, received = rates["internal_errors"].count(now, window), rates["received"].count(now, window)
        layer_errors, broadcasts = rates["layer_errors"].count(now, window), rates["broadcasts"].count(now, window)
        for name, part, whole, label in (
            ("connection_error_ratio", errors, opened + errors, "Connection errors"),
            ("internal_error_ratio", internal, received, "Internal handler errors"),
            ("channel_layer_error_ratio", layer_errors, broadcasts + layer_errors, "Channel-layer send errors"),
        ):
            if whole >= MIN_SAMPLES or (part >= MIN_SAMPLES):
                pct = _ratio_pct(part, max(whole, part))
                level = config.error_ratio_pct.level(pct)
                checks.append(
                    Check(
                        name,
                        level,
                        pct,
                        _threshold(config.error_ratio_pct, level),
                        "%",
                        f"{label}: {part} of {max(whole, part)} in the last {window:.0f} s ({pct:.1f}%;"
                        f" degraded at {config.error_ratio_pct.degraded:g}%, unhealthy at"
                        f" {config.error_ratio_pct.unhealthy:g}%).",
                    )
                )

        checks.append(_dropped_check(state, now, window))

        for result in (dependencies or {}).values():
            checks.append(_dependency_check(result))

        failing = [check for check in checks if check.status != "healthy"]
        status = max((check.status for check in checks), key=LEVEL_ORDER.__getitem__, default="healthy")
        score = max(0, 100 - sum(PENALTY[check.status] for check in checks))
        return HealthScore(status, score, [check.message for check in failing], checks)

    # --- recommendations -----------------------------------------------------------------

    def recommendations(
        self, summary: Mapping[str, Any] | None = None, dependencies: Mapping[str, CheckResult] | None = None
    ) -> list[dict[str, Any]]:
        """What to change, each with the measured number that triggered it (the seed's optimizer)."""
        summary = summary or self.summary()
        config = self._config()
        found: list[dict[str, Any]] = []

        def add(rec_id: str, severity: str, metric: str, value: float, threshold: float, message: str) -> None:
            found.append(
                {
                    "id": rec_id,
                    "severity": severity,
                    "metric": metric,
                    "value": round(value, 3),
                    "threshold": threshold,
                    "message": message,
                }
            )

        loop = summary["latency"]["event_loop_delay_ms"]
        if loop["count"] and loop["max"] >= config.loop_delay_ms.degraded:
            add(
                "event-loop-blocked",
                "critical" if loop["max"] >= config.loop_delay_ms.unhealthy else "warning",
                "event_loop_delay_ms.max",
                loop["max"],
                config.loop_delay_ms.degraded,
                f"The event loop was blocked for up to {loop['max']:.0f} ms: move blocking work (synchronous"
                " database calls, CPU-heavy parsing) off the loop with database_sync_to_async or a worker.",
            )
        elif loop["count"] >= MIN_SAMPLES and loop["p95"] >= 50:
            add(
                "event-loop-busy",
                "warning",
                "event_loop_delay_ms.p95",
                loop["p95"],
                50,
                f"Event-loop delay p95 is {loop['p95']:.0f} ms: the worker is saturated; add worker processes.",
            )

        cpu = summary["process"].get("cpu_ratio")
        if cpu is not None and cpu >= 0.8:
            add(
                "cpu-saturated",
                "warning",
                "process.cpu_ratio",
                cpu,
                0.8,
                f"The worker used {cpu * 100:.0f}% of a core over the last second: add worker processes"
                " (one per core).",
            )

        rss = summary["process"].get("rss_bytes")
        if rss and rss / MB >= 0.75 * config.memory_mb.degraded:
            add(
                "memory-high",
                "warning",
                "process.rss_mb",
                rss / MB,
                0.75 * config.memory_mb.degraded,
                f"Resident memory is {rss / MB:.0f} MB, near the {config.memory_mb.degraded:.0f} MB threshold:"
                " check the buffer sizes below and lower CHAT_MAX_PAYLOAD if polling outboxes are large.",
            )

        processing = summary["messages"]["processing_ms"]
        if processing["count"] >= MIN_SAMPLES and processing["p95"] >= 100:
            add(
                "processing-slow",
                "warning",
                "messages.processing_ms.p95",
                processing["p95"],
                100,
                f"Processing p95 is {processing['p95']:.0f} ms from receipt to broadcast: check database"
                " latency and connection limits (CONN_MAX_AGE, pool size).",
            )

        layer = summary["latency"]["channel_layer_send_ms"]
        if layer["count"] >= MIN_SAMPLES and layer["p95"] >= 20:
            add(
                "channel-layer-slow",
                "warning",
                "latency.channel_layer_send_ms.p95",
                layer["p95"],
                20,
                f"Channel-layer sends take {layer['p95']:.0f} ms at p95: put Redis next to the workers and"
                " check its load.",
            )

        size = summary["messages"]["size_bytes"]
        if size["count"] >= MIN_SAMPLES and size["avg"] >= 16384:
            add(
                "large-messages",
                "info",
                "messages.size_bytes.avg",
                size["avg"],
                16384,
                f"Received events average {size['avg'] / 1024:.0f} KB: send attachments by URL or compress"
                " them; large frames hold the loop while they are parsed.",
            )

        fanout = summary["messages"]["fanout"]
        if fanout["count"] >= MIN_SAMPLES and fanout["avg"] >= 200:
            add(
                "large-fanout",
                "info",
                "messages.fanout.avg",
                fanout["avg"],
                200,
                f"Each broadcast reaches {fanout['avg']:.0f} local sockets on average: batch or throttle"
                " typing and presence updates in large sessions.",
            )

        connections = summary["connections"]
        active = connections["active"]
        if active.get("total", 0) >= 10 and active.get("polling", 0) / active["total"] >= 0.5:
            share = 100.0 * active["polling"] / active["total"]
            add(
                "polling-share",
                "info",
                "connections.active.polling_pct",
                share,
                50,
                f"{share:.0f}% of connections use long-polling: check that proxies forward WebSocket upgrades"
                " (deploy/nginx).",
            )
        if active.get("total", 0) >= 5000:
            add(
                "many-connections",
                "info",
                "connections.active.total",
                active["total"],
                5000,
                f"{active['total']} connections on one worker: add worker processes behind the proxy.",
            )
        attempts = connections["opened"] + connections["errors"]
        if attempts >= MIN_SAMPLES and connections["error_ratio_pct"] >= 1:
            add(
                "connection-errors",
                "warning",
                "connections.error_ratio_pct",
                connections["error_ratio_pct"],
                1,
                f"{connections['error_ratio_pct']:.1f}% of connection attempts failed: see"
                " chat_connection_errors_total by reason (origins, expired tokens, proxies).",
            )

        limited = summary["security"]["rate_limited"]
        if limited >= 10:
            add(
                "rate-limits",
                "info",
                "security.rate_limited",
                limited,
                10,
                f"{limited} operations were refused by rate limits in the last {summary['window_s']:.0f} s:"
                " check clients honour retryAfter, or raise the limits for legitimate load.",
            )

        outbox = self._state().buffers.get("polling_outbox", {}).get("bytes", 0)
        if outbox >= MB:
            add(
                "polling-backlog",
                "warning",
                "buffers.polling_outbox.bytes",
                outbox,
                MB,
                f"{outbox / MB:.1f} MB wait for polling clients that are not polling: they are slow or gone;"
                " the per-session cap closes them at 4 MB.",
            )

        for result in (dependencies or {}).values():
            if result.ok and result.name == "database" and result.latency_ms >= 200:
                add(
                    "database-slow",
                    "warning",
                    "dependencies.database.latency_ms",
                    result.latency_ms,
                    200,
                    f"A database round trip takes {result.latency_ms:.0f} ms: check the database host and network.",
                )
        return found

    # --- history ---------------------------------------------------------------------------

    def history_point(self, now: float, since: Mapping[str, int] | None, elapsed: float) -> dict[str, Any]:
        state = self._state()
        interval = max(elapsed, 1e-6)
        totals = {name: counter.total for name, counter in state.rates.items()}
        previous = since or totals

        def per_s(name: str) -> float:
            return round((totals[name] - previous.get(name, totals[name])) / interval, 3)

        processing = state.samples["processing"].stats(now, interval)
        layer = state.samples["layer_send"].stats(now, interval)
        loop = state.samples["loop_delay"].stats(now, interval)
        health = self.health(dict(_last_checks()))
        active = dict(state.active)
        return {
            "t": int(time.time() * 1000),
            "connections": {**active, "total": sum(active.values())},
            "received_per_s": per_s("received"),
            "delivered_per_s": per_s("delivered"),
            "processing_ms": {"p50": _ms(processing.p50), "p95": _ms(processing.p95), "p99": _ms(processing.p99)},
            "layer_ms": {"p50": _ms(layer.p50), "p95": _ms(layer.p95), "p99": _ms(layer.p99)},
            "loop_delay_ms": {"avg": _ms(loop.avg), "max": _ms(loop.max)},
            "health": {"status": health.status, "score": health.score},
            "rss_mb": round(state.process.get("rss_bytes", 0) / MB, 1),
            "_totals": totals,
        }


def _threshold(levels: conf.Levels, level: str) -> float:
    return levels.unhealthy if level == "unhealthy" else levels.degraded


def _dropped_check(state: metrics.LocalState, now: float, window: float) -> Check:
    """Messages lost on their way to clients or other workers: always shown, degraded while any were lost recently."""
    dropped = state.rates["dropped"].count(now, window)
    since_start = ", ".join(f"{where} {count}" for where, count in sorted(state.dropped.items())) or "none"
    return Check(
        "dropped_messages",
        "degraded" if dropped else "healthy",
        dropped,
        0,
        "messages",
        f"{dropped} message(s) dropped in the last {window:.0f} s (since start: {since_start});"
        f" {state.rates['slow_clients'].count(now, window)} client(s) disconnected for not reading.",
    )


def _dependency_check(result: CheckResult) -> Check:
    label = {"database": "Database", "channel_layer": f"Channel layer ({result.backend})"}.get(result.name, result.name)
    if not result.ok:
        return Check(
            result.name,
            "unhealthy",
            None,
            None,
            "",
            f"{label} unreachable ({result.error or 'no answer'}).",
        )
    slow = SLOW_DATABASE_MS if result.name == "database" else SLOW_REDIS_MS
    if result.latency_ms >= slow:
        return Check(
            result.name,
            "degraded",
            result.latency_ms,
            slow,
            "ms",
            f"{label} answered in {result.latency_ms:.0f} ms (degraded at {slow:.0f} ms).",
        )
    return Check(result.name, "healthy", result.latency_ms, slow, "ms", f"{label} reachable.")


def _last_checks() -> dict[str, CheckResult]:
    return dict(checks.last)


def _worker_id() -> str:
    return str(getattr(getattr(settings, "CHAT", None), "worker_id", "") or f"pid-{os.getpid()}")


def local_sessions_per_workspace(state: metrics.LocalState) -> dict[str, Any]:
    """Sessions with local members, per workspace (this worker's view)."""
    per_workspace: dict[str, list[int]] = {}
    for (workspace, _session), members in list(state.session_members.items()):
        entry = per_workspace.setdefault(workspace, [0, 0])
        entry[0] += 1
        entry[1] += members
    return _distribution("worker", {slug: (s, m) for slug, (s, m) in per_workspace.items()})


def sessions_per_workspace() -> dict[str, Any]:
    """Sessions with members per workspace across every worker, from the presence table.

    The application provides the table (:func:`monitoring.registry.set_workspace_sessions`;
    the chat reads its presence table, synchronously: the API view runs this
    on a thread).  Falls back to this worker's own view when there is no
    table or it cannot be read.
    """
    try:
        table = registry.workspace_sessions()
    except Exception:
        table = None
    if table is None:
        return local_sessions_per_workspace(metrics.local)
    return _distribution("database", table)


def _distribution(source: str, table: Mapping[str, tuple[int, int]], top: int = 10) -> dict[str, Any]:
    counts = [sessions for sessions, _ in table.values()]
    ranked = sorted(table.items(), key=lambda item: (-item[1][0], item[0]))[:top]
    return {
        "source": source,
        "workspaces": len(table),
        "sessions": sum(counts),
        "distribution": {k: v for k, v in Stats.of(counts).scaled(1, 2).items()},
        "top": [{"workspace": slug, "sessions": s, "members": m} for slug, (s, m) in ranked],
    }


# --- the process's service and history --------------------------------------------------------

service = MetricsService()
history: deque[dict[str, Any]] = deque(maxlen=720)
_last_totals: dict[str, Any] = {}


def record_history(now: float | None = None) -> dict[str, Any]:
    """Append one dashboard point (the probe calls this every history interval)."""
    global history
    config = conf.get()
    if history.maxlen != config.history_points:
        history = deque(history, maxlen=config.history_points)
    now = service.clock() if now is None else now
    elapsed = now - _last_totals.get("at", now - config.history_interval_s)
    point = service.history_point(now, _last_totals.get("totals"), elapsed)
    _last_totals["at"], _last_totals["totals"] = now, point.pop("_totals")
    history.append(point)
    metrics.HEALTH_SCORE.set(point["health"]["score"])
    return point
