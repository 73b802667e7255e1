"""Real clients drive real traffic; the metrics move by exactly what the clients did and saw.

Every test here needs the monitoring hooks in ``chat/`` (``docs/monitoring.md``,
"Hooks"); without them the counters stay at zero and these tests fail.

Expected numbers come from the clients: what each one sent, and the events
each one received (``chat_messages_delivered_total`` by event must equal the
events the clients got, per event name).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp

from monitoring.metrics import SERVER_EVENTS
from tests.integration.chat_client import ChatClient, client_pool, db_execute, issue_tokens, unique
from tests.integration.test_monitoring_support import Scrape, aget_json, ascrape, delta, start

#: Events that only ever reach sockets through a room broadcast (the fan-out).
ROOM_EVENTS = ("chat:message-received", "chat:user-joined", "chat:user-left", "chat:typing-indicator")


def delivered_label(event: str) -> str:
    return event if event in SERVER_EVENTS else "other"


def received_events(clients: list[ChatClient]) -> Counter[str]:
    """Server events the clients received, by metric label (lifecycle entries left out)."""
    counts: Counter[str] = Counter()
    for client in clients:
        for name, _ in client.stream:
            if name not in ("connect", "disconnect", "connect_error"):
                counts[delivered_label(name)] += 1
    return counts


async def settled(server: Any, before: Scrape, check, timeout: float = 10.0) -> Scrape:
    """Scrape until ``check(after)`` holds (closes and leaves finish after the client returns)."""
    deadline = time.monotonic() + timeout
    while True:
        after = await ascrape(server)
        if check(after) or time.monotonic() >= deadline:
            return after
        await asyncio.sleep(0.1)


# --- connections ----------------------------------------------------------------------------------------


async def test_connections_by_transport(server_factory, embedded_backend):
    server = start(server_factory, embedded_backend)
    token = issue_tokens(server, [("alice", "acme", "member")])["alice"]
    before = await ascrape(server)
    async with client_pool() as new:
        polling = await new("polling").connect(server.url, token, ["polling"])
        websocket = await new("websocket").connect(server.url, token, ["websocket"])
        upgraded = await new("upgrade").connect(server.url, token, ["polling", "websocket"])
        during = await ascrape(server)
        assert delta(during, before, "chat_connections_opened_total", transport="polling") == 2
        assert delta(during, before, "chat_connections_opened_total", transport="websocket") == 1
        assert delta(during, before, "chat_connection_upgrades_total") == 1
        assert delta(during, before, "chat_connections_active", transport="polling") == 1
        assert delta(during, before, "chat_connections_active", transport="websocket") == 2
        status, report = await aget_json(server, "/api/v1/metrics/")
        assert report["current"]["connections"]["active"] == {"polling": 1, "websocket": 2, "total": 3}
        for client in (polling, websocket, upgraded):
            await client.disconnect()
    after = await settled(server, before, lambda s: delta(s, before, "chat_connections_closed_total") == 3)
    assert delta(after, before, "chat_connections_closed_total", transport="websocket") == 2
    assert delta(after, before, "chat_connections_closed_total", transport="polling") == 1
    assert delta(after, before, "chat_connections_closed_total", reason="transport_close") == 3
    assert delta(after, before, "chat_connections_active") == 0
    assert delta(after, before, "chat_connection_duration_seconds_count") == 3


async def test_connection_errors_by_reason(server_factory, embedded_backend):
    server = start(server_factory, embedded_backend)
    before = await ascrape(server)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/socket.io/?EIO=4&transport=polling&sid=nope") as response:
            assert response.status == 400
        async with http.get(f"{server.url}/socket.io/?EIO=4&transport=carrier-pigeon") as response:
            assert response.status == 400
        async with http.get(f"{server.url}/socket.io/?EIO=3&transport=polling") as response:
            assert response.status == 400
    async with client_pool() as new:
        refused = await new("anonymous").connect(server.url, "chat_not-a-real-token", ["websocket"], expect_error=True)
        assert refused.events("connect_error")
    after = await ascrape(server)
    assert delta(after, before, "chat_connection_errors_total", reason="unknown_session") == 1
    assert delta(after, before, "chat_connection_errors_total", reason="unknown_transport") == 1
    assert delta(after, before, "chat_connection_errors_total", reason="unsupported_protocol_version") == 1
    assert delta(after, before, "chat_connection_errors_total", reason="unauthenticated") == 1
    assert delta(after, before, "chat_connection_errors_total") == 4


# --- chat traffic -------------------------------------------------------------------------------------------


async def test_chat_traffic_moves_every_metric_exactly(server_factory, backend):
    server = start(server_factory, backend)
    workspace, session = unique("ws"), unique("s")
    tokens = issue_tokens(server, [("alice", workspace, "moderator"), ("bob", workspace, "moderator")])
    before = await ascrape(server)
    async with client_pool() as new:
        alice = await new("alice").connect(server.url, tokens["alice"], ["websocket"])
        bob = await new("bob").connect(server.url, tokens["bob"], ["polling"])
        await alice.join(workspace, session)
        await bob.join(workspace, session)
        await alice.wait_for("chat:user-joined")
        joined = await ascrape(server)
        assert delta(joined, before, "chat_sessions_active") == 1
        assert delta(joined, before, "chat_session_members_active") == 2
        status, report = await aget_json(server, "/api/v1/metrics/")
        top = report["summary"]["sessions"]["per_workspace"]["top"]
        assert {"workspace": workspace, "sessions": 1, "members": 2} in top

        for text in ("one", "two", "three"):
            assert (await alice.send(session, text))["ok"] is True
        await bob.wait_for("chat:message-received", count=3)
        assert (await bob.call("chat:typing", {"sessionId": session, "isTyping": True}))["ok"] is True
        assert (await bob.call("chat:typing", {"sessionId": session, "isTyping": False}))["ok"] is True
        await alice.wait_for("chat:typing-indicator", count=2)
        not_joined = await alice.send("never-joined", "lost")  # a client error
        assert not_joined["ok"] is False and not_joined["code"] == "not_joined"
        assert (await alice.call("chat:leave-session", {"sessionId": session}))["ok"] is True
        await bob.wait_for("chat:user-left")
        await asyncio.sleep(0.3)  # nothing else in flight

        seen = received_events([alice, bob])
        room_deliveries = sum(seen[event] for event in ROOM_EVENTS)
        middle = await ascrape(server)
        for event, count in seen.items():
            assert delta(middle, before, "chat_messages_delivered_total", event=event) == count, (event, seen)
        assert delta(middle, before, "chat_messages_delivered_total") == sum(seen.values())
        assert delta(middle, before, "chat_broadcast_fanout_sum") == room_deliveries == 7
        assert delta(middle, before, "chat_broadcast_fanout_count") == 7  # one recipient each
        # Bob leaves last: his departure is announced to an empty session (a broadcast, no delivery).
        assert (await bob.call("chat:leave-session", {"sessionId": session}))["ok"] is True
        await alice.disconnect()
        await bob.disconnect()

    after = await settled(server, before, lambda s: delta(s, before, "chat_connections_closed_total") == 2)
    sent = {"chat:join-session": 2, "chat:send-message": 4, "chat:typing": 2, "chat:leave-session": 2}
    for event, count in sent.items():
        assert delta(after, before, "chat_messages_received_total", event=event) == count, event
    assert delta(after, before, "chat_message_size_bytes_count") == sum(sent.values())
    # Handlers that broadcast: 2 joins, 3 sends, 2 typing changes, 2 leaves (the failed send does not);
    # one broadcast each.
    assert delta(after, before, "chat_message_processing_seconds_count") == 9
    assert delta(after, before, "chat_broadcasts_total") == 9
    assert delta(after, before, "chat_channel_layer_send_seconds_count", kind="broadcast") == 9
    assert delta(after, before, "chat_event_errors_total", event="chat:send-message", kind="client") == 1
    assert delta(after, before, "chat_event_errors_total", kind="internal") == 0
    assert delta(after, before, "chat_session_joins_total", workspace="other") == 2
    assert delta(after, before, "chat_session_leaves_total", workspace="other") == 2
    assert delta(after, before, "chat_sessions_active") == 0
    assert delta(after, before, "chat_session_members_active") == 0

    status, report = await aget_json(server, "/api/v1/metrics/?window=300")
    summary = report["summary"]
    assert summary["messages"]["received"] == 10
    assert summary["messages"]["processing_ms"]["count"] == 9
    assert summary["messages"]["fanout"]["count"] == 7
    assert summary["sessions"]["joins"] == 2 and summary["sessions"]["leaves"] == 2
    assert summary["messages"]["client_errors"] == 1


async def test_workspace_label_only_for_configured_workspaces(server_factory, embedded_backend):
    server = start(server_factory, embedded_backend, CHAT_METRICS_WORKSPACES="acme")
    tokens = issue_tokens(server, [("alice", "acme", "member"), ("alice", "beta", "member")])
    before = await ascrape(server)
    async with client_pool() as new:
        alice = await new("alice").connect(server.url, tokens["alice"], ["websocket"])
        await alice.join("acme", unique("s"))
        await alice.join("beta", unique("s"))
        during = await ascrape(server)
        assert delta(during, before, "chat_session_joins_total", workspace="acme") == 1
        assert delta(during, before, "chat_session_joins_total", workspace="other") == 1
        assert {labels["workspace"] for labels in during.series("chat_session_joins_total")} <= {"acme", "other"}


# --- housekeeping and buffers ---------------------------------------------------------------------------


async def test_expired_presence_purge_is_measured(server_factory, embedded_backend):
    server = start(server_factory, embedded_backend, CHAT_PRESENCE_TTL_S="1")
    workspace, session = unique("ws"), unique("s")
    tokens = issue_tokens(server, [("alice", workspace, "moderator"), ("bob", workspace, "moderator")])
    before = await ascrape(server)
    async with client_pool() as new:
        alice = await new("alice").connect(server.url, tokens["alice"], ["websocket"])
        bob = await new("bob").connect(server.url, tokens["bob"], ["websocket"])
        await alice.join(workspace, session)
        await bob.join(workspace, session)
        # Bob's row now looks like it belongs to a worker that died a minute ago.
        db_execute(
            server,
            "UPDATE chat_presence SET worker_id = 'dead-worker', last_seen = '2000-01-01 00:00:00' WHERE user_name = ?",
            ("bob",),
        )
        await alice.wait_for("chat:user-left", timeout=10)
        after = await settled(
            server, before, lambda s: delta(s, before, "chat_housekeeping_purged_total", kind="presence") >= 1
        )
    assert delta(after, before, "chat_housekeeping_purged_total", kind="presence") == 1
    assert delta(after, before, "chat_housekeeping_runs_total", outcome="ok") >= 1
    assert after.value("chat_housekeeping_last_run_timestamp_seconds") >= time.time() - 10
    status, report = await aget_json(server, "/api/v1/metrics/")
    assert report["current"]["housekeeping"]["purged"]["presence"] == 1


async def test_buffers_report_their_sizes(server_factory, embedded_backend):
    server = start(server_factory, embedded_backend, CHAT_METRICS_HISTORY_INTERVAL_S="1")
    token = issue_tokens(server, [("alice", "acme", "member")])["alice"]
    async with client_pool() as new:
        for i in range(3):
            await new(f"c{i}").connect(server.url, token, ["websocket"])
        metrics = await settled(
            server, Scrape(""), lambda s: s.value("chat_buffer_items", buffer="engine_sessions") == 3
        )
        assert metrics.value("chat_buffer_items", buffer="engine_sessions") == 3
        assert metrics.value("chat_buffer_items", buffer="rooms") >= 2  # each socket's own room, the namespace
        assert metrics.value("chat_buffer_bytes", buffer="polling_outbox") == 0
        status, report = await aget_json(server, "/api/v1/metrics/")
        assert report["current"]["buffers"]["engine_sessions"] == {"items": 3}
