"""Edges of Engine.IO v4 / Socket.IO v5 where we answer exactly as the reference server does.

Each behaviour is checked against running servers, under daphne and under
uvicorn, in conformance mode and -- where the chat answers the same -- in chat
mode (the engine is the same; only the application on ``/socket.io/`` differs):

1. a polling client that POSTs a close packet while a GET waits: the GET is
   answered with a noop (``6``), the next request with that sid gets 400;
2. a POST whose payload does not decode: 400, and the session is gone (the
   next GET gets 400 too);
3. a second WebSocket for a session already upgraded completes its handshake
   and is then closed, not refused (clients raise an HTTP refusal of a
   WebSocket as an unhandled error);
4. an upgrade whose ``EIO`` differs from the session's is refused, not
   answered with ``3probe``;
5. a connection that never joins a namespace is closed after the connect
   timeout (``CHAT_CONNECT_TIMEOUT_MS``: 45 s, 1 s in conformance mode);
6. an unknown namespace: in conformance mode exactly
   ``44/<nsp>,{"message":"Invalid namespace"}``; the chat adds ``data.code``.

The servers of behaviours 1-4 and 6 have the connect timeout raised, so a
slow moment of this shared machine cannot close a session under a test.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import aiohttp
import pytest

from tests.conftest import SERVERS, ServerProcess
from tests.integration.chat_client import issue_tokens, unique
from tests.integration.clients import RawEngine, engine_error

MODES = ("conformance", "chat")
SERVER_MODES = [pytest.param((server, mode), id=f"{server}-{mode}") for server in SERVERS for mode in MODES]
#: Conformance mode's default connect timeout, and the one the chat servers here are given.
CONNECT_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Target:
    process: ServerProcess
    mode: str

    @property
    def url(self) -> str:
        return self.process.url


@pytest.fixture(scope="module", params=SERVER_MODES)
def server(request, module_server_factory, embedded_backend) -> Target:
    name, mode = request.param
    started = module_server_factory(
        embedded_backend,
        conformance=mode == "conformance",
        server=name,
        CHAT_CONNECT_TIMEOUT_MS="60000",
        CHAT_PING_INTERVAL_MS="60000",  # no pings interleaved with what the tests read
        CHAT_PING_TIMEOUT_MS="60000",
    )
    return Target(started, mode)


@pytest.fixture(scope="module", params=SERVER_MODES)
def timeout_server(request, module_server_factory, embedded_backend) -> Target:
    """Conformance mode with its default connect timeout; the chat with the same, set."""
    name, mode = request.param
    settings = {} if mode == "conformance" else {"CHAT_CONNECT_TIMEOUT_MS": str(int(CONNECT_TIMEOUT_S * 1000))}
    started = module_server_factory(embedded_backend, conformance=mode == "conformance", server=name, **settings)
    return Target(started, mode)


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


async def _closed(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> tuple[int | None, list[str]]:
    """The close code once the server closes (None if it did not within ``timeout``), and the frames before.

    Pings are answered, so that only what a test is about can close the connection.
    """
    frames: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await ws.receive(timeout=left)
        except asyncio.TimeoutError:
            break
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            return ws.close_code, frames
        frames.append(message.data)
        if message.data == "2":
            await ws.send_str("3")
    return None, frames


async def _upgraded(raw: RawEngine, sid: str) -> aiohttp.ClientWebSocketResponse:
    ws = await raw.websocket(sid=sid)
    await ws.send_str("2probe")
    assert await ws.receive_str(timeout=5) == "3probe"
    await ws.send_str("5")
    await ws.send_str("2")  # a ping over the upgraded transport: the upgrade is complete once it is answered
    assert await ws.receive_str(timeout=5) == "3"
    return ws


# --- 1. a close packet while a GET waits -----------------------------------------------------------


async def test_a_close_packet_answers_the_waiting_get_with_a_noop(server, http):
    raw = RawEngine(http, server.url)
    sid = (await raw.handshake())["sid"]
    waiting = asyncio.create_task(raw.get(sid))
    await asyncio.sleep(0.3)
    assert not waiting.done(), "nothing to send: the GET waits"
    assert await raw.post(sid, "1") == (200, "ok")
    assert await asyncio.wait_for(waiting, 5) == (200, "6")
    status, body = await raw.get(sid)
    assert (status, engine_error(body)) == (400, (1, "Session ID unknown"))
    status, body = await raw.post(sid, "2")
    assert (status, engine_error(body)) == (400, (1, "Session ID unknown"))


async def test_a_close_packet_with_no_get_waiting_ends_the_session(server, http):
    raw = RawEngine(http, server.url)
    sid = (await raw.handshake())["sid"]
    assert await raw.post(sid, "1") == (200, "ok")
    status, body = await raw.get(sid)
    assert (status, engine_error(body)) == (400, (1, "Session ID unknown"))


# --- 2. a payload that does not decode --------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    ["x", "9", "4hello\x1ez", b"\xff\xfe"],
    ids=["unknown-type-letter", "unknown-type-digit", "second-packet-bad", "not-utf8"],
)
async def test_an_undecodable_post_ends_the_session(server, http, payload):
    raw = RawEngine(http, server.url)
    sid = (await raw.handshake())["sid"]
    status, body = await raw.post(sid, payload)
    assert (status, engine_error(body)) == (400, (3, "Bad request"))
    assert json.loads(body)["context"]["code"] == "invalid_packet"
    status, body = await raw.get(sid)
    assert (status, engine_error(body)) == (400, (1, "Session ID unknown"))


async def test_an_undecodable_post_answers_a_waiting_get_and_ends_the_session(server, http):
    raw = RawEngine(http, server.url)
    sid = (await raw.handshake())["sid"]
    waiting = asyncio.create_task(raw.get(sid))
    await asyncio.sleep(0.3)
    status, _ = await raw.post(sid, "x")
    assert status == 400
    assert await asyncio.wait_for(waiting, 5) == (200, "1"), "the waiting GET learns the session is closed"
    status, body = await raw.get(sid)
    assert (status, engine_error(body)) == (400, (1, "Session ID unknown"))


# --- 3. a second WebSocket for an upgraded session -------------------------------------------------


async def test_a_second_websocket_after_the_upgrade_is_accepted_then_closed(server, http):
    raw = RawEngine(http, server.url)
    sid = (await raw.handshake())["sid"]
    first = await _upgraded(raw, sid)
    second = await raw.websocket(sid=sid)  # the handshake completes: aiohttp would raise on a refusal
    code, frames = await _closed(second, timeout=5)
    assert (code, frames) == (1008, [])
    # The session goes on over the first WebSocket.
    await first.send_str("2")
    assert await first.receive_str(timeout=5) == "3"
    status, body = await raw.get(sid)
    assert (status, engine_error(body)) == (400, (3, "Bad request")), "polling is over for this session"
    await first.close()


async def test_a_second_websocket_during_the_upgrade_is_accepted_then_closed(server, http):
    raw = RawEngine(http, server.url)
    sid = (await raw.handshake())["sid"]
    first = await raw.websocket(sid=sid)
    await first.send_str("2probe")
    assert await first.receive_str(timeout=5) == "3probe"
    second = await raw.websocket(sid=sid)
    assert (await _closed(second, timeout=5))[0] == 1008
    await first.send_str("5")  # the first upgrade completes regardless
    await first.send_str("2")
    assert await first.receive_str(timeout=5) == "3"
    await first.close()


# --- 4. an upgrade with another protocol version ------------------------------------------------


@pytest.mark.parametrize("eio", ["3", "5", None], ids=["EIO=3", "EIO=5", "no-EIO"])
async def test_an_upgrade_with_another_eio_is_refused(server, http, eio):
    raw = RawEngine(http, server.url)
    sid = (await raw.handshake())["sid"]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await raw.websocket(sid=sid, EIO=eio)
    assert refused.value.status in (400, 403)  # daphne and uvicorn turn a refusal into 403
    # Over polling the same request is the Engine.IO error, and the session is untouched.
    status, _, body = await raw.request("GET", sid=sid, EIO=eio)
    assert (status, engine_error(body)) == (400, (5, "Unsupported protocol version"))
    assert await raw.post(sid, "2") == (200, "ok")
    assert await raw.get(sid) == (200, "3")


# --- 5. the connect timeout ---------------------------------------------------------------------


async def test_a_websocket_that_never_connects_is_closed_after_the_connect_timeout(timeout_server, http):
    raw = RawEngine(http, timeout_server.url)
    ws = await raw.websocket()
    opened = time.monotonic()
    handshake = await ws.receive_str(timeout=5)
    assert handshake.startswith("0{")
    code, frames = await _closed(ws, timeout=CONNECT_TIMEOUT_S + 10)
    waited = time.monotonic() - opened
    assert code is not None, f"still open after {waited:.1f} s: {frames}"
    assert waited >= CONNECT_TIMEOUT_S - 0.05, f"closed after {waited:.2f} s, before the connect timeout"
    assert all(frame == "2" for frame in frames), frames  # pings only


async def test_a_polling_session_that_never_connects_is_closed_after_the_connect_timeout(timeout_server, http):
    raw = RawEngine(http, timeout_server.url)
    sid = (await raw.handshake())["sid"]
    opened = time.monotonic()
    bodies: list[str] = []
    for _ in range(100):
        status, body = await raw.get(sid)
        if status != 200:
            break
        bodies.append(body)
        packets = body.split("\x1e")
        if "1" in packets:
            break
        if "2" in packets:
            assert await raw.post(sid, "3") == (200, "ok")  # answer pings: only the connect timeout may close it
    waited = time.monotonic() - opened
    assert bodies and bodies[-1].split("\x1e")[-1] == "1", f"no close packet: {bodies}"
    assert waited >= CONNECT_TIMEOUT_S - 0.05, waited
    status, body = await raw.get(sid)
    assert (status, engine_error(body)) == (400, (1, "Session ID unknown"))


async def _connect_packet(target: Target) -> str:
    if target.mode == "conformance":
        return "40"
    workspace, user = unique("ws"), unique("u")
    token = (await asyncio.to_thread(issue_tokens, target.process, [(user, workspace, "member")]))[user]
    return "40" + json.dumps({"token": token})


async def test_a_connected_socket_is_not_closed_by_the_connect_timeout(timeout_server, http):
    connect = await _connect_packet(timeout_server)  # the token first: issuing it takes longer than the timeout
    ws = await RawEngine(http, timeout_server.url).websocket()
    assert (await ws.receive_str(timeout=5)).startswith("0{")
    await ws.send_str(connect)
    frames: list[str] = []
    deadline = time.monotonic() + CONNECT_TIMEOUT_S * 2.5
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await ws.receive(timeout=left)
        except asyncio.TimeoutError:
            break
        assert message.type is aiohttp.WSMsgType.TEXT, f"closed: {message}, after {frames}"
        frames.append(message.data)
        if message.data == "2":
            await ws.send_str("3")
    assert frames[0].startswith("40{"), frames
    await ws.close()


async def test_a_refused_connect_does_not_stop_the_connect_timeout(timeout_server, http):
    ws = await RawEngine(http, timeout_server.url).websocket()
    assert (await ws.receive_str(timeout=5)).startswith("0{")
    await ws.send_str("40/no-such-namespace,")
    code, frames = await _closed(ws, timeout=CONNECT_TIMEOUT_S + 10)
    assert code is not None, frames
    assert frames[0].startswith("44/no-such-namespace,"), frames


# --- 6. an unknown namespace ------------------------------------------------------------------------


@pytest.mark.parametrize("connect", ["40/random", "40/random,", '40/random,{"token":"x"}'])
async def test_an_unknown_namespace_is_refused_as_the_reference_does(server, http, connect):
    ws = await RawEngine(http, server.url).websocket()
    assert (await ws.receive_str(timeout=5)).startswith("0{")
    await ws.send_str(connect)
    refusal = await ws.receive_str(timeout=5)
    if server.mode == "conformance":
        assert refusal == '44/random,{"message":"Invalid namespace"}'
    else:
        assert refusal == '44/random,{"message":"Invalid namespace","data":{"code":"invalid_namespace"}}'
    await ws.close()
