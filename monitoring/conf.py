"""Monitoring settings: what they are and their defaults, held on ``settings.CHAT.monitoring``.

The project's configuration (``chatsite.config``) reads them from the
environment, once, with the defaults below; everything in :mod:`monitoring`
reads them through :func:`get`.  ``docs/monitoring.md`` documents each
variable.

``PROMETHEUS_MULTIPROC_DIR`` is not read here: ``prometheus_client`` reads it
itself when it is first imported (see ``docs/monitoring.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

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
    #: ``/metrics`` answers anyone when true; otherwise it needs a superuser or the ops token.
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


def get() -> MonitoringConfig:
    """The monitoring settings (``settings.CHAT.monitoring``)."""
    return settings.CHAT.monitoring


def test_hooks_enabled() -> bool:
    """Test-only endpoints exist only with ``CHAT_TEST_HOOKS=1`` *and* ``DEBUG``."""
    return bool(get().test_hooks and settings.DEBUG)
