"""The metrics service on a fake clock: summary numbers, health levels and issues, recommendations."""

from __future__ import annotations

import pytest

from monitoring import metrics
from monitoring.checks import CheckResult
from monitoring.conf import Levels, MonitoringConfig
from monitoring.service import MIN_SAMPLES, PENALTY, MetricsService


class Clock:
    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state() -> metrics.LocalState:
    return metrics.LocalState()


@pytest.fixture
def config() -> MonitoringConfig:
    return MonitoringConfig(window_s=60)


@pytest.fixture
def service(state, config, clock) -> MetricsService:
    return MetricsService(state=lambda: state, config=lambda: config, clock=clock)


def up(name: str, latency_ms: float = 1.0, backend: str = "postgresql") -> CheckResult:
    return CheckResult(name, True, latency_ms, backend)


def down(name: str, error: str = "OperationalError", backend: str = "postgresql") -> CheckResult:
    return CheckResult(name, False, 3000.0, backend, error)


# --- summary ---------------------------------------------------------------------------------


def test_summary_rates_and_percentiles_over_the_window(service, state, clock):
    for second in range(10):
        for _ in range(3):
            state.rates["received"].add(clock.now - second)
    for i in range(1, 101):
        state.samples["message_size"].add(clock.now - 1, float(i * 10))
        state.samples["processing"].add(clock.now - 1, i / 1000)
    state.rates["received"].add(clock.now - 120)  # outside a 60 s window
    summary = service.summary(window_s=10)
    messages = summary["messages"]
    assert messages["received"] == 30
    assert messages["received_per_s"] == 3.0
    assert messages["size_bytes"]["count"] == 100
    assert messages["size_bytes"]["avg"] == 505.0
    assert messages["size_bytes"]["p95"] == 950.0
    assert messages["processing_ms"]["p50"] == 50.0
    assert messages["processing_ms"]["p99"] == 99.0
    assert service.summary()["messages"]["received"] == 30  # the default 60 s window


def test_summary_connections_and_sessions(service, state, clock):
    state.active.update(polling=2, websocket=5)
    for _ in range(19):
        state.rates["opened"].add(clock.now)
    state.rates["connection_errors"].add(clock.now)
    state.session_members.update({("acme", "a"): 2, ("acme", "b"): 1, ("beta", "c"): 4})
    summary = service.summary()
    assert summary["connections"]["active"] == {"polling": 2, "websocket": 5, "total": 7}
    assert summary["connections"]["error_ratio_pct"] == 5.0
    per_workspace = summary["sessions"]["per_workspace"]
    assert summary["sessions"]["active"] == 3
    assert summary["sessions"]["members"] == 7
    assert per_workspace["workspaces"] == 2
    assert per_workspace["sessions"] == 3
    assert per_workspace["top"] == [
        {"workspace": "acme", "sessions": 2, "members": 3},
        {"workspace": "beta", "sessions": 1, "members": 4},
    ]
    assert per_workspace["distribution"]["max"] == 2


# --- health ----------------------------------------------------------------------------------


def test_healthy_without_data(service):
    health = service.health()
    assert (health.status, health.score, health.issues) == ("healthy", 100, [])


@pytest.mark.parametrize(
    "delay_s,status",
    [(0.05, "healthy"), (0.3, "healthy"), (0.5, "degraded"), (1.999, "degraded"), (2.0, "unhealthy"), (4, "unhealthy")],
)
def test_event_loop_delay_levels(service, state, clock, delay_s, status):
    for i in range(100):
        state.samples["loop_delay"].add(clock.now - i * 0.5, 0.001)
    state.samples["loop_delay"].add(clock.now - 5, delay_s)
    health = service.health()
    assert health.status == status
    assert health.score == 100 - PENALTY[status]
    if status != "healthy":
        (issue,) = health.issues
        assert issue.startswith(f"Event loop delayed up to {delay_s * 1000:.0f} ms")


def test_a_blocked_loop_is_forgotten_once_it_leaves_the_window(service, state, clock):
    state.samples["loop_delay"].add(clock.now, 2.5)
    assert service.health().status == "unhealthy"
    clock.now += 59
    state.samples["loop_delay"].add(clock.now, 0.002)
    assert service.health().status == "unhealthy"
    clock.now += 2
    state.samples["loop_delay"].add(clock.now, 0.002)
    health = service.health()
    assert (health.status, health.score, health.issues) == ("healthy", 100, [])


def test_memory_levels(service, state):
    state.process["rss_bytes"] = 1500 * 1024 * 1024
    health = service.health()
    assert health.status == "degraded"
    assert health.issues == ["Resident memory 1500 MB (degraded at 1024 MB, unhealthy at 2048 MB)."]
    state.process["rss_bytes"] = 3000 * 1024 * 1024
    assert service.health().status == "unhealthy"


def test_percentile_checks_need_enough_samples(service, state, clock):
    for _ in range(MIN_SAMPLES - 1):
        state.samples["processing"].add(clock.now, 2.0)
    assert service.health().status == "healthy"
    state.samples["processing"].add(clock.now, 2.0)
    health = service.health()
    assert health.status == "unhealthy"
    assert health.issues[0].startswith(f"Message processing p95 2000.0 ms over {MIN_SAMPLES} samples")


def test_channel_layer_latency(service, state, clock):
    for _ in range(50):
        state.samples["layer_send"].add(clock.now, 0.08)
    health = service.health()
    assert health.status == "degraded"
    check = next(c for c in health.checks if c.name == "channel_layer_p95")
    assert (check.value, check.threshold, check.unit) == (80.0, 50, "ms")


def test_error_ratios(service, state, clock):
    for _ in range(15):
        state.rates["opened"].add(clock.now)
    for _ in range(5):
        state.rates["connection_errors"].add(clock.now)
    health = service.health()
    assert health.status == "unhealthy"  # 25%
    assert health.issues == ["Connection errors: 5 of 20 in the last 60 s (25.0%; degraded at 5%, unhealthy at 25%)."]


def test_channel_layer_errors_without_successes(service, state, clock):
    for _ in range(MIN_SAMPLES):
        state.rates["layer_errors"].add(clock.now)
    health = service.health()
    assert health.status == "unhealthy"
    assert any(issue.startswith("Channel-layer send errors: 20 of 20") for issue in health.issues)


def test_unreachable_dependencies_are_unhealthy_with_their_issue(service):
    health = service.health(
        {
            "database": down("database"),
            "channel_layer": down("channel_layer", "ConnectionError", backend="redis"),
        }
    )
    assert health.status == "unhealthy"
    assert health.score == 0
    assert health.issues == [
        "Database unreachable (OperationalError).",
        "Channel layer (redis) unreachable (ConnectionError).",
    ]


def test_dependencies_that_answer_are_healthy_or_slow(service):
    health = service.health({"database": up("database"), "channel_layer": up("channel_layer", 2.0, "redis")})
    assert (health.status, health.score, health.issues) == ("healthy", 100, [])
    slow = service.health({"database": up("database", 1500.0)})
    assert slow.status == "degraded"
    assert slow.issues == ["Database answered in 1500 ms (degraded at 1000 ms)."]


def test_score_combines_every_failing_check(service, state, clock):
    state.samples["loop_delay"].add(clock.now, 0.6)
    state.process["rss_bytes"] = 1100 * 1024 * 1024
    health = service.health({"database": down("database"), "channel_layer": up("channel_layer")})
    assert health.status == "unhealthy"
    assert health.score == 100 - 15 - 15 - 50
    assert len(health.issues) == 3


def test_thresholds_come_from_the_configuration(state, clock):
    config = MonitoringConfig(loop_delay_ms=Levels(10, 20))
    service = MetricsService(state=lambda: state, config=lambda: config, clock=clock)
    state.samples["loop_delay"].add(clock.now, 0.015)
    assert service.health().status == "degraded"


# --- recommendations ---------------------------------------------------------------------------


def test_recommendations_carry_the_number_that_triggered_them(service, state, clock):
    state.samples["loop_delay"].add(clock.now, 1.2)
    state.active.update(polling=8, websocket=2)
    for _ in range(MIN_SAMPLES):
        state.samples["message_size"].add(clock.now, 20_000.0)
        state.samples["processing"].add(clock.now, 0.150)
        state.samples["layer_send"].add(clock.now, 0.030)
        state.samples["fanout"].add(clock.now, 300.0)
    for _ in range(12):
        state.rates["rate_limited"].add(clock.now)
    state.buffers = {"polling_outbox": {"items": 10, "bytes": 2 * 1024 * 1024}}
    state.process.update(rss_bytes=900 * 1024 * 1024, cpu_ratio=0.95)
    found = {rec["id"]: rec for rec in service.recommendations(dependencies={"database": up("database", 250.0)})}
    assert set(found) == {
        "event-loop-blocked",
        "cpu-saturated",
        "memory-high",
        "processing-slow",
        "channel-layer-slow",
        "large-messages",
        "large-fanout",
        "polling-share",
        "rate-limits",
        "polling-backlog",
        "database-slow",
    }
    blocked = found["event-loop-blocked"]
    assert (blocked["severity"], blocked["metric"], blocked["value"], blocked["threshold"]) == (
        "warning",
        "event_loop_delay_ms.max",
        1200.0,
        500,
    )
    assert found["polling-share"]["value"] == 80.0
    assert found["large-messages"]["value"] == 20000.0
    assert found["processing-slow"]["value"] == 150.0
    assert found["rate-limits"]["value"] == 12
    assert found["database-slow"]["value"] == 250.0
    for rec in found.values():
        assert rec["message"] and rec["value"] >= rec["threshold"]


def test_no_recommendations_for_a_quiet_healthy_worker(service, state, clock):
    state.samples["loop_delay"].add(clock.now, 0.001)
    state.process.update(rss_bytes=100 * 1024 * 1024, cpu_ratio=0.05)
    assert service.recommendations() == []


# --- history ------------------------------------------------------------------------------------


def test_history_point_rates_are_per_interval(service, state, clock):
    first = service.history_point(clock.now, None, 5)
    for _ in range(50):
        state.rates["received"].add(clock.now)
    state.rates["delivered"].add(clock.now, 200)
    state.active.update(polling=1, websocket=3)
    clock.now += 5
    point = service.history_point(clock.now, first["_totals"], 5)
    assert point["received_per_s"] == 10.0
    assert point["delivered_per_s"] == 40.0
    assert point["connections"] == {"polling": 1, "websocket": 3, "total": 4}
    assert point["health"] == {"status": "healthy", "score": 100}
