"""Monitoring settings: defaults, parsing (by ``chatsite.config``) and refusals."""

from __future__ import annotations

import pytest

from chatsite.config import ConfigError, load
from monitoring.conf import Levels, MonitoringConfig


def test_defaults_need_no_environment():
    config = load({}).monitoring
    assert config == MonitoringConfig()
    assert config.ops_token == ""
    assert config.metrics_public is True
    assert config.window_s == 60
    assert config.history_points == 720
    assert config.test_hooks is False


def test_every_variable_is_read():
    config = load(
        {
            "CHAT_OPS_TOKEN": "x" * 32,
            "CHAT_METRICS_PUBLIC": "0",
            "CHAT_METRICS_WORKSPACES": "acme, beta",
            "CHAT_METRICS_WINDOW_S": "30",
            "CHAT_LOOP_PROBE_INTERVAL_MS": "100",
            "CHAT_METRICS_HISTORY_INTERVAL_S": "2",
            "CHAT_HEALTH_CHECK_INTERVAL_S": "3",
            "CHAT_HEALTH_LOOP_DELAY_MS": "100,400",
            "CHAT_HEALTH_MEMORY_MB": "256,512",
            "CHAT_HEALTH_PROCESSING_MS": "50,200",
            "CHAT_HEALTH_LAYER_MS": "10,40",
            "CHAT_HEALTH_ERROR_PCT": "1,10",
            "CHAT_TEST_HOOKS": "1",
        }
    ).monitoring
    assert config.ops_token == "x" * 32
    assert config.metrics_public is False
    assert config.metrics_workspaces == ("acme", "beta")
    assert config.window_s == 30
    assert config.probe_interval_ms == 100
    assert config.history_interval_s == 2
    assert config.history_points == 1800
    assert config.check_interval_s == 3
    assert config.loop_delay_ms == Levels(100, 400)
    assert config.memory_mb == Levels(256, 512)
    assert config.processing_p95_ms == Levels(50, 200)
    assert config.layer_p95_ms == Levels(10, 40)
    assert config.error_ratio_pct == Levels(1, 10)
    assert config.test_hooks is True


@pytest.mark.parametrize(
    "env",
    [
        {"CHAT_OPS_TOKEN": "short"},
        {"CHAT_METRICS_WINDOW_S": "2"},
        {"CHAT_METRICS_WINDOW_S": "7200"},
        {"CHAT_HEALTH_LOOP_DELAY_MS": "500"},
        {"CHAT_HEALTH_LOOP_DELAY_MS": "500,100"},
        {"CHAT_HEALTH_MEMORY_MB": "a,b"},
        {"CHAT_METRICS_PUBLIC": "maybe"},
    ],
)
def test_bad_values_are_refused(env):
    with pytest.raises(ConfigError):
        load(env)


def test_levels():
    levels = Levels(10, 20)
    assert levels.level(9.99) == "healthy"
    assert levels.level(10) == "degraded"
    assert levels.level(19.9) == "degraded"
    assert levels.level(20) == "unhealthy"
