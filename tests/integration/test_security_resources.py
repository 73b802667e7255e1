"""Clients that hold resources without playing along are closed by the heartbeat; everyone else is unaffected.

One server per backend with a fast heartbeat (``CHAT_PING_INTERVAL_MS=1000``,
``CHAT_PING_TIMEOUT_MS=1000``: a silent client is gone 2 s after its last
pong) and limits high enough that heavy chat is never refused.

- A polling client that opens a session, connects, joins, and never polls again.
- A slow reader: a WebSocket completed by hand over a raw TCP socket with a
  4 KiB receive buffer, which joins a session with raw Socket.IO frames and
  then stops reading while two others chat heavily in that session.  Its pong
  cannot come (it never even reads the ping behind the backlog), so the
  heartbeat must close it; the others' messages must keep arriving promptly.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass

import aiohttp
import pytest

from tests.conftest import ServerProcess
from tests.integration.chat_client import ChatClient, client_pool, issue_tokens, presence_rows, unique
from tests.integration.hostile import (
    HIGH_LIMITS,
    RawPolling,
    SlowReader,
    assert_no_traceback,
    engine_error_body,
    log_records,
    log_since,
    log_size,
    varied_text,
)

PING_INTERVAL_S = PING_TIMEOUT_S = 1.0
HEARTBEAT_S = PING_INTERVAL_S + PING_TIMEOUT_S
SLACK_S = 4.0  # a busy two-core machine


@dataclass
class World:
    server: ServerProcess
    ws: str
    tokens: dict[str, str]
    users: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def world(module_server_factory, module_backend) -> World:
    server = module_server_factory(
        module_backend,
        conformance=False,
        CHAT_PING_INTERVAL_MS=str(int(PING_INTERVAL_S * 1000)),
        CHAT_PING_TIMEOUT_MS=str(int(PING_TIMEOUT_S * 1000)),
        **HIGH_LIMITS,
    )
    ws, suffix = unique("rws"), unique("u")
    names = ["a", "b", "idle", "slow"]
    users = {name: f"{name}-{suffix}" for name in names}
    tokens = issue_tokens(server, [(users[name], ws, "moderator") for name in names])
    return World(server, ws, {name: tokens[users[name]] for name in names}, users)


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def test_a_polling_client_that_never_polls_is_closed(world, new):
    offset = log_size(world.server)
    session = unique("idle")
    observer = await new("observer").connect(world.url, world.tokens["a"], ["websocket"])
    await observer.join(world.ws, session)
    async with aiohttp.ClientSession() as http:
        idle = RawPolling(http, world.url)
        opened_at = time.monotonic()
        await idle.open(poll=False)
        assert idle.handshake["pingInterval"] == 1000 and idle.handshake["pingTimeout"] == 1000
        assert await idle.send('40{"token":"%s"}' % world.tokens["idle"]) == (200, "ok")
        status, body = await idle.get_once()
        assert status == 200 and body.startswith('40{"sid":'), body
        socket_id = json.loads(body[2:].split("\x1e")[0])["sid"]
        join = {"sessionId": session, "workspaceId": world.ws}
        assert await idle.send('421["chat:join-session",%s]' % json.dumps(join)) == (200, "ok")
        for _ in range(20):  # bounded: read until the join's ack, then never again
            status, body = await idle.get_once()
            assert status == 200, body
            if "431[" in body:
                break
        last_poll = time.monotonic()
        await observer.wait_for("chat:user-joined", lambda p: p["socketId"] == socket_id)
        assert presence_rows(world.server, socket_id), "joined"
        left = await observer.wait_for(
            "chat:user-left", lambda p: p["socketId"] == socket_id, timeout=HEARTBEAT_S + SLACK_S
        )
        closed_at = time.monotonic()
        assert left["userId"] == world.users["idle"]
        assert closed_at - opened_at >= HEARTBEAT_S - 0.2, "closed by the heartbeat, not before it could expire"
        assert closed_at - last_poll <= HEARTBEAT_S + SLACK_S
        status, body = await idle.get_once()
        assert (status, json.loads(body)) == (
            400,
            engine_error_body(1, "Session ID unknown", "unknown_session", "Session ID unknown"),
        )
    assert presence_rows(world.server, socket_id) == []
    assert observer.connected
    assert_no_traceback(world.server, offset)


async def test_a_websocket_reader_that_stops_reading_is_closed_and_others_keep_chatting(world, new):
    offset = log_size(world.server)
    session = unique("busy")
    a = await new("a").connect(world.url, world.tokens["a"], ["websocket"])
    b = await new("b").connect(world.url, world.tokens["b"], ["polling"])
    await a.join(world.ws, session)
    await b.join(world.ws, session)

    slow = SlowReader(world.server.port, rcvbuf=4096)

    def join_then_stall() -> str:
        handshake = slow.handshake()
        assert handshake["pingInterval"] == 1000, handshake
        slow.send_text('40{"token":"%s"}' % world.tokens["slow"])
        connected = slow.read_until(lambda text: text.startswith("40") or text.startswith("44"))
        assert connected.startswith('40{"sid":'), connected
        slow.send_text('421["chat:join-session",%s]' % json.dumps({"sessionId": session, "workspaceId": world.ws}))
        ack = slow.read_until(lambda text: text.startswith("431["))
        assert json.loads(ack[3:])[0]["ok"] is True, ack
        return json.loads(connected[2:])["sid"]

    try:
        socket_id = await asyncio.to_thread(join_then_stall)
        stalled_at = time.monotonic()  # from now on it never reads (nor answers a ping)
        await a.wait_for("chat:user-joined", lambda p: p["socketId"] == socket_id)

        latencies: list[float] = []

        async def chat(sender: ChatClient, receiver: ChatClient, count: int) -> None:
            for n in range(count):
                mid = unique(f"heavy{n}")
                mark, start = receiver.mark(), time.monotonic()
                ack = await sender.send(session, varied_text(3000, mid), mid, timeout=15)
                assert ack.get("ok") is True, ack
                await receiver.wait_for(
                    "chat:message-received", lambda m, mid=mid: m["id"] == mid, timeout=15, since=mark
                )
                latencies.append(time.monotonic() - start)

        chatting = asyncio.gather(chat(a, b, 60), chat(b, a, 60))
        left = await a.wait_for("chat:user-left", lambda p: p["socketId"] == socket_id, timeout=HEARTBEAT_S + SLACK_S)
        left_after = time.monotonic() - stalled_at
        await chatting
        assert left["userId"] == world.users["slow"]
        assert left_after <= HEARTBEAT_S + SLACK_S, left_after
        assert len(latencies) == 120
        assert statistics.median(latencies) < 1.0 and max(latencies) < 3.0, (
            statistics.median(latencies),
            max(latencies),
        )
        assert presence_rows(world.server, socket_id) == []
        # Reading again, the slow client finds the connection ended by the server.
        ending = await asyncio.to_thread(slow.drain_until_closed, 20)
        assert ending in ("close-frame", "eof", "reset"), ending
    finally:
        slow.close()
    assert a.connected and b.connected
    assert_no_traceback(world.server, offset)


async def test_an_idle_server_logs_no_errors(world):
    """Nothing happening for a while is not an error: the log stays free of ERROR records and tracebacks."""
    offset = log_size(world.server)
    await asyncio.sleep(6.5)  # longer than any internal blocking read (channels_redis's BZPOPMIN waits 5 s)
    records = log_records(log_since(world.server, offset))
    errors = [record for record in records if " ERROR " in record.splitlines()[0] or "Traceback" in record]
    assert errors == [], "\n".join(errors)[-4000:]
