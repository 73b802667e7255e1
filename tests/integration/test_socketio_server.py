"""Socket.IO v5 / Engine.IO v4 acceptance against real daphne processes in conformance mode.

The event-level tests run with both clients -- python-socketio's AsyncClient
and the official Node client through ``tests/js/sio_driver.mjs`` -- over
long-polling only, WebSocket only and polling-then-upgrade, on both
backends, and assert the full stream of events each client received.  The
rest drives Engine.IO by hand with aiohttp, for what no client library does
on purpose: silent clients, oversized payloads, bad requests, foreign origins.

What the conformance application does is described in ``channels_socketio/conformance.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import engineio.packet
import pytest
import socketio

from tests.conftest import SIO_DRIVER, arun_node
from tests.integration.clients import (
    FINAL_TRANSPORT,
    MODES,
    PyClient,
    RawEngine,
    engine_error,
    node_script,
    node_view,
    to_wire,
)

CLIENTS = ["python", pytest.param("node", marks=pytest.mark.node)]


def matrix(test):
    """Run a test with both clients over every transport mode."""
    test = pytest.mark.parametrize("mode", MODES)(test)
    return pytest.mark.parametrize("client", CLIENTS)(test)


def auth_event(auth: Any, ns: str = "/") -> dict[str, Any]:
    return {"ns": ns, "name": "auth", "args": [auth]}


def event(name: str, *args: Any, ns: str = "/") -> dict[str, Any]:
    return {"ns": ns, "name": name, "args": list(args)}


# --- servers and clients ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def sio_server(module_server_factory, module_backend):
    """Conformance defaults (300 ms pings, so heartbeats run through every test), per backend."""
    return module_server_factory(module_backend)


@pytest.fixture(scope="module")
def strict_server(module_server_factory, embedded_backend):
    """One allowed origin, a 10 kB maxPayload and no pings during a test."""
    return module_server_factory(
        embedded_backend,
        CHAT_ALLOWED_ORIGINS="http://good.example",
        CHAT_MAX_PAYLOAD="10000",
        CHAT_PING_INTERVAL_MS="60000",
        CHAT_PING_TIMEOUT_MS="60000",
    )


PING_INTERVAL_S, PING_TIMEOUT_S = 0.3, 0.2


@pytest.fixture(scope="module")
def fast_ping_server(module_server_factory, embedded_backend):
    """Heartbeats only: clients that answer pings without joining a namespace stay (no connect timeout)."""
    return module_server_factory(
        embedded_backend,
        CHAT_PING_INTERVAL_MS=str(int(PING_INTERVAL_S * 1000)),
        CHAT_PING_TIMEOUT_MS=str(int(PING_TIMEOUT_S * 1000)),
        CHAT_CONNECT_TIMEOUT_MS="60000",
    )


@pytest.fixture
async def py_client():
    """``await py_client(url, mode, auth=..., namespaces=..., replies=...)``: connected, closed at teardown."""
    clients: list[PyClient] = []

    async def connect(url: str, mode: str, *, auth: Any = None, namespaces=("/",), replies=None) -> PyClient:
        client = PyClient(namespaces=namespaces, replies=replies)
        clients.append(client)
        return await client.connect(url, mode, auth=auth)

    yield connect
    for client in clients:
        await client.close()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


async def run_node(url: str, mode: str, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    output = await arun_node(SIO_DRIVER, node_script(url, mode, steps, **extra))
    return node_view(output)


# --- connecting, events, acks, binary, namespaces -----------------------------------------------


@matrix
async def test_connect_with_auth(sio_server, py_client, client, mode):
    auth = {"token": "s3cr3t", "user": {"id": 7, "roles": ["a", "b"]}}
    if client == "python":
        c = await py_client(sio_server.url, mode, auth=auth)
        await c.wait_event("auth")
        events, transport = c.events, c.transport
    else:
        out = await run_node(sio_server.url, mode, [{"do": "connect", "auth": auth}, {"do": "wait", "event": "auth"}])
        assert out["results"][0] == {"connected": True}
        events, transport = out["events"], out["transport"]
    assert events == [auth_event(auth)]
    assert transport == FINAL_TRANSPORT[mode]


@matrix
async def test_events_both_ways(sio_server, py_client, client, mode):
    messages = [["hello"], [1, 2.5, None, True], [{"nested": {"list": [1, "two", {"three": 3}]}}, "é ☃ 🚀"]]
    if client == "python":
        c = await py_client(sio_server.url, mode)
        for args in messages:
            await c.emit("message", *args)
        await c.wait_event("message-back", count=len(messages))
        events, transport = c.events, c.transport
    else:
        steps = [{"do": "connect"}]
        steps += [{"do": "emit", "event": "message", "args": args} for args in messages]
        steps += [{"do": "wait", "event": "message-back"} for _ in messages]
        out = await run_node(sio_server.url, mode, steps)
        events, transport = out["events"], out["transport"]
    assert events == [auth_event({})] + [event("message-back", *args) for args in messages]
    assert transport == FINAL_TRANSPORT[mode]


@matrix
async def test_acks_both_ways(sio_server, py_client, client, mode):
    """Client-to-server (message-with-ack) and server-to-client (call-me: the server asks the client)."""
    replies = {"question": ["answer", 42]}
    if client == "python":
        c = await py_client(sio_server.url, mode, replies=replies)
        echoed = await c.call("message-with-ack", "a", {"b": [1, 2]})
        answered = await c.call("call-me", "question", "what", 6, 7)
        acks, events, transport = [echoed, answered], c.events, c.transport
    else:
        steps = [
            {"do": "connect"},
            {"do": "emit", "event": "message-with-ack", "args": ["a", {"b": [1, 2]}], "ack": True},
            {"do": "emit", "event": "call-me", "args": ["question", "what", 6, 7], "ack": True},
        ]
        out = await run_node(sio_server.url, mode, steps, replies=replies)
        acks, events, transport = [a["args"] for a in out["acks"]], out["events"], out["transport"]
    assert acks == [["a", {"b": [1, 2]}], ["answer", 42]]
    # The server's question reached the client before its answer came back.
    assert events == [auth_event({}), event("question", "what", 6, 7)]
    assert transport == FINAL_TRANSPORT[mode]


@matrix
async def test_binary_payloads_both_ways(sio_server, py_client, client, mode):
    blob = bytes(range(256)) * 4
    args = [b"\x00\x01\x02", {"file": blob, "meta": {"parts": [b"\xff", "text", b""]}}, [1, [b"deep"]]]
    replies = {"binary-question": [{"got": b"\xde\xad\xbe\xef"}, b"\x00"]}
    if client == "python":
        c = await py_client(sio_server.url, mode, replies=replies)
        await c.emit("message", *args)
        await c.wait_event("message-back")
        acks = [await c.call("message-with-ack", *args), await c.call("call-me", "binary-question", blob)]
        events, transport = c.events, c.transport
    else:
        steps = [
            {"do": "connect"},
            {"do": "emit", "event": "message", "args": args},
            {"do": "wait", "event": "message-back"},
            {"do": "emit", "event": "message-with-ack", "args": args, "ack": True},
            {"do": "emit", "event": "call-me", "args": ["binary-question", blob], "ack": True},
        ]
        out = await run_node(sio_server.url, mode, steps, replies=to_wire(replies))
        acks, events, transport = [a["args"] for a in out["acks"]], out["events"], out["transport"]
    assert events == [auth_event({}), event("message-back", *args), event("binary-question", blob)]
    assert acks == [args, [{"got": b"\xde\xad\xbe\xef"}, b"\x00"]]
    assert transport == FINAL_TRANSPORT[mode]


@matrix
async def test_two_namespaces_on_one_connection(sio_server, py_client, client, mode):
    if client == "python":
        # python-socketio sends the same auth to every namespace it connects.
        c = await py_client(sio_server.url, mode, auth={"who": "both"}, namespaces=("/", "/custom"))
        await c.emit("message", "to-custom", ns="/custom")
        await c.wait_event("message-back", ns="/custom")
        await c.emit("message", "to-main", ns="/")
        await c.wait_event("message-back", ns="/")
        custom_ack = await c.call("message-with-ack", "ack-custom", ns="/custom")
        events, transport, sids = c.events, c.transport, {c.sio.get_sid("/"), c.sio.get_sid("/custom")}
        expected_auth = [auth_event({"who": "both"}), auth_event({"who": "both"}, "/custom")]
    else:
        steps = [
            {"do": "connect", "ns": "/", "auth": {"who": "main"}},
            {"do": "connect", "ns": "/custom", "auth": {"who": "custom"}},
            {"do": "emit", "ns": "/custom", "event": "message", "args": ["to-custom"]},
            {"do": "wait", "ns": "/custom", "event": "message-back"},
            {"do": "emit", "ns": "/", "event": "message", "args": ["to-main"]},
            {"do": "wait", "ns": "/", "event": "message-back"},
            {"do": "emit", "ns": "/custom", "event": "message-with-ack", "args": ["ack-custom"], "ack": True},
        ]
        out = await run_node(sio_server.url, mode, steps)
        custom_ack = out["acks"][0]["args"]
        events, transport, sids = out["events"], out["transport"], None
        expected_auth = [auth_event({"who": "main"}), auth_event({"who": "custom"}, "/custom")]
    # Each namespace answers on its own, whatever order the two CONNECTs complete in.
    assert sorted(events[:2], key=lambda e: e["ns"]) == expected_auth
    assert events[2:] == [event("message-back", "to-custom", ns="/custom"), event("message-back", "to-main")]
    assert custom_ack == ["ack-custom"]
    assert transport == FINAL_TRANSPORT[mode]
    if sids is not None:
        assert len(sids) == 2 and None not in sids, "each namespace is a socket of its own"


@matrix
async def test_unknown_namespace_is_refused(sio_server, py_client, client, mode):
    if client == "python":
        c = PyClient(namespaces=("/", "/nope"))
        try:
            with pytest.raises(socketio.exceptions.ConnectionError, match="/nope"):
                await c.connect(sio_server.url, mode)
        finally:
            await c.close()
        errors = c.connect_errors
    else:
        steps = [{"do": "connect"}, {"do": "connect", "ns": "/nope"}, {"do": "emit", "event": "message", "args": [1]}]
        steps.append({"do": "wait", "event": "message-back"})
        out = await run_node(sio_server.url, mode, steps)
        errors = out["connect_errors"]
        connects = [result for result in out["results"] if "connected" in result]
        assert connects == [{"connected": True}, {"connected": False, "error": "Invalid namespace"}]
        # The refusal concerns that namespace only: "/" keeps working.
        assert out["events"] == [auth_event({}), event("message-back", 1)]
    # Conformance mode answers as the reference server does: the message only (the chat adds data.code).
    assert errors == [{"ns": "/nope", "message": "Invalid namespace", "data": None}]


@matrix
async def test_server_initiated_disconnect(sio_server, py_client, client, mode):
    if client == "python":
        c = await py_client(sio_server.url, mode)
        await c.wait_event("auth")
        await c.emit("disconnect-me")
        await c.wait_disconnect()
        disconnects, events, expected_reason = c.disconnects, c.events, "server disconnect"
    else:
        steps = [{"do": "connect"}, {"do": "emit", "event": "disconnect-me"}, {"do": "waitDisconnect"}]
        out = await run_node(sio_server.url, mode, steps)
        disconnects, events, expected_reason = out["disconnects"], out["events"], "io server disconnect"
    assert disconnects == [{"ns": "/", "reason": expected_reason}]
    assert events == [auth_event({})]


@matrix
async def test_client_disconnect_closes_the_server_session(strict_server, py_client, http, client, mode):
    """After the client disconnects the server forgets its session at once (pings are 60 s apart here)."""
    raw = RawEngine(http, strict_server.url)

    def session_state(status: int | None, body: Any) -> str:
        if status is None:
            return "known, polling"  # the probe became a poll that waited
        body = json.loads(body) if isinstance(body, str) else body
        if status == 400 and body["code"] == 1:
            return "unknown"
        if status == 400 and body["code"] == 3:
            return "known, on websocket"  # a polling request for a WebSocket session
        return f"unexpected {status} {body}"

    async def probe(sid: str) -> str:
        try:
            return session_state(*await raw.get(sid, timeout=1))
        except TimeoutError:
            return session_state(None, None)

    if client == "python":
        c = await py_client(strict_server.url, mode)
        sid = c.engine_sid
        before = await probe(sid) if mode != "polling" else None
        await c.sio.disconnect()
        after = None
        for _ in range(50):
            after = await probe(sid)
            if after == "unknown":
                break
            await asyncio.sleep(0.02)
    else:
        get = {"do": "get", "path": "/socket.io/?EIO=4&transport=polling&sid=$sid", "timeoutMs": 1000}
        steps = [{"do": "connect"}, {"do": "transport"}]
        steps += [get] if mode != "polling" else []
        steps += [{"do": "disconnect"}, {"do": "sleep", "ms": 200}, get]
        out = await run_node(strict_server.url, mode, steps)
        results = [r for r in out["results"] if "status" in r or r.get("timeout")]
        before = session_state(results[0].get("status"), results[0].get("body")) if mode != "polling" else None
        after = session_state(results[-1].get("status"), results[-1].get("body"))
        assert out["disconnects"] == [{"ns": "/", "reason": "io client disconnect"}]
    if mode != "polling":
        # A GET on a live polling session would steal the client's poll, so
        # only WebSocket sessions are probed before the disconnect.
        assert before == "known, on websocket"
    assert after == "unknown"


# --- heartbeat ------------------------------------------------------------------------------------


async def _frames_until_closed(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> tuple[list[str], float | None]:
    """Every text frame until the server closes; the close time, or ``None`` if it stayed open."""
    frames: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await ws.receive(timeout=left)
        except asyncio.TimeoutError:
            break
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            return frames, time.monotonic()
        frames.append(message.data)
    return frames, None


async def _answer_pings(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[str]:
    frames: list[str] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await ws.receive(timeout=left)
        except asyncio.TimeoutError:
            break
        assert message.type is aiohttp.WSMsgType.TEXT, f"connection ended: {message}"
        frames.append(message.data)
        if message.data == "2":
            await ws.send_str("3")
    return frames


async def test_ping_timeout_closes_a_silent_websocket(fast_ping_server, http):
    raw = RawEngine(http, fast_ping_server.url)
    silent = await raw.websocket()
    opened = time.monotonic()  # the server's heartbeat for it started just before
    answering = await raw.websocket()
    for ws in (silent, answering):
        handshake = json.loads((await ws.receive_str(timeout=5))[1:])
        assert (handshake["pingInterval"], handshake["pingTimeout"]) == (300, 200)
        await ws.send_str("40")  # a Socket.IO connect, so that layer is closed too

    window = PING_INTERVAL_S + PING_TIMEOUT_S
    silent_result = asyncio.create_task(_frames_until_closed(silent, timeout=window + 3))
    answered = await _answer_pings(answering, seconds=window * 3)
    frames, closed_at = await silent_result

    assert closed_at is not None, f"the silent client was never closed; it got {frames}"
    assert window - 0.1 <= closed_at - opened <= window + 1.0, closed_at - opened
    assert frames[0].startswith("40{") and frames[1:] == ['42["auth",{}]', "2"]
    # The client that answers is pinged again and again and stays connected.
    assert answered.count("2") >= 3 and not answering.closed
    await answering.close()


async def test_ping_timeout_forgets_a_polling_client_that_never_polls(fast_ping_server, http):
    raw = RawEngine(http, fast_ping_server.url)
    silent = await raw.handshake()
    answering = await raw.handshake()
    window = PING_INTERVAL_S + PING_TIMEOUT_S
    deadline = time.monotonic() + window + 0.5
    bodies = []
    while time.monotonic() < deadline:
        status, body = await raw.get(answering["sid"])
        assert status == 200, body
        bodies.append(body)
        if "2" in body.split("\x1e"):
            assert await raw.post(answering["sid"], "3") == (200, "ok")
    status, body = await raw.get(silent["sid"])
    assert (status, engine_error(body)) == (400, (1, "Session ID unknown"))
    assert bodies.count("2") >= 2 and "1" not in bodies, bodies
    assert (await raw.get(answering["sid"]))[0] == 200, "the client that answered pings is still connected"


# --- maxPayload ----------------------------------------------------------------------------------


async def test_max_payload_polling_post(strict_server, http):
    raw = RawEngine(http, strict_server.url)
    handshake = await raw.handshake()
    sid, limit = handshake["sid"], handshake["maxPayload"]
    assert limit == 10000
    assert await raw.post(sid, "6" + "x" * (limit - 1)) == (200, "ok"), "exactly maxPayload is accepted"
    status, body = await raw.post(sid, "6" + "x" * limit)
    assert status == 413
    assert engine_error(body) == (3, "Bad request")
    assert json.loads(body)["context"]["code"] == "payload_too_large"
    status, body = await raw.get(sid)
    assert (status, engine_error(body)[0]) == (400, 1), "the session is closed"


async def test_max_payload_websocket_frame(strict_server, http):
    ws = await RawEngine(http, strict_server.url).websocket()
    limit = json.loads((await ws.receive_str(timeout=5))[1:])["maxPayload"]
    await ws.send_str("6" + "x" * (limit - 1))
    await ws.send_str("2")
    assert await ws.receive_str(timeout=5) == "3", "a frame of exactly maxPayload is accepted"
    await ws.send_str("6" + "x" * limit)
    message = await ws.receive(timeout=5)
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert ws.close_code == 1009


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_oversized_event_disconnects_only_its_sender(strict_server, py_client, mode):
    bystander = await py_client(strict_server.url, mode)
    sender = await py_client(strict_server.url, mode)
    await sender.emit("message", "x" * 20_000)
    await sender.wait_disconnect()
    assert not sender.sio.connected
    await bystander.emit("message", "still here")
    await bystander.wait_event("message-back")
    assert bystander.events == [auth_event({}), event("message-back", "still here")]
    assert bystander.disconnects == []
    assert sender.received("message-back") == []


# --- Engine.IO HTTP errors, origins and CORS ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params", "code", "message"),
    [
        ("GET", {"transport": "carrier-pigeon"}, 0, "Transport unknown"),
        ("GET", {"sid": "no-such-session"}, 1, "Session ID unknown"),
        ("POST", {}, 2, "Bad handshake method"),
        ("GET", {"transport": "websocket"}, 3, "Bad request"),  # a WebSocket handshake without the upgrade
        ("GET", {"EIO": "3"}, 5, "Unsupported protocol version"),
    ],
    ids=["unknown-transport", "unknown-sid", "post-handshake", "bad-request", "eio3"],
)
async def test_engine_io_error_codes(strict_server, http, method, params, code, message):
    status, headers, body = await RawEngine(http, strict_server.url).request(method, **params)
    assert status == 400
    assert headers["Content-Type"] == "application/json"
    assert engine_error(body) == (code, message)


async def test_forbidden_origin_on_polling_and_websocket(strict_server, http):
    raw = RawEngine(http, strict_server.url)
    status, headers, body = await raw.request("GET", headers={"Origin": "http://evil.example"})
    assert (status, engine_error(body)) == (403, (4, "Forbidden"))
    assert "Access-Control-Allow-Origin" not in headers
    # A look-alike is not the allowed origin either.
    status, _, body = await raw.request("GET", headers={"Origin": "http://good.example.evil.example"})
    assert (status, engine_error(body)) == (403, (4, "Forbidden"))
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await raw.websocket(headers={"Origin": "http://evil.example"})
    assert refused.value.status == 403

    ws = await raw.websocket(headers={"Origin": "http://good.example"})
    assert (await ws.receive_str(timeout=5)).startswith("0{")
    await ws.close()


async def test_cors_for_an_allowed_origin(strict_server, http):
    raw = RawEngine(http, strict_server.url)
    good = {"Origin": "http://good.example"}
    status, headers, body = await raw.request("GET", headers=good)
    assert status == 200 and body.startswith("0{")
    assert headers["Access-Control-Allow-Origin"] == "http://good.example"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in headers["Vary"]

    preflight = {**good, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    status, headers, _ = await raw.request("OPTIONS", headers=preflight)
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "http://good.example"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "content-type" in headers["Access-Control-Allow-Headers"].lower()

    status, headers, _ = await raw.request("OPTIONS", headers={**preflight, "Origin": "http://evil.example"})
    assert status == 403 and "Access-Control-Allow-Origin" not in headers


# --- long-polling details and the bare Engine.IO endpoint ---------------------------------------------


async def test_overlapping_gets_close_the_session(strict_server, http):
    raw = RawEngine(http, strict_server.url)
    sid = (await raw.handshake())["sid"]
    first = asyncio.create_task(raw.get(sid))
    await asyncio.sleep(0.3)
    assert not first.done(), "nothing to send yet: the first GET waits"
    status, body = await raw.get(sid)
    assert (status, engine_error(body)[0]) == (400, 3)
    assert await asyncio.wait_for(first, 5) == (200, "1"), "the waiting GET gets the close packet"
    status, body = await raw.get(sid)
    assert (status, engine_error(body)) == (400, (1, "Session ID unknown"))


async def test_engine_io_echo_over_polling(strict_server, http):
    raw = RawEngine(http, strict_server.url, path="/engine.io/")
    sid = (await raw.handshake())["sid"]
    payload = "4hello é ☃\x1ebAAEC/w==\x1e4"  # text, binary (00 01 02 ff), empty text
    assert await raw.post(sid, payload) == (200, "ok")
    assert await raw.get(sid) == (200, payload)


async def test_engine_io_echo_over_websocket(strict_server, http):
    ws = await RawEngine(http, strict_server.url, path="/engine.io/").websocket()
    assert (await ws.receive_str(timeout=5)).startswith("0{")
    await ws.send_str("4hello é ☃")
    assert await ws.receive_str(timeout=5) == "4hello é ☃"
    await ws.send_bytes(b"\x00\x01\x02\xff")
    assert await ws.receive_bytes(timeout=5) == b"\x00\x01\x02\xff"
    # An empty binary message comes back as one too (python-engineio's decoder
    # judges: daphne cannot send an empty binary frame, see channels_socketio/transport/websocket.py).
    await ws.send_bytes(b"")
    echoed = engineio.packet.Packet(encoded_packet=(await ws.receive(timeout=5)).data)
    assert (echoed.packet_type, echoed.binary, echoed.data) == (engineio.packet.MESSAGE, True, b"")
    await ws.send_str("4after")
    assert await ws.receive_str(timeout=5) == "4after"
    await ws.close()


# --- rooms ---------------------------------------------------------------------------------------------


async def _room_scenario(py_client, servers: list, room: str) -> None:
    """Members a and b, non-members c and d, each on the server given for it."""
    a, b, c, d = [await py_client(server.url, "websocket") for server in servers]
    assert await a.call("join", room) == ["joined"]
    assert await b.call("join", room) == ["joined"]
    assert await c.call("join", room + "-other") == ["joined"]

    assert await a.call("to-room", room, "from-a", b"\x01\x02") == ["sent"]
    assert await b.wait_event("room-message") == ["from-a", b"\x01\x02"]
    assert await b.call("to-room", room, "from-b") == ["sent"]
    assert await a.wait_event("room-message") == ["from-b"]

    # b leaves and c joins: the next broadcast reaches c, not b.
    assert await b.call("leave", room) == ["left"]
    assert await c.call("join", room) == ["joined"]
    assert await a.call("to-room", room, "after-leave") == ["sent"]
    assert await c.wait_event("room-message") == ["after-leave"]
    await asyncio.sleep(0.3)  # time for anything misrouted to arrive

    assert a.events == [auth_event({}), event("room-message", "from-b")]
    assert b.events == [auth_event({}), event("room-message", "from-a", b"\x01\x02")]
    assert c.events == [auth_event({}), event("room-message", "after-leave")]
    assert d.events == [auth_event({})]


async def test_room_broadcast_on_one_embedded_server(server_factory, embedded_backend, py_client):
    server = server_factory(embedded_backend)
    await _room_scenario(py_client, [server] * 4, "lobby")


@pytest.mark.services
async def test_room_broadcast_across_two_processes_sharing_redis(server_factory, services_backend, py_client):
    first, second = server_factory(services_backend), server_factory(services_backend)
    room = f"lobby-{time.monotonic_ns()}"
    # a and c on the first process, b and d on the second.
    await _room_scenario(py_client, [first, second, first, second], room)
