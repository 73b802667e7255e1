"""Rate and connection limits against real servers: per user, per operation, adaptive, across processes.

One server per backend with small limits (send 5/min, join/typing/presence/
history 6/min, 3 connections, penalties after 2 strikes relaxing after 3 s
of quiet).  On the services backend two more servers share Redis with each
other, to show that both limits are counted across processes, and a third
is SIGKILLed to show that its connection counts heal within the TTL.
Every test uses users of its own.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.conftest import ServerProcess
from tests.integration.chat_client import (
    TRANSPORTS,
    ChatClient,
    assert_error,
    client_pool,
    issue_tokens,
    stored_messages,
    unique,
)
from tests.integration.hostile import (
    RawPolling,
    RawWebSocket,
    event_of,
    last_event_id,
    open_raw,
    security_events,
    until,
    wait_security_events,
)

LIMITS = {"join": 6, "send": 5, "typing": 6, "presence": 6, "history": 6}
CONNECTION_LIMIT = 3
CONNECTION_TTL_S = 2
PENALTY_QUIET_S = 3
ENV = {
    "CHAT_MESSAGE_RATE_LIMIT": str(LIMITS["send"]),
    "CHAT_JOIN_RATE_LIMIT": str(LIMITS["join"]),
    "CHAT_TYPING_RATE_LIMIT": str(LIMITS["typing"]),
    "CHAT_PRESENCE_RATE_LIMIT": str(LIMITS["presence"]),
    "CHAT_HISTORY_RATE_LIMIT": str(LIMITS["history"]),
    "CHAT_PENALTY_STRIKES": "2",
    "CHAT_PENALTY_STRIKE_WINDOW_S": "60",
    "CHAT_PENALTY_QUIET_S": str(PENALTY_QUIET_S),
    "CHAT_CONNECTION_LIMIT": str(CONNECTION_LIMIT),
    "CHAT_CONNECTION_TTL_S": str(CONNECTION_TTL_S),
    "CHAT_SPAM_MAX_REPEATS": "100000",
    "CHAT_API_RATE_LIMIT": "",
}
CONNECTION_LIMIT_MESSAGE = "Too many simultaneous connections for this account; close one and retry."
USERS = 60


class Users:
    """Pre-issued members of one workspace, handed out one by one."""

    def __init__(self, server: ServerProcess, count: int = USERS) -> None:
        self.ws, suffix = unique("lws"), unique("u")
        names = [f"u{n}-{suffix}" for n in range(count)]
        self.tokens = issue_tokens(server, [(name, self.ws, "member") for name in names])
        self._free = iter(names)

    def take(self) -> tuple[str, str]:
        name = next(self._free)
        return name, self.tokens[name]


@dataclass
class World:
    server: ServerProcess
    users: Users

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ws(self) -> str:
        return self.users.ws


@pytest.fixture(scope="module")
def world(module_server_factory, module_backend) -> World:
    server = module_server_factory(module_backend, conformance=False, **ENV)
    return World(server, Users(server))


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def do(client: ChatClient, operation: str, session: str) -> Any:
    """One hit of ``operation``; returns the ack."""
    if operation == "join":
        return await client.call("chat:join-session", {"sessionId": unique("j"), "workspaceId": client.ws})  # type: ignore[attr-defined]
    if operation == "send":
        return await client.send(session, f"message {unique('t')}")
    if operation == "typing":
        return await client.call("chat:typing", {"sessionId": session, "isTyping": True})
    if operation == "presence":
        return await client.call("chat:update-presence", {"sessionId": session, "status": "away"})
    if operation == "history":
        return await client.call("chat:request-history", {"sessionId": session, "limit": 5})
    raise AssertionError(operation)


EVENT_OF = {
    "join": "chat:join-session",
    "send": "chat:send-message",
    "typing": "chat:typing",
    "presence": "chat:update-presence",
    "history": "chat:request-history",
}


async def member(world: World, new, transports, label: str = "") -> tuple[str, ChatClient]:
    name, token = world.users.take()
    client = await new(label or name).connect(world.url, token, transports)
    client.ws = world.ws  # type: ignore[attr-defined]
    return name, client


def assert_rate_limited(ack: Any, client: ChatClient, event: str, since: int) -> dict[str, Any]:
    body = assert_error(ack, "rate_limited", client, event, since)
    retry = body["retryAfter"]
    assert isinstance(retry, int) and 0 < retry <= 60_000, body
    return body


# --- per-user, per-operation limits ------------------------------------------------------------------


@pytest.mark.parametrize("transports", TRANSPORTS)
@pytest.mark.parametrize("operation", list(LIMITS))
async def test_each_operation_has_its_own_limit(world, new, transports, operation):
    before = last_event_id(world.server)
    name, client = await member(world, new, transports)
    session = unique("rl")
    if operation != "join":
        await client.join(world.ws, session)  # one join of the join budget, none of this one's
    for n in range(LIMITS[operation]):
        ack = await do(client, operation, session)
        assert ack.get("ok") is True, (operation, n, ack)
    since = client.mark()
    body = assert_rate_limited(await do(client, operation, session), client, EVENT_OF[operation], since)
    assert body["retryAfter"] > 30_000, body  # the 60 s window's first hit was moments ago
    # Per operation: another operation of the same user still goes through...
    if operation == "join":
        session = client.events("chat:join-session-success")[0]["sessionId"]
    other = "typing" if operation != "typing" else "history"
    assert (await do(client, other, session)).get("ok") is True
    # ...and another user is not affected at all.
    _, bystander = await member(world, new, transports, "bystander")
    assert (await _fresh_op(bystander, world, operation)).get("ok") is True
    await wait_security_events(world.server, before, event_of("rate_limit_exceeded", name, operation=operation))
    assert client.connected


async def _fresh_op(client: ChatClient, world: World, operation: str) -> Any:
    session = unique("free")
    await client.join(world.ws, session)
    return await do(client, operation, session)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_flood_of_sends_from_one_socket(world, new, transport):
    """60 sends at once from one raw socket (one POST / 60 frames): exactly the limit is stored, the rest refused.

    Raw, because python-engineio's polling client gives up on a response of
    more than 16 packets (its ``Payload.max_decode_packets``), which a burst
    of instant refusals produces.
    """
    before = last_event_id(world.server)
    name, token = world.users.take()
    _, other = await member(world, new, ["websocket"], "other")
    session, their_session = unique("flood"), unique("calm")
    await other.join(world.ws, their_session)
    async with aiohttp.ClientSession() as http:
        flooder = await open_raw(http, world.url, transport)
        try:
            assert (await flooder.connect({"token": token})).startswith('40{"sid"')
            join = {"sessionId": session, "workspaceId": world.ws}
            await flooder.send('421["chat:join-session",%s]' % json.dumps(join))
            await flooder.wait_packet(lambda p: isinstance(p, str) and p.startswith("431["), 10)
            messages = [
                {"id": f"flood-{n}", "sessionId": session, "content": f"flood {n} {unique('f')}"} for n in range(60)
            ]
            sends = [f"42{100 + n}" + json.dumps(["chat:send-message", {"message": m}]) for n, m in enumerate(messages)]
            await flooder.send(*sends)
            acks = await until(lambda: _acks(flooder, range(100, 160)), 30)
            assert acks is not None, flooder.packets[-5:]
            codes = ["ok" if ack["ok"] else ack["code"] for ack in acks]
            assert codes.count("ok") == LIMITS["send"], codes
            assert codes.count("rate_limited") == 60 - LIMITS["send"], codes
            assert not flooder.closed, flooder.ending
            # The other user chats normally meanwhile.
            for n in range(3):
                assert (await other.send(their_session, f"calm {n} {unique('c')}"))["ok"] is True
        finally:
            await flooder.aclose()
    assert len(stored_messages(world.server, world.ws, session)) == LIMITS["send"]
    # One event for the whole flood: a flood cannot flood the security event table.
    await wait_security_events(world.server, before, event_of("rate_limit_exceeded", name, operation="send"))
    await asyncio.sleep(1.0)
    mine = [e for e in security_events(world.server, before) if e["username"] == name]
    assert len(mine) == 1, mine


def _acks(client, ids) -> list[dict[str, Any]] | None:
    found = {}
    for packet in client.packets:
        if isinstance(packet, str) and packet.startswith("43"):
            bracket = packet.index("[")
            found[int(packet[2:bracket])] = json.loads(packet[bracket:])[0]
    wanted = list(ids)
    return [found[i] for i in wanted] if all(i in found for i in wanted) else None


async def test_limits_tighten_for_repeat_offenders_and_relax_after_a_quiet_period(world, new):
    name, client = await member(world, new, ["websocket"])
    session = unique("adapt")
    await client.join(world.ws, session)
    for _ in range(LIMITS["typing"]):
        assert (await do(client, "typing", session))["ok"] is True
    for _ in range(2):  # two strikes (CHAT_PENALTY_STRIKES=2): penalty level 1, every limit halved
        since = client.mark()
        assert_rate_limited(await do(client, "typing", session), client, "chat:typing", since)
    halved = LIMITS["history"] // 2
    for n in range(halved):
        assert (await do(client, "history", session))["ok"] is True, n
    since = client.mark()
    assert_rate_limited(await do(client, "history", session), client, "chat:request-history", since)
    # A quiet period without strikes lowers the level again: the full presence limit is back.
    await asyncio.sleep(PENALTY_QUIET_S + 0.5)
    for n in range(LIMITS["presence"]):
        ack = await do(client, "presence", session)
        assert ack["ok"] is True, (n, ack)
    since = client.mark()
    assert_rate_limited(await do(client, "presence", session), client, "chat:update-presence", since)


# --- connection limits -------------------------------------------------------------------------------


async def try_connect(client: ChatClient, url: str, token: str, transports: list[str], **kwargs: Any) -> bool:
    try:
        await client.sio.connect(url, auth={"token": token}, transports=transports, wait_timeout=10, **kwargs)
    except Exception:
        return False
    return True


def refused_for_limit(client: ChatClient) -> bool:
    errors = client.events("connect_error")
    return bool(errors) and errors[0] == {
        "message": CONNECTION_LIMIT_MESSAGE,
        "data": {"code": "connection_limit", "limit": CONNECTION_LIMIT},
    }


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_connection_limit_refuses_the_next_and_releases_on_disconnect(world, new, transports):
    before = last_event_id(world.server)
    name, token = world.users.take()
    held = [await new(f"c{n}").connect(world.url, token, transports) for n in range(CONNECTION_LIMIT)]
    extra = new("extra")
    assert not await try_connect(extra, world.url, token, transports)
    assert refused_for_limit(extra), extra.stream
    other_name, other_token = world.users.take()
    assert (await new("other-user").connect(world.url, other_token, transports)).connected
    await held[0].disconnect()
    again = await new("again").connect(world.url, token, transports)
    assert again.connected
    await wait_security_events(world.server, before, event_of("connection_limit_exceeded", name))


async def test_a_flood_of_connections_from_one_user(world, new):
    name, token = world.users.take()
    clients = [new(f"flood{n}") for n in range(12)]
    modes = [["websocket"], ["polling"]]
    results = await asyncio.gather(*(try_connect(c, world.url, token, modes[n % 2]) for n, c in enumerate(clients)))
    assert sum(results) == CONNECTION_LIMIT, [c.stream for c in clients]
    refused = [c for c, ok in zip(clients, results) if not ok]
    assert all(refused_for_limit(c) for c in refused), [c.stream for c in refused]
    _, other_token = world.users.take()
    assert (await new("unaffected").connect(world.url, other_token, ["websocket"])).connected


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_connect_abandoned_mid_handshake_gives_its_slot_back(world, new, transport):
    """CONNECT, then the transport closes at once (a flaky network, an impatient client).

    The slot taken for it must be released; the heartbeat refreshes the slots
    a worker holds, so a leaked one would never expire.
    """
    name, token = world.users.take()
    async with aiohttp.ClientSession() as http:
        for _ in range(CONNECTION_LIMIT + 1):
            if transport == "websocket":
                raw = await RawWebSocket(http, world.url).open()
                await raw.send('40{"token":"%s"}' % token)
                await raw.aclose()
            else:
                raw = await RawPolling(http, world.url).open(poll=False)
                await raw.post('40{"token":"%s"}' % token)
                await raw.post("1")
                await raw.aclose()
    await asyncio.sleep(CONNECTION_TTL_S + 1.0)  # longer than any entry could live unrefreshed
    clients = [new(f"after{n}") for n in range(CONNECTION_LIMIT)]
    results = [await try_connect(c, world.url, token, ["websocket"]) for c in clients]
    assert all(results), [c.stream for c in clients]


async def test_a_refused_origin_takes_no_connection_slot(world, new):
    """Hijack attempts from a foreign page (valid token, foreign Origin) are refused before any handler runs."""
    name, token = world.users.take()
    for n in range(CONNECTION_LIMIT + 2):
        evil = new(f"evil{n}")
        ok = await try_connect(
            evil, world.url, token, [["websocket"], ["polling"]][n % 2], headers={"Origin": "http://evil.example"}
        )
        assert not ok and evil.events("connect") == []
    for n in range(CONNECTION_LIMIT):
        assert (await new(f"legit{n}").connect(world.url, token, ["websocket"])).connected


# --- two processes sharing Redis ----------------------------------------------------------------------


@dataclass
class Pair:
    a: ServerProcess
    b: ServerProcess
    users: Users


@pytest.fixture(scope="module")
def pair(module_server_factory, services_backend) -> Pair:
    a = module_server_factory(services_backend, conformance=False, **ENV)
    b = module_server_factory(services_backend, conformance=False, **ENV)
    return Pair(a, b, Users(a, 20))


@pytest.mark.services
async def test_rate_limit_is_counted_across_two_servers(pair, new):
    name, token = pair.users.take()
    session = unique("two")
    on_a = await new("on-a").connect(pair.a.url, token, ["websocket"])
    on_b = await new("on-b").connect(pair.b.url, token, ["polling"])
    await on_a.join(pair.users.ws, session)
    await on_b.join(pair.users.ws, session)
    acks = []
    for n in range(LIMITS["send"]):
        client = (on_a, on_b)[n % 2]
        acks.append(await client.send(session, f"shared {n} {unique('s')}"))
    assert all(ack["ok"] is True for ack in acks), acks
    for client in (on_a, on_b):
        since = client.mark()
        assert_rate_limited(await client.send(session, f"over {unique('o')}"), client, "chat:send-message", since)
    assert len(stored_messages(pair.a, pair.users.ws, session)) == LIMITS["send"]


@pytest.mark.services
async def test_connection_limit_is_counted_across_two_servers(pair, new):
    name, token = pair.users.take()
    held_a = [await new(f"a{n}").connect(pair.a.url, token, ["websocket"]) for n in range(CONNECTION_LIMIT - 1)]
    held_b = await new("b0").connect(pair.b.url, token, ["polling"])
    for server, transports in ((pair.a, ["polling"]), (pair.b, ["websocket"])):
        extra = new("extra")
        assert not await try_connect(extra, server.url, token, transports)
        assert refused_for_limit(extra), extra.stream
    await held_a[0].disconnect()  # released on A: B may now accept one
    assert (await new("b1").connect(pair.b.url, token, ["websocket"])).connected
    assert held_b.connected


@pytest.mark.services
async def test_connection_counts_heal_when_a_server_is_killed(pair, server_factory, services_backend, new):
    doomed_ttl = 2
    doomed = server_factory(services_backend, conformance=False, **{**ENV, "CHAT_CONNECTION_TTL_S": str(doomed_ttl)})
    name, token = pair.users.take()
    for n in range(CONNECTION_LIMIT):
        await new(f"doomed{n}").connect(doomed.url, token, ["websocket"])
    probe = new("probe")
    assert not await try_connect(probe, pair.a.url, token, ["websocket"])
    assert refused_for_limit(probe)
    doomed.kill()
    killed_at = time.monotonic()
    healed_after = None
    for attempt in range(40):  # bounded: 40 attempts, about 0.5 s apart
        client = new(f"retry{attempt}")
        if await try_connect(client, pair.a.url, token, ["websocket"]):
            healed_after = time.monotonic() - killed_at
            break
        assert refused_for_limit(client), client.stream
        await asyncio.sleep(0.5)
    assert healed_after is not None, "the dead server's connections never stopped counting"
    assert healed_after <= doomed_ttl + 5, healed_after
