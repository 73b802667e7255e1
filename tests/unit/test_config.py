"""The settings module and the README's configuration table describe the same variables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatsite import config

ROOT = Path(__file__).resolve().parents[2]


def read_variables() -> set[str]:
    source = (ROOT / "chatsite" / "config.py").read_text()
    return set(re.findall(r'"((?:CHAT|DJANGO)_[A-Z0-9_]+|DATABASE_URL|REDIS_URL)"', source))


def test_every_variable_read_is_documented_in_the_readme():
    """In the README's table, or the monitoring variables in docs/monitoring.md's, which the README points to."""
    tables = (ROOT / "README.md").read_text() + (ROOT / "docs" / "monitoring.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", tables, re.MULTILINE))
    assert read_variables() - documented == set()


def test_defaults_run_embedded():
    loaded = config.load({})
    assert loaded.database_url.startswith("sqlite:///") and not loaded.uses_redis
    assert (loaded.ping_interval_ms, loaded.ping_timeout_ms, loaded.max_payload) == (25_000, 20_000, 1_000_000)
    assert loaded.connect_timeout_ms == 45_000  # Node's connectTimeout
    assert config.load({"CHAT_CONNECT_TIMEOUT_MS": "5000"}).connect_timeout_ms == 5000


def test_conformance_mode_uses_the_suites_timings_and_any_origin():
    loaded = config.load({"CHAT_CONFORMANCE": "1"})
    assert (loaded.ping_interval_ms, loaded.ping_timeout_ms, loaded.connect_timeout_ms) == (300, 200, 1000)
    assert loaded.origin_allowed("http://anything.example")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHAT_MAX_PAYLOAD": "lots"}, "CHAT_MAX_PAYLOAD must be a whole number"),
        ({"CHAT_PING_INTERVAL_MS": "0"}, "CHAT_PING_INTERVAL_MS must be at least 1"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG must be"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(env, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(env)


def test_origins_match_exactly_never_by_substring():
    loaded = config.load({"CHAT_ALLOWED_ORIGINS": "https://chat.example.com"})
    assert loaded.origin_allowed("https://chat.example.com")
    assert not loaded.origin_allowed("https://chat.example.com.evil.example")
    assert not loaded.origin_allowed("http://chat.example.com")


def test_the_agent_lease_is_a_setting_the_runner_reads(settings):
    """How soon a dead worker's agent reply is given up (the scale-out test shortens it)."""
    from chat.agents import runner

    assert config.load({}).agent_lease_s == 30
    settings.CHAT = config.load({"CHAT_AGENT_LEASE_S": "3"})
    assert runner.settings.CHAT.agent_lease_s == 3


def test_django_debug_defaults_to_true():
    """Issue #17: it did; debug pages show settings and stack traces, so it is off unless asked for."""
    assert config.load({}).debug is False
    assert config.load({"DJANGO_DEBUG": "true"}).debug is True


def test_origin_check_ignores_scheme_and_port_without_allowed_origins():
    """Issue #17: with no CHAT_ALLOWED_ORIGINS only the host was compared; now scheme, host and port."""
    loaded = config.load({"DJANGO_ALLOWED_HOSTS": "chat.example.com,127.0.0.1"})
    own = "https://chat.example.com"
    assert loaded.origin_allowed("https://chat.example.com", own)
    assert loaded.origin_allowed("https://chat.example.com:443", own)
    assert not loaded.origin_allowed("http://chat.example.com", own)  # another scheme
    assert not loaded.origin_allowed("https://chat.example.com:8443", own)  # another port
    assert not loaded.origin_allowed("https://evil.example", "https://evil.example")  # not one of ours
    assert not loaded.origin_allowed("https://chat.example.com.evil.example", own)
    assert not loaded.origin_allowed("https://user@chat.example.com", own)
    assert not loaded.origin_allowed("null", own)
    assert loaded.origin_allowed("http://127.0.0.1:8000", "http://chat.example.com:8000")  # another of our hosts
    assert not loaded.origin_allowed(own)  # without the request's origin, no page is known to be ours
