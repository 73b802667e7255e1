"""Several worker processes: prometheus_client's multiprocess mode counts every worker's numbers.

Each daphne process gets the same ``PROMETHEUS_MULTIPROC_DIR`` (an empty
directory, set in its environment before anything imports
``prometheus_client``).  A scrape of either process must report the totals
of both.  ``test_two_workers_count_chat_traffic_of_both`` needs the hooks in
``chat/``; the others need only ``monitoring``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.integration.chat_client import client_pool, issue_tokens, unique
from tests.integration.test_monitoring_support import ascrape, delta, get_json, scrape, start


@pytest.fixture
def multiproc_dir(tmp_path: Path) -> Path:
    path = tmp_path / "prometheus"
    path.mkdir()
    return path


def test_two_workers_share_one_set_of_totals(server_factory, embedded_backend, multiproc_dir):
    first = start(server_factory, embedded_backend, PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir))
    second = start(server_factory, embedded_backend, PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir))
    for _ in range(3):
        assert get_json(first, "/readyz", token=None)[0] == 200
    for _ in range(5):
        assert get_json(second, "/readyz", token=None)[0] == 200
    for server in (first, second):
        metrics = scrape(server)
        assert metrics.value("chat_readiness_checks_total", result="ready") == 8
        # Per-worker gauges keep one series per live worker (multiprocess_mode="liveall").
        pids = {labels["pid"] for labels in metrics.series("chat_process_resident_memory_bytes")}
        assert pids == {str(first.process.pid), str(second.process.pid)}
    status, report = get_json(first, "/api/v1/metrics/")
    assert status == 200 and report["multiprocess"] is True
    assert report["totals"]["chat_readiness_checks_total"] == 8
    assert sorted(os.listdir(multiproc_dir))  # the workers' value files


def test_a_stopped_workers_live_gauges_leave_its_counters_stay(server_factory, embedded_backend, multiproc_dir):
    first = start(server_factory, embedded_backend, PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir))
    second = start(server_factory, embedded_backend, PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir))
    assert get_json(second, "/readyz", token=None)[0] == 200
    assert len(scrape(first).series("chat_process_resident_memory_bytes")) == 2
    second.stop()  # SIGTERM: a clean exit marks the process dead
    metrics = scrape(first)
    assert [labels["pid"] for labels in metrics.series("chat_process_resident_memory_bytes")] == [
        str(first.process.pid)
    ]
    assert metrics.value("chat_readiness_checks_total", result="ready") == 1  # counters survive the worker


@pytest.mark.services
async def test_two_workers_count_chat_traffic_of_both(server_factory, services_backend, multiproc_dir):
    """Real clients on both workers; either worker's /metrics has the totals of both.  Needs the hooks."""
    first = start(server_factory, services_backend, PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir))
    second = start(server_factory, services_backend, PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir))
    workspace, session = unique("ws"), unique("s")
    tokens = issue_tokens(first, [(f"user{i}", workspace, "moderator") for i in range(5)])
    before = await ascrape(first)
    async with client_pool() as new:
        on_first = [await new(f"a{i}").connect(first.url, tokens[f"user{i}"], ["websocket"]) for i in range(3)]
        on_second = [await new(f"b{i}").connect(second.url, tokens[f"user{i + 3}"], ["polling"]) for i in range(2)]
        everyone = on_first + on_second
        for client in everyone:
            await client.join(workspace, session)
        for index, client in enumerate(everyone):
            ack = await client.send(session, f"hello from {index}")
            assert ack["ok"] is True
        for client in everyone:
            await client.wait_for("chat:message-received", count=4)
        during = await ascrape(second)
        assert delta(during, before, "chat_connections_active", transport="websocket") == 3
        assert delta(during, before, "chat_connections_active", transport="polling") == 2
        assert delta(during, before, "chat_sessions_active") == 2  # the session has members on both workers
        assert delta(during, before, "chat_session_members_active") == 5
        for client in everyone:  # leave first: a polling client's disconnect can skip its leave (a known bug)
            assert (await client.call("chat:leave-session", {"sessionId": session}))["ok"] is True
            await client.disconnect()
        received = {
            name: sum(len(client.events(name)) for client in everyone)
            for name in ("chat:message-received", "chat:user-joined", "chat:join-session-success", "chat:message-sent")
        }

    async def settled():
        metrics = await ascrape(first)
        closed = delta(metrics, before, "chat_connections_closed_total")
        return metrics if closed == 5 and delta(metrics, before, "chat_session_leaves_total") == 5 else None

    after = None
    for _ in range(50):
        after = await settled()
        if after:
            break
        await asyncio.sleep(0.1)
    assert after is not None, "not every close was counted"
    for server in (first, second):
        metrics = await ascrape(server)
        assert delta(metrics, before, "chat_connections_opened_total", transport="websocket") == 3
        assert delta(metrics, before, "chat_connections_opened_total", transport="polling") == 2
        assert delta(metrics, before, "chat_connections_active") == 0
        assert delta(metrics, before, "chat_session_joins_total") == 5
        assert delta(metrics, before, "chat_session_leaves_total") == 5
        assert delta(metrics, before, "chat_messages_received_total", event="chat:join-session") == 5
        assert delta(metrics, before, "chat_messages_received_total", event="chat:send-message") == 5
        assert delta(metrics, before, "chat_messages_received_total", event="chat:leave-session") == 5
        assert received["chat:message-received"] == 5 * 4
        for event, count in received.items():
            assert delta(metrics, before, "chat_messages_delivered_total", event=event) == count, event
        assert delta(metrics, before, "chat_broadcast_fanout_sum") >= received["chat:message-received"]
