"""A client that stops reading cannot hold up anyone's broadcasts: it is disconnected (1008), recorded and counted.

One uvicorn server per backend, run as production runs it, with the smallest
bounds on what a client may leave unread (16 messages, 64 KiB beyond what
the kernel buffers).  The slow reader is a WebSocket completed by hand over a
raw TCP socket with a 4 KiB receive buffer that joins a session and then
reads nothing; the default heartbeat (25 s + 20 s) is far longer than the
test, so only the bound can close it.

Bystanders' latency is measured first without the slow reader (the baseline)
and then, with the same traffic, while it stalls: one in its session, one in
another workspace.  Before the fix a broadcast awaited each member's send, so
the slow reader held up its whole session (and, through the broker's reader,
every room of the worker).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass

import pytest

from tests.conftest import ServerProcess
from tests.integration.chat_client import ChatClient, client_pool, issue_tokens, unique
from tests.integration.hostile import HIGH_LIMITS, SlowReader, security_events, varied_text, wait_security_events
from tests.integration.test_monitoring_support import get_json, monitoring_env, scrape

ENV = monitoring_env(**HIGH_LIMITS, CHAT_MAX_BUFFERED_PACKETS="16", CHAT_MAX_BUFFERED_BYTES="65536")
FLOOD_PER_ROUND = 20
FLOOD_LENGTH = 9_000
BASELINE_ROUNDS = 8
#: The kernel holds a few MB for the slow reader before the server's own bound counts: enough rounds to pass it.
MAX_STALLED_ROUNDS = 40
#: Bystanders may be this many times slower (median) than in the baseline; a blocked fan-out never delivers.
LATENCY_RATIO = 5
SLOW_CLIENT_CLOSE = 1008


@dataclass
class World:
    server: ServerProcess
    ws: str
    other_ws: str
    tokens: dict[str, str]
    users: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def world(module_server_factory, module_backend) -> World:
    server = module_server_factory(module_backend, conformance=False, server="uvicorn", **ENV)
    ws, other_ws, suffix = unique("sws"), unique("ows"), unique("u")
    here, elsewhere = ("a", "b", "slow", "slow2"), ("c", "d")
    users = {name: f"{name}-{suffix}" for name in here + elsewhere}
    specs = [(users[name], ws, "moderator") for name in here] + [(users[name], other_ws, "moderator") for name in elsewhere]
    tokens = issue_tokens(server, specs)
    return World(server, ws, other_ws, {name: tokens[users[name]] for name in users}, users)


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


def stall(world: World, slow: SlowReader, name: str, session: str) -> str:
    """Connect and join ``session`` by hand, then stop reading; the socket id."""
    slow.handshake()
    slow.send_text('40{"token":"%s"}' % world.tokens[name])
    connected = slow.read_until(lambda text: text.startswith("40") or text.startswith("44"))
    assert connected.startswith('40{"sid":'), connected
    slow.send_text('421["chat:join-session",%s]' % json.dumps({"sessionId": session, "workspaceId": world.ws}))
    ack = slow.read_until(lambda text: text.startswith("431["))
    assert json.loads(ack[3:])[0]["ok"] is True, ack
    return json.loads(connected[2:])["sid"]


async def marker(sender: ChatClient, receiver: ChatClient, session: str) -> float:
    """Seconds from sending a short message to its broadcast reaching ``receiver``."""
    mid, mark, start = unique("mark"), receiver.mark(), time.monotonic()
    ack = await sender.send(session, f"marker {mid}", mid, timeout=15)
    assert ack.get("ok") is True, ack
    await receiver.wait_for("chat:message-received", lambda m: m["id"] == mid, timeout=15, since=mark)
    return time.monotonic() - start


async def flood(sender: ChatClient, session: str) -> None:
    for _ in range(FLOOD_PER_ROUND):
        mid = unique("flood")
        ack = await sender.send(session, varied_text(FLOOD_LENGTH, mid), mid, timeout=15)
        assert ack.get("ok") is True, ack


async def flood_until_cut_off(world: World, a: ChatClient, session: str, socket_id: str) -> None:
    """Fill the slow reader's buffers until the server disconnects it (seen as its ``chat:user-left``)."""
    for _ in range(MAX_STALLED_ROUNDS):
        await flood(a, session)
        if any(left["socketId"] == socket_id for left in a.events("chat:user-left")):
            return
    raise AssertionError("the slow reader was never disconnected")


async def test_client_that_stops_reading_cannot_hold_up_broadcasts(world, new):
    session, other_session = unique("slow"), unique("other")
    a = await new("a").connect(world.url, world.tokens["a"], ["websocket"])
    b = await new("b").connect(world.url, world.tokens["b"], ["polling"])
    c = await new("c").connect(world.url, world.tokens["c"], ["websocket"])
    d = await new("d").connect(world.url, world.tokens["d"], ["websocket"])
    for client, ws, where in ((a, world.ws, session), (b, world.ws, session), (c, world.other_ws, other_session)):
        await client.join(ws, where)
    await d.join(world.other_ws, other_session)

    async def rounds(count: int, until_cut_off: str | None = None) -> tuple[list[float], list[float]]:
        same, other = [], []
        for _ in range(count):
            await flood(a, session)
            same.append(await marker(a, b, session))
            other.append(await marker(c, d, other_session))
            if until_cut_off and any(left["socketId"] == until_cut_off for left in a.events("chat:user-left")):
                break
        return same, other

    baseline = await rounds(BASELINE_ROUNDS)
    events_before = max([0, *(row["id"] for row in await asyncio.to_thread(security_events, world.server))])
    slow = SlowReader(world.server.port, rcvbuf=4096)
    try:
        socket_id = await asyncio.to_thread(stall, world, slow, "slow", session)
        await a.wait_for("chat:user-joined", lambda p: p["socketId"] == socket_id)
        stalled = await rounds(MAX_STALLED_ROUNDS, until_cut_off=socket_id)
        left = await a.wait_for("chat:user-left", lambda p: p["socketId"] == socket_id, timeout=15)
        assert left["userId"] == world.users["slow"]
        assert await asyncio.to_thread(slow.close_code, 20) == SLOW_CLIENT_CLOSE
    finally:
        slow.close()

    medians = [statistics.median(values) for values in (*baseline, *stalled)]
    assert medians[2] <= LATENCY_RATIO * medians[0], f"same session: {medians[0]:.3f} s before, {medians[2]:.3f} s"
    assert medians[3] <= LATENCY_RATIO * medians[1], f"other workspace: {medians[1]:.3f} s before, {medians[3]:.3f} s"
    events = await wait_security_events(
        world.server, events_before, lambda row: row["type"] == "slow_client_disconnected"
    )
    assert events[0]["username"] == world.users["slow"]
    assert events[0]["detail"] == {"transport": "websocket"}
    assert a.connected and b.connected and c.connected and d.connected


async def test_dropped_messages_are_counted_and_shown_in_health(world, new):
    session = unique("drop")
    a = await new("a").connect(world.url, world.tokens["a"], ["websocket"])
    await a.join(world.ws, session)
    before = scrape(world.server).value("chat_messages_dropped_total", where="slow_client")
    slow = SlowReader(world.server.port, rcvbuf=4096)
    try:
        socket_id = await asyncio.to_thread(stall, world, slow, "slow2", session)
        await a.wait_for("chat:user-joined", lambda p: p["socketId"] == socket_id)
        await flood_until_cut_off(world, a, session, socket_id)
    finally:
        slow.close()
    metrics = scrape(world.server)
    assert metrics.value("chat_messages_dropped_total", where="slow_client") > before
    assert metrics.value("chat_slow_clients_disconnected_total", transport="websocket") >= 1
    status, health = get_json(world.server, "/api/v1/health/")
    assert status in (200, 503), health
    check = next(check for check in health["checks"] if check["name"] == "dropped_messages")
    assert check["status"] == "degraded" and check["value"] > 0, check
    assert "slow_client" in check["message"], check

