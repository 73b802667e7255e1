"""The exposition parses, the settings wiring is right, the cache backends count, the ops token is checked."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.request import Request

from monitoring import auth, conf, exposition, metrics
from monitoring.cache import LocMemCache
from monitoring.instrumentation import AFTER, BEFORE, instrument_settings

#: Every family of ours, with its type, as the parser reports it.
FAMILIES = {
    "chat_connections_active": "gauge",
    "chat_connections_opened": "counter",
    "chat_connections_closed": "counter",
    "chat_connection_upgrades": "counter",
    "chat_connection_errors": "counter",
    "chat_connection_duration_seconds": "histogram",
    "chat_sessions_active": "gauge",
    "chat_session_members_active": "gauge",
    "chat_session_joins": "counter",
    "chat_session_leaves": "counter",
    "chat_messages_received": "counter",
    "chat_messages_delivered": "counter",
    "chat_message_size_bytes": "histogram",
    "chat_message_processing_seconds": "histogram",
    "chat_broadcasts": "counter",
    "chat_broadcast_fanout": "histogram",
    "chat_event_errors": "counter",
    "chat_channel_layer_send_seconds": "histogram",
    "chat_channel_layer_send_errors": "counter",
    "chat_rate_limit_hits": "counter",
    "chat_security_events": "counter",
    "chat_suspicious_content": "counter",
    "chat_agent_runs": "counter",
    "chat_agent_runs_active": "gauge",
    "chat_agent_run_duration_seconds": "histogram",
    "chat_agent_time_to_first_chunk_seconds": "histogram",
    "chat_agent_run_errors": "counter",
    "chat_event_loop_delay_seconds": "histogram",
    "chat_event_loop_delay_max_seconds": "gauge",
    "chat_process_resident_memory_bytes": "gauge",
    "chat_process_cpu_seconds": "counter",
    "chat_process_cpu_ratio": "gauge",
    "chat_buffer_items": "gauge",
    "chat_buffer_bytes": "gauge",
    "chat_housekeeping_runs": "counter",
    "chat_housekeeping_purged": "counter",
    "chat_housekeeping_last_run_timestamp_seconds": "gauge",
    "chat_dependency_up": "gauge",
    "chat_health_score": "gauge",
    "chat_readiness_checks": "counter",
}

#: Labels each family may carry; nothing else (no ids).
ALLOWED_LABELS = {
    "transport",
    "reason",
    "workspace",
    "event",
    "kind",
    "operation",
    "type",
    "backend",
    "error",
    "buffer",
    "outcome",
    "dependency",
    "result",
    "le",
}


def _exercise() -> None:
    """Touch every labelled metric so each family has samples."""
    metrics.connection_closed("websocket", "ping timeout", metrics.connection_opened("websocket"))
    metrics.connection_error("unknown_session")
    metrics.message_received("chat:typing", 40)
    metrics.message_delivered("chat:typing-indicator")
    metrics.event_failed("chat:typing", internal=False)
    metrics.rate_limit_checked("typing", False)
    metrics.security_event("rate_limit_exceeded")
    run = metrics.agent_run("echo")
    run.first_chunk()
    run.finished("timeout")
    metrics.purged("presence", 1)
    metrics.housekeeping_ran(True)
    metrics.BUFFER_ITEMS.labels("rooms").set(0)
    metrics.BUFFER_BYTES.labels("polling_outbox").set(0)
    metrics.DEPENDENCY_UP.labels("database").set(1)
    metrics.READINESS_CHECKS.labels("ready").inc(0)
    metrics.LAYER_SEND.labels("broadcast").observe(0.001)
    metrics.LAYER_ERRORS.labels("broadcast").inc(0)


def test_the_text_format_parses_with_prometheus_clients_parser():
    _exercise()
    families = {family.name: family for family in text_string_to_metric_families(generate_latest(REGISTRY).decode())}
    for name, kind in FAMILIES.items():
        assert name in families, f"{name} missing from /metrics"
        assert families[name].type == kind, (name, families[name].type)
    for name in FAMILIES:
        for sample in families[name].samples:
            assert set(sample.labels) <= ALLOWED_LABELS, (name, sample.labels)


def test_the_openmetrics_format_parses_too():
    _exercise()
    text = generate_openmetrics(REGISTRY).decode()
    names = {family.name for family in parse_openmetrics(text)}
    assert {"chat_connections_opened", "chat_message_processing_seconds"} <= names


def test_totals_sum_over_labels():
    before = exposition.totals().get("chat_connections_opened_total", 0.0)
    metrics.connection_closed("polling", "transport close", metrics.connection_opened("polling"))
    metrics.connection_closed("websocket", "transport close", metrics.connection_opened("websocket"))
    assert exposition.totals()["chat_connections_opened_total"] == before + 2
    assert not exposition.multiprocess_mode()


# --- settings wiring ---------------------------------------------------------------------------


def test_instrument_settings_wires_django_prometheus_once():
    namespace = {
        "INSTALLED_APPS": ["django.contrib.auth", "monitoring"],
        "MIDDLEWARE": ["a.Middleware", "b.Middleware"],
        "DATABASES": {
            "default": {"ENGINE": "django.db.backends.postgresql", "NAME": "x"},
            "other": {"ENGINE": "some.custom.backend"},
        },
        "CACHES": {
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://"},
            "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        },
    }
    instrument_settings(namespace)
    instrument_settings(namespace)
    assert namespace["INSTALLED_APPS"].count("django_prometheus") == 1
    assert namespace["MIDDLEWARE"] == [BEFORE, "a.Middleware", "b.Middleware", AFTER]
    assert namespace["DATABASES"]["default"]["ENGINE"] == "django_prometheus.db.backends.postgresql"
    assert namespace["DATABASES"]["other"]["ENGINE"] == "some.custom.backend"
    assert namespace["CACHES"]["default"]["BACKEND"] == "monitoring.cache.RedisCache"
    assert namespace["CACHES"]["local"]["BACKEND"] == "monitoring.cache.LocMemCache"


def test_instrumented_cache_counts_hits_misses_and_keeps_falsy_values():
    def count(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"backend": "locmem"}) or 0.0

    cache = LocMemCache("monitoring-test", {})
    before = {
        name: count(name)
        for name in ("django_cache_get_total", "django_cache_get_hits_total", "django_cache_get_misses_total")
    }
    cache.set("zero", 0)
    assert cache.get("zero", "default") == 0
    assert cache.get("missing", "default") == "default"
    assert count("django_cache_get_total") - before["django_cache_get_total"] == 2
    assert count("django_cache_get_hits_total") - before["django_cache_get_hits_total"] == 1
    assert count("django_cache_get_misses_total") - before["django_cache_get_misses_total"] == 1


# --- the ops token -------------------------------------------------------------------------------

TOKEN = "ops-" + "z" * 40


@pytest.fixture
def ops_token(monkeypatch):
    monkeypatch.setattr(conf, "get", lambda: conf.MonitoringConfig(ops_token=TOKEN))


def _request(header: str | None) -> Request:
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    return Request(RequestFactory().get("/api/v1/health/", **extra))


def test_ops_token_authenticates_without_a_user(ops_token):
    assert auth.OpsTokenAuthentication().authenticate(_request(f"Bearer {TOKEN}")) == (auth.OPS, auth.OPS_AUTH)
    assert auth.OpsTokenAuthentication().authenticate(_request(f"Bearer {TOKEN}x")) is None
    assert auth.OpsTokenAuthentication().authenticate(_request(f"Token {TOKEN}")) is None
    assert auth.OpsTokenAuthentication().authenticate(_request(None)) is None


def test_no_ops_token_configured_means_none_matches(monkeypatch):
    monkeypatch.setattr(conf, "get", lambda: conf.MonitoringConfig(ops_token=""))
    assert auth.OpsTokenAuthentication().authenticate(_request("Bearer ")) is None
    assert not auth.is_ops_token("")


def test_monitoring_leaks_across_tenants_to_staff_users():
    """Issue #17: any staff user passed; only the ops token and active superusers see every workspace."""

    class User:
        is_authenticated = True

        def __init__(self, staff: bool, superuser: bool = False, active: bool = True) -> None:
            self.is_staff, self.is_superuser, self.is_active = staff, superuser, active

    class FakeRequest:
        def __init__(self, user, token=None) -> None:
            self.user, self.auth = user, token

    permission = auth.IsSuperuserOrOps()
    assert permission.has_permission(FakeRequest(auth.OPS, auth.OPS_AUTH), None)
    assert permission.has_permission(FakeRequest(User(True, superuser=True)), None)
    assert not permission.has_permission(FakeRequest(User(True, superuser=True, active=False)), None)
    assert not permission.has_permission(FakeRequest(User(True)), None)  # a workspace's staff
    assert not permission.has_permission(FakeRequest(User(False)), None)
    assert not permission.has_permission(FakeRequest(auth.OPS, None), None)
