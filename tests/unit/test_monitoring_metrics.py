"""The hooks move the Prometheus metrics and the rolling windows by exactly what happened.

Prometheus counters are process-wide and cumulative, so every assertion is
on the difference a call made.  Label values stay bounded whatever clients
send.
"""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from monitoring import metrics


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """``with Delta(name, **labels) as d: ...; assert d.value == n``."""

    def __init__(self, name: str, **labels: str) -> None:
        self.name, self.labels = name, labels

    def __enter__(self) -> Delta:
        self.before = value(self.name, **self.labels)
        return self

    def __exit__(self, *exc: object) -> None:
        self.value = value(self.name, **self.labels) - self.before


@pytest.fixture(autouse=True)
def fresh_windows():
    metrics.reset_local_state()
    yield
    metrics.reset_local_state()


def series_count(name: str) -> int:
    return sum(1 for family in REGISTRY.collect() for sample in family.samples if sample.name == name)


# --- connections ------------------------------------------------------------------------------


def test_connection_lifecycle_with_an_upgrade():
    with (
        Delta("chat_connections_opened_total", transport="polling") as opened,
        Delta("chat_connections_active", transport="polling") as polling,
        Delta("chat_connections_active", transport="websocket") as websocket,
        Delta("chat_connection_upgrades_total") as upgrades,
        Delta("chat_connections_closed_total", transport="websocket", reason="transport_close") as closed,
        Delta("chat_connection_duration_seconds_count", transport="websocket") as durations,
    ):
        started = metrics.connection_opened("polling")
        assert metrics.local.active == {"polling": 1, "websocket": 0}
        metrics.connection_upgraded()
        assert metrics.local.active == {"polling": 0, "websocket": 1}
        metrics.connection_closed("websocket", "transport close", started)
    assert (opened.value, polling.value, websocket.value) == (1, 0, 0)
    assert upgrades.value == 1
    assert closed.value == 1
    assert durations.value == 1
    assert metrics.local.active == {"polling": 0, "websocket": 0}
    assert metrics.local.rates["opened"].total == 1
    assert metrics.local.rates["closed"].total == 1


def test_active_gauge_counts_open_connections():
    with Delta("chat_connections_active", transport="websocket") as active:
        handles = [metrics.connection_opened("websocket") for _ in range(3)]
        metrics.connection_closed("websocket", "ping timeout", handles[0])
    assert active.value == 2
    for handle in handles[1:]:
        metrics.connection_closed("websocket", "forced close", handle)


@pytest.mark.parametrize(
    "reason,label",
    [
        ("ping timeout", "ping_timeout"),
        ("transport error", "transport_error"),
        ("parse error", "parse_error"),
        ("server shutting down", "server_shutdown"),
        ("something new", "other"),
    ],
)
def test_close_reasons_are_mapped_to_bounded_labels(reason, label):
    with Delta("chat_connections_closed_total", transport="polling", reason=label) as closed:
        metrics.connection_closed("polling", reason, metrics.connection_opened("polling"))
    assert closed.value == 1


def test_connection_errors_by_code_are_bounded():
    with Delta("chat_connection_errors_total", reason="unknown_session") as unknown:
        metrics.connection_error("unknown_session")
        metrics.connection_error("unknown_session")
    assert unknown.value == 2
    with Delta("chat_connection_errors_total", reason="other") as other:
        metrics.connection_error("Not An Identifier!")
        metrics.connection_error(None)  # type: ignore[arg-type]
    assert other.value == 2
    assert metrics.local.rates["connection_errors"].total == 4


# --- messages ---------------------------------------------------------------------------------


def test_received_events_count_by_event_and_size():
    with (
        Delta("chat_messages_received_total", event="chat:send-message") as sends,
        Delta("chat_messages_received_total", event="other") as other,
        Delta("chat_message_size_bytes_count") as count,
        Delta("chat_message_size_bytes_sum") as total,
    ):
        metrics.message_received("chat:send-message", 120)
        metrics.message_received("chat:send-message", 80)
        metrics.message_received("made-up-by-a-client", 10)
        metrics.message_received(["not", "a", "string"], 5)
    assert sends.value == 2
    assert other.value == 2
    assert count.value == 4
    assert total.value == 215


def test_client_chosen_event_names_never_create_series():
    before = series_count("chat_messages_received_total")
    for i in range(500):
        metrics.message_received(f"chat:evil-{i}", 1)
        metrics.event_failed(f"chat:evil-{i}", internal=False)
    assert series_count("chat_messages_received_total") == before


def test_server_event_names_are_capped():
    before = series_count("chat_messages_delivered_total")
    for i in range(500):
        metrics.message_delivered(f"custom-event-{i}")
    assert series_count("chat_messages_delivered_total") <= max(before, metrics.MAX_CODE_VALUES + 1)


@pytest.mark.parametrize(
    "frame,name",
    [
        ('2["chat:message-received",{"a":1}]', "chat:message-received"),
        ('2/admin,["chat:user-left",{}]', "chat:user-left"),
        ('2/admin,17["chat:typing-indicator"]', "chat:typing-indicator"),
        ('51-["chat:agent-stream-chunk",{"_placeholder":true,"num":0}]', "chat:agent-stream-chunk"),
        ("3[]", "other"),
        (b"\x00\x01", "other"),
    ],
)
def test_event_name_of_an_encoded_frame(frame, name):
    assert metrics.event_name(frame) == name


def test_broadcast_delivered_counts_local_recipients_minus_excluded():
    members = {"a": object(), "b": object(), "c": object()}
    frames = ['2["chat:message-received",{}]']
    with (
        Delta("chat_messages_delivered_total", event="chat:message-received") as delivered,
        Delta("chat_broadcast_fanout_count") as fanouts,
        Delta("chat_broadcast_fanout_sum") as recipients,
    ):
        metrics.broadcast_delivered("emit", frames, members, {"a", "zz"})
        metrics.broadcast_delivered("emit", frames, members, set())
        metrics.broadcast_delivered("disconnect", None, members, set())  # control message: not a delivery
        metrics.broadcast_delivered("emit", frames, {"a": object()}, {"a"})  # nobody left to deliver to
    assert delivered.value == 5
    assert fanouts.value == 2
    assert recipients.value == 5
    assert metrics.local.rates["delivered"].total == 5


def test_direct_emits_count_as_deliveries():
    with Delta("chat_messages_delivered_total", event="chat:message-sent") as sent:
        metrics.message_delivered("chat:message-sent")
    assert sent.value == 1


def test_event_failures_by_kind():
    with (
        Delta("chat_event_errors_total", event="chat:send-message", kind="client") as client,
        Delta("chat_event_errors_total", event="chat:send-message", kind="internal") as internal,
    ):
        metrics.event_failed("chat:send-message", internal=False)
        metrics.event_failed("chat:send-message", internal=True)
        metrics.event_failed("chat:send-message", internal=True)
    assert (client.value, internal.value) == (1, 2)


# --- processing time and channel-layer sends -----------------------------------------------------


async def _sent() -> str:
    await asyncio.sleep(0)
    return "sent"


async def _failing_send() -> None:
    raise ConnectionError("redis is gone")


async def test_processing_time_is_receipt_to_the_handlers_first_broadcast():
    """As the server does: the hook in on_message, then a handler task that broadcasts twice."""
    handler_done = asyncio.Event()

    async def handler() -> None:
        metrics.event_handling()
        await asyncio.sleep(0.02)
        assert await metrics.broadcast(_sent()) == "sent"
        await metrics.broadcast(_sent())  # a second broadcast of the same event: not measured again
        handler_done.set()

    with (
        Delta("chat_message_processing_seconds_count") as processed,
        Delta("chat_message_processing_seconds_sum") as seconds,
        Delta("chat_broadcasts_total") as broadcasts,
        Delta("chat_channel_layer_send_seconds_count", kind="broadcast") as sends,
    ):
        metrics.message_received("chat:send-message", 50)
        asyncio.get_running_loop().create_task(handler())
        await handler_done.wait()
        # The receiving task's own later broadcasts (a disconnect's user-left) are not measured.
        await metrics.broadcast(_sent())
    assert processed.value == 1
    assert 0.015 <= seconds.value < 1.0
    assert broadcasts.value == 3
    assert sends.value == 3
    assert len(metrics.local.samples["processing"]) == 1


async def test_broadcasts_after_the_handler_are_not_measured():
    """A timer the handler set (typing expiry) broadcasts later from another task: not processing time."""
    later = asyncio.Event()

    async def expire() -> None:
        await metrics.broadcast(_sent())
        later.set()

    async def handler() -> None:
        metrics.event_handling()
        asyncio.get_running_loop().call_later(0.01, lambda: asyncio.ensure_future(expire()))

    with Delta("chat_message_processing_seconds_count") as processed:
        metrics.message_received("chat:typing", 30)
        await asyncio.get_running_loop().create_task(handler())
        await later.wait()
    assert processed.value == 0


async def test_broadcasts_outside_any_event_are_not_measured():
    with Delta("chat_message_processing_seconds_count") as processed, Delta("chat_broadcasts_total") as sent:
        await asyncio.get_running_loop().create_task(metrics.broadcast(_sent()))
    assert (processed.value, sent.value) == (0, 1)


async def test_layer_send_errors_are_counted_and_raised():
    with (
        Delta("chat_channel_layer_send_errors_total", kind="broadcast") as errors,
        Delta("chat_broadcasts_total") as sent,
    ):
        with pytest.raises(ConnectionError):
            await metrics.broadcast(_failing_send())
    assert (errors.value, sent.value) == (1, 0)
    with Delta("chat_channel_layer_send_seconds_count", kind="control") as control:
        await metrics.layer_send(_sent())
    assert control.value == 1


# --- sessions -----------------------------------------------------------------------------------


def test_sessions_joins_leaves_and_active(monkeypatch):
    monkeypatch.setattr(metrics, "_workspaces", frozenset({"acme"}))
    with (
        Delta("chat_session_joins_total", workspace="acme") as joins,
        Delta("chat_session_leaves_total", workspace="acme") as leaves,
        Delta("chat_sessions_active", workspace="acme") as sessions,
        Delta("chat_session_members_active", workspace="acme") as members,
        Delta("chat_session_joins_total", workspace="other") as other_joins,
    ):
        metrics.session_joined("s1", "acme", "room-1")
        metrics.session_joined("s1", "acme", "room-1")  # twice: counted once
        metrics.session_joined("s2", "acme", "room-1")
        metrics.session_joined("s2", "acme", "room-2")
        metrics.session_joined("s3", "zeta", "room-9")  # not configured: "other"
        assert value("chat_sessions_active", workspace="acme") - sessions.before == 2
        assert value("chat_session_members_active", workspace="acme") - members.before == 3
        metrics.session_left("s1", "acme", "room-1")
        metrics.session_left("s1", "acme", "room-1")  # twice: counted once
        metrics.session_left("s2", "acme", "room-2")
        metrics.session_left("nobody", "acme", "room-1")  # never joined: nothing
    assert joins.value == 3
    assert leaves.value == 2
    assert sessions.value == 1  # room-1 still has s2
    assert members.value == 1
    assert other_joins.value == 1
    assert metrics.local.session_members == {("acme", "room-1"): 1, ("zeta", "room-9"): 1}


def test_workspaces_are_other_unless_configured(monkeypatch):
    monkeypatch.setattr(metrics, "_workspaces", frozenset())
    before = series_count("chat_session_joins_total")
    for i in range(200):
        metrics.session_joined(f"sock-{i}", f"workspace-{i}", "s")
    assert series_count("chat_session_joins_total") <= before + 1


# --- security, agents, housekeeping ---------------------------------------------------------------


def test_rate_limits_count_refusals_only():
    with Delta("chat_rate_limit_hits_total", operation="send") as hits:
        metrics.rate_limit_checked("send", True)
        metrics.rate_limit_checked("send", False)
        metrics.rate_limit_checked("send", False)
    assert hits.value == 2


def test_security_events_by_type():
    with Delta("chat_security_events_total", type="authentication_failed") as events:
        metrics.security_event("authentication_failed")
    assert events.value == 1


def test_agent_run_duration_first_chunk_and_errors():
    with (
        Delta("chat_agent_runs_total", backend="echo") as runs,
        Delta("chat_agent_runs_active") as active,
        Delta("chat_agent_time_to_first_chunk_seconds_count", backend="echo") as first,
        Delta("chat_agent_run_duration_seconds_count", backend="echo") as durations,
        Delta("chat_agent_run_errors_total", backend="echo", error="timeout") as errors,
    ):
        ok = metrics.agent_run("echo")
        ok.first_chunk()
        ok.first_chunk()
        ok.finished()
        failed = metrics.agent_run("echo")
        failed.finished("timeout")
        failed.finished("timeout")
    assert runs.value == 2
    assert active.value == 0
    assert first.value == 1
    assert durations.value == 2
    assert errors.value == 1


def test_housekeeping_runs_and_purges():
    with (
        Delta("chat_housekeeping_runs_total", outcome="ok") as ok,
        Delta("chat_housekeeping_runs_total", outcome="failed") as failed,
        Delta("chat_housekeeping_purged_total", kind="presence") as purged,
    ):
        metrics.purged("presence", 3)
        metrics.purged("presence", 0)
        metrics.housekeeping_ran(True)
        metrics.housekeeping_ran(False)
    assert (ok.value, failed.value, purged.value) == (1, 1, 3)
    assert value("chat_housekeeping_last_run_timestamp_seconds") > 0
    assert metrics.local.housekeeping["purged"] == {"presence": 3}
    assert metrics.local.housekeeping["runs"] == 2
