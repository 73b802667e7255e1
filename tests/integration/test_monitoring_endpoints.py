"""Liveness, readiness, /metrics and the monitoring API against real daphne processes.

Health is driven into each state for real: the event loop is blocked
through the debug-only hook (``CHAT_TEST_HOOKS=1``), PostgreSQL and Redis
are made unreachable by switching off a TCP proxy the server talks through
(or by pointing the server at a closed port), and each time the test checks
the status codes, the health status and its issues, and the recovery.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import POSTGRES_URL, REDIS_URL
from tests.integration.chat_client import issue_tokens
from tests.integration.hostile import session_cookie
from tests.integration.test_monitoring_support import (
    OPS_TOKEN,
    TcpProxy,
    closed_port,
    get_json,
    http,
    scrape,
    staff_token,
    start,
)


def issue_list(health: dict) -> str:
    return " | ".join(health["issues"])


# --- the endpoints answer, and /metrics parses ------------------------------------------------------


def test_metrics_parse_and_cover_requests_database_and_our_own(server_factory, backend):
    server = start(server_factory, backend)
    assert get_json(server, "/readyz", token=None)[0] == 200  # touches the database
    metrics = scrape(server)
    chat = {name for name in metrics.families if name.startswith("chat_")}
    assert {
        "chat_connections_active",
        "chat_connections_opened",
        "chat_messages_received",
        "chat_message_processing_seconds",
        "chat_event_loop_delay_seconds",
        "chat_process_resident_memory_bytes",
        "chat_readiness_checks",
    } <= chat
    # django-prometheus: requests, and the database behind /readyz.
    assert metrics.value("django_http_requests_total_by_method_total", method="GET") >= 1
    vendor = "postgresql" if backend.name == "services" else "sqlite"
    assert metrics.value("django_db_execute_total", alias="default", vendor=vendor) >= 1
    assert metrics.value("chat_readiness_checks_total", result="ready") == 1
    assert metrics.value("chat_dependency_up", dependency="database") == 1
    assert metrics.value("chat_dependency_up", dependency="channel_layer") == 1


def test_openmetrics_is_served_when_asked(server_factory, embedded_backend):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    server = start(server_factory, embedded_backend)
    status, headers, body = http(server, "/metrics", headers={"Accept": "application/openmetrics-text"})
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert "chat_connections_opened" in {family.name for family in text_string_to_metric_families(body.decode())}


def test_liveness_and_readiness(server_factory, backend):
    server = start(server_factory, backend)
    status, body = get_json(server, "/healthz", token=None)
    assert (status, body) == (200, {"status": "ok"})
    status, body = get_json(server, "/readyz", token=None)
    assert status == 200
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["channel_layer"]["backend"] == ("redis" if backend.name == "services" else "memory")


def test_monitoring_leaks_across_tenants(server_factory, embedded_backend):
    """Issue #17: any staff user read every workspace's numbers; now only superusers and the ops token."""
    server = start(server_factory, embedded_backend, CHAT_METRICS_PUBLIC="0")
    tokens = issue_tokens(server, [("member", "acme", "member"), ("acme-admin", "acme", "admin")])
    workspace_staff = staff_token(server, username="acme-admin", superuser=False)
    superuser = staff_token(server, username="root")
    for path in ("/api/v1/metrics/", "/api/v1/health/"):
        assert get_json(server, path, token=None)[0] == 401
        assert get_json(server, path, token="ops-token-that-is-wrong-0123456789")[0] == 401
        assert get_json(server, path, token=tokens["member"])[0] == 403
        assert get_json(server, path, token=workspace_staff)[0] == 403
        assert get_json(server, path, token=superuser)[0] == 200
        assert get_json(server, path, token=OPS_TOKEN)[0] == 200
    status, report = get_json(server, "/api/v1/metrics/", token=superuser)
    assert "top" in report["summary"]["sessions"]["per_workspace"], report["summary"]["sessions"]
    # The dashboard and the Prometheus endpoint (when not public) take a logged-in admin session.
    for username, dashboard, prometheus in (("acme-admin", 403, 401), ("root", 200, 200)):
        cookie = {"Cookie": f"sessionid={session_cookie(server, username)}"}
        assert http(server, "/admin/monitoring/", headers=cookie)[0] == dashboard, username
        assert http(server, "/metrics", headers=cookie)[0] == prometheus, username


def test_dashboard_redirects_anonymous_users_to_the_admin_login(server_factory, embedded_backend):
    server = start(server_factory, embedded_backend)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(server.url + "/admin/monitoring/", timeout=10)
        raise AssertionError("expected a redirect")
    except urllib.error.HTTPError as error:
        assert error.code == 302
        assert error.headers["Location"].startswith("/admin/login/")


def test_metrics_endpoint_can_require_the_ops_token(server_factory, embedded_backend):
    server = start(server_factory, embedded_backend, CHAT_METRICS_PUBLIC="0")
    assert http(server, "/metrics")[0] == 401
    assert http(server, "/metrics", token="wrong")[0] == 401
    assert scrape(server, token=OPS_TOKEN).value("chat_health_score") >= 0


def test_api_metrics_report(server_factory, embedded_backend):
    server = start(server_factory, embedded_backend, CHAT_METRICS_HISTORY_INTERVAL_S="1")
    time.sleep(2.5)  # two history points
    status, report = get_json(server, "/api/v1/metrics/?history=1&window=30")
    assert status == 200
    assert set(report) >= {
        "current",
        "summary",
        "health",
        "recommendations",
        "totals",
        "dependencies",
        "history",
        "multiprocess",
    }
    assert report["multiprocess"] is False
    assert report["summary"]["window_s"] == 30
    assert report["summary"]["sessions"]["per_workspace"]["source"] == "database"
    assert report["health"]["status"] == "healthy"
    assert report["health"]["score"] == 100
    assert report["probe_running"] is True
    assert len(report["history"]) >= 2
    point = report["history"][-1]
    assert set(point) >= {"t", "connections", "received_per_s", "processing_ms", "loop_delay_ms", "health"}
    assert report["current"]["process"]["rss_bytes"] > 0
    assert "chat_connections_opened_total" in report["totals"]


def test_test_hooks_do_not_exist_unless_enabled(server_factory, embedded_backend):
    server = start(server_factory, embedded_backend)
    assert http(server, "/__test__/monitoring/block-loop?seconds=0")[0] == 404
    debug_off = start(server_factory, embedded_backend, CHAT_TEST_HOOKS="1", DJANGO_DEBUG="0")
    assert http(debug_off, "/__test__/monitoring/block-loop?seconds=0")[0] == 404


# --- health: a blocked event loop ---------------------------------------------------------------------


async def test_blocked_event_loop_degrades_then_recovers(server_factory, embedded_backend):
    window_s = 5
    server = start(
        server_factory,
        embedded_backend,
        CHAT_TEST_HOOKS="1",
        DJANGO_DEBUG="1",
        CHAT_METRICS_WINDOW_S=str(window_s),
        CHAT_LOOP_PROBE_INTERVAL_MS="100",
    )
    await asyncio.to_thread(http, server, "/healthz")  # starts the probe
    await asyncio.sleep(0.5)
    status, health = await asyncio.to_thread(get_json, server, "/api/v1/health/")
    assert (status, health["status"], health["issues"]) == (200, "healthy", [])

    # 1 s on the loop: the probe (every 0.1 s) wakes 0.9-1.0 s late (degraded from 500 ms, unhealthy from 2000 ms).
    assert (await asyncio.to_thread(http, server, "/__test__/monitoring/block-loop?seconds=1"))[0] == 200
    status, health = await asyncio.to_thread(get_json, server, "/api/v1/health/")
    assert status == 200
    assert health["status"] == "degraded", health
    assert health["score"] == 85
    (issue,) = health["issues"]
    assert issue.startswith("Event loop delayed up to ") and "degraded at 500 ms" in issue
    check = next(c for c in health["checks"] if c["name"] == "event_loop_delay")
    assert 850 <= check["value"] < 2000

    assert (await asyncio.to_thread(http, server, "/__test__/monitoring/block-loop?seconds=2.5"))[0] == 200
    status, health = await asyncio.to_thread(get_json, server, "/api/v1/health/")
    assert status == 503
    assert health["status"] == "unhealthy", health
    assert health["score"] == 50
    assert "unhealthy at 2000 ms" in issue_list(health)
    status, report = await asyncio.to_thread(get_json, server, "/api/v1/metrics/")
    blocked = [rec for rec in report["recommendations"] if rec["id"] == "event-loop-blocked"]
    assert blocked and blocked[0]["value"] >= 2000 and blocked[0]["severity"] == "critical"
    metrics = await asyncio.to_thread(scrape, server)
    count = metrics.value("chat_event_loop_delay_seconds_count")
    assert count - metrics.value("chat_event_loop_delay_seconds_bucket", le="1.0") >= 1  # a delay over 1 s
    assert metrics.value("chat_event_loop_delay_max_seconds") >= 2.0

    await asyncio.sleep(window_s + 0.5)  # the block leaves the window
    status, health = await asyncio.to_thread(get_json, server, "/api/v1/health/")
    assert (status, health["status"], health["score"], health["issues"]) == (200, "healthy", 100, [])


# --- health: the database or Redis unreachable ------------------------------------------------------------


def test_database_at_a_closed_port(server_factory, services_backend):
    url = services_backend.env["DATABASE_URL"].replace(":5432/", f":{closed_port()}/")
    assert url != services_backend.env["DATABASE_URL"]
    server = start(server_factory, services_backend, DATABASE_URL=url)
    assert get_json(server, "/healthz", token=None)[0] == 200  # alive: liveness says nothing of dependencies
    status, ready = get_json(server, "/readyz", token=None)
    assert status == 503
    assert ready["status"] == "not ready"
    assert ready["checks"]["database"]["ok"] is False
    assert ready["checks"]["database"]["error"] == "OperationalError"
    assert ready["checks"]["channel_layer"]["ok"] is True
    status, health = get_json(server, "/api/v1/health/")
    assert status == 503
    assert health["status"] == "unhealthy"
    assert health["issues"] == ["Database unreachable (OperationalError)."]
    status, report = get_json(server, "/api/v1/metrics/")  # still answers, from this worker's numbers
    assert status == 200
    assert report["summary"]["sessions"]["per_workspace"]["source"] == "worker"
    metrics = scrape(server)
    assert metrics.value("chat_dependency_up", dependency="database") == 0
    assert metrics.value("chat_readiness_checks_total", result="not_ready") == 1


def test_redis_at_a_closed_port(server_factory, embedded_backend):
    server = start(server_factory, embedded_backend, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")
    status, ready = get_json(server, "/readyz", token=None)
    assert status == 503
    assert ready["checks"]["database"]["ok"] is True
    assert ready["checks"]["channel_layer"] == {**ready["checks"]["channel_layer"], "ok": False, "backend": "redis"}
    status, health = get_json(server, "/api/v1/health/")
    assert status == 503
    assert health["status"] == "unhealthy"
    assert len(health["issues"]) == 1
    assert health["issues"][0].startswith("Channel layer (redis) unreachable (")


@pytest.fixture
def proxies():
    made: list[TcpProxy] = []

    def make(port: int) -> TcpProxy:
        proxy = TcpProxy(port)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


def _port(url: str) -> int:
    from urllib.parse import urlsplit

    return urlsplit(url).port or {"postgresql": 5432, "redis": 6379}[urlsplit(url).scheme]


def test_database_and_redis_outages_and_recovery(server_factory, services_backend, proxies):
    database = proxies(_port(POSTGRES_URL))
    redis = proxies(_port(REDIS_URL))
    server = start(
        server_factory,
        services_backend,
        DATABASE_URL=database.url(services_backend.env["DATABASE_URL"]),
        REDIS_URL=redis.url(services_backend.env["REDIS_URL"]),
    )

    def state() -> tuple[int, int, str, list[str]]:
        ready_status, _ = get_json(server, "/readyz", token=None)
        health_status, health = get_json(server, "/api/v1/health/")
        return ready_status, health_status, health["status"], health["issues"]

    assert state() == (200, 200, "healthy", [])

    database.disable()
    assert state() == (503, 503, "unhealthy", ["Database unreachable (OperationalError)."])
    database.enable()
    assert state() == (200, 200, "healthy", [])

    redis.disable()
    ready, health_status, status, issues = state()
    assert (ready, health_status, status) == (503, 503, "unhealthy")
    assert len(issues) == 1 and issues[0].startswith("Channel layer (redis) unreachable (")
    redis.enable()
    assert state() == (200, 200, "healthy", [])

    database.disable()
    redis.disable()
    ready, health_status, status, issues = state()
    assert (ready, health_status, status) == (503, 503, "unhealthy")
    assert issues[0] == "Database unreachable (OperationalError)."
    assert issues[1].startswith("Channel layer (redis) unreachable (")
    _, health = get_json(server, "/api/v1/health/")
    assert health["score"] == 0
    database.enable()
    redis.enable()
    assert state() == (200, 200, "healthy", [])
