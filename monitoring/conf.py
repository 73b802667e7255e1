"""Monitoring settings: parsed from the environment here, held on ``settings.CHAT.monitoring``.

``chatsite.config.load`` calls :func:`load` and keeps the result as
``Config.monitoring``; everything in :mod:`monitoring` reads it through
:func:`get`.  Until that field exists, :func:`get` parses the process
environment itself with the same function, so there is one parser and one
table of defaults either way.  ``docs/monitoring.md`` documents each
variable.

``PROMETHEUS_MULTIPROC_DIR`` is not read here: ``prometheus_client`` reads it
itself when it is first imported (see ``docs/monitoring.md``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

#: Shortest ops token accepted: it is a shared secret compared in constant time.
MIN_OPS_TOKEN_LENGTH = 24


@dataclass(frozen=True)
class Levels:
    """A (degraded, unhealthy) pair of thresholds; a value at or above one reaches that level."""

    degraded: float
    unhealthy: float

    def level(self, value: float) -> str:
        if value >= self.unhealthy:
            return "unhealthy"
        if value >= self.degraded:
            return "degraded"
        return "healthy"


@dataclass(frozen=True)
class MonitoringConfig:
    #: Bearer token that grants the monitoring API (``/api/v1/metrics/``,
    #: ``/api/v1/health/``) without a user; empty disables it.
    ops_token: str = ""
    #: ``/metrics`` answers anyone when true; otherwise it needs staff or the ops token.
    metrics_public: bool = True
    #: Workspaces (slugs) that get their own ``workspace`` label value; every
    #: other workspace is reported as ``other``.  Keep it short: each slug
    #: multiplies the series of the session metrics.
    metrics_workspaces: tuple[str, ...] = ()
    #: The window, in seconds, of the summary's rates and percentiles and of
    #: the health checks.
    window_s: int = 60
    #: How often the event-loop probe wakes up; its overshoot is the delay.
    probe_interval_ms: int = 500
    #: How often a point is added to the dashboard's history (kept for an hour).
    history_interval_s: int = 5
    #: How often the probe re-checks the database and Redis for the health history.
    check_interval_s: int = 15
    #: Health thresholds, each (degraded, unhealthy).
    loop_delay_ms: Levels = Levels(500, 2000)
    memory_mb: Levels = Levels(1024, 2048)
    processing_p95_ms: Levels = Levels(250, 1000)
    layer_p95_ms: Levels = Levels(50, 250)
    error_ratio_pct: Levels = Levels(5, 25)
    #: Debug-only endpoints for tests (block the event loop).  Honoured only
    #: when ``DEBUG`` is on as well; never set it in production.
    test_hooks: bool = False

    @property
    def history_points(self) -> int:
        """Points kept in the dashboard history: one hour's worth."""
        return max(2, 3600 // self.history_interval_s)


def _levels(env: Mapping[str, str], name: str, default: Levels, *, minimum: float = 0) -> Levels:
    from chatsite.config import ConfigError

    raw = env.get(name, "").strip()
    if not raw:
        return default
    parts = [part.strip() for part in raw.split(",")]
    try:
        degraded, unhealthy = (float(part) for part in parts)
    except ValueError:
        raise ConfigError(f"{name} must be two numbers 'degraded,unhealthy', got {raw!r}.") from None
    if not minimum <= degraded <= unhealthy:
        raise ConfigError(f"{name} needs {minimum} <= degraded <= unhealthy, got {raw!r}.")
    return Levels(degraded, unhealthy)


def load(env: Mapping[str, str] = os.environ) -> MonitoringConfig:
    """Parse the monitoring variables (``chatsite.config.load`` calls this)."""
    from chatsite.config import ConfigError, _bool, _int, _list

    d = MonitoringConfig()
    ops_token = env.get("CHAT_OPS_TOKEN", "").strip()
    if ops_token and len(ops_token) < MIN_OPS_TOKEN_LENGTH:
        raise ConfigError(f"CHAT_OPS_TOKEN must be at least {MIN_OPS_TOKEN_LENGTH} characters.")
    window_s = _int(env, "CHAT_METRICS_WINDOW_S", d.window_s, minimum=5)
    if window_s > 3600:
        raise ConfigError("CHAT_METRICS_WINDOW_S must be at most 3600.")
    return MonitoringConfig(
        ops_token=ops_token,
        metrics_public=_bool(env, "CHAT_METRICS_PUBLIC", d.metrics_public),
        metrics_workspaces=_list(env, "CHAT_METRICS_WORKSPACES", d.metrics_workspaces),
        window_s=window_s,
        probe_interval_ms=_int(env, "CHAT_LOOP_PROBE_INTERVAL_MS", d.probe_interval_ms, minimum=10),
        history_interval_s=_int(env, "CHAT_METRICS_HISTORY_INTERVAL_S", d.history_interval_s, minimum=1),
        check_interval_s=_int(env, "CHAT_HEALTH_CHECK_INTERVAL_S", d.check_interval_s, minimum=1),
        loop_delay_ms=_levels(env, "CHAT_HEALTH_LOOP_DELAY_MS", d.loop_delay_ms),
        memory_mb=_levels(env, "CHAT_HEALTH_MEMORY_MB", d.memory_mb),
        processing_p95_ms=_levels(env, "CHAT_HEALTH_PROCESSING_MS", d.processing_p95_ms),
        layer_p95_ms=_levels(env, "CHAT_HEALTH_LAYER_MS", d.layer_p95_ms),
        error_ratio_pct=_levels(env, "CHAT_HEALTH_ERROR_PCT", d.error_ratio_pct),
        test_hooks=_bool(env, "CHAT_TEST_HOOKS", d.test_hooks),
    )


@lru_cache(maxsize=1)
def _from_environment() -> MonitoringConfig:
    return load(os.environ)


def get() -> MonitoringConfig:
    """``settings.CHAT.monitoring``, or the environment parsed by :func:`load` when that is missing."""
    from django.conf import settings

    config = getattr(getattr(settings, "CHAT", None), "monitoring", None)
    if isinstance(config, MonitoringConfig):
        return config
    return _from_environment()


def test_hooks_enabled() -> bool:
    """Test-only endpoints exist only with ``CHAT_TEST_HOOKS=1`` *and* ``DEBUG``."""
    from django.conf import settings

    return bool(get().test_hooks and settings.DEBUG)
