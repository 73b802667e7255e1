"""The production ASGI server: the application under uvicorn, as ``deploy/`` runs it.

``make run`` and the other integration tests use daphne; production runs
uvicorn (uvloop, httptools, websockets, no per-message deflate, no lifespan;
see ``docs/deployment.md``).  What the two servers could do differently, and
what this module checks under uvicorn on both backends:

- the Socket.IO acceptance tests of ``test_socketio_server`` -- both clients
  (python-socketio and the official Node client), over polling, WebSocket
  and upgrade.  They are imported here, so pytest collects them again in
  this module, where ``sio_server`` and ``strict_server`` are uvicorn servers;
- WebSocket close codes and reasons: daphne needs a patch to send the RFC
  6455 protocol codes (``channels_socketio/transport/daphne_compat.py``); uvicorn sends
  them as the ASGI ``websocket.close`` gives them.  Checked under both
  servers, so "behaves the same" is tested, not assumed;
- long-polling: a waiting GET whose client goes away is cancelled
  (``http.disconnect``) before it takes packets, and a POST after it works;
- the chat protocol: two clients send and receive in one session.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.conftest import SERVERS, ServerProcess
from tests.integration import test_socketio_server as acceptance
from tests.integration.chat_client import RELAXED_SECURITY, ChatClient, issue_tokens, unique
from tests.integration.clients import RawEngine, engine_error

# The fixtures they need and a representative set of the acceptance tests:
# pytest collects these again in this module, against the servers below.
http = acceptance.http
py_client = acceptance.py_client
test_connect_with_auth = acceptance.test_connect_with_auth
test_events_both_ways = acceptance.test_events_both_ways
test_binary_payloads_both_ways = acceptance.test_binary_payloads_both_ways
test_server_initiated_disconnect = acceptance.test_server_initiated_disconnect
test_client_disconnect_closes_the_server_session = acceptance.test_client_disconnect_closes_the_server_session
test_max_payload_polling_post = acceptance.test_max_payload_polling_post
test_max_payload_websocket_frame = acceptance.test_max_payload_websocket_frame
test_overlapping_gets_close_the_session = acceptance.test_overlapping_gets_close_the_session
test_engine_io_echo_over_websocket = acceptance.test_engine_io_echo_over_websocket


def under_uvicorn(server: ServerProcess) -> ServerProcess:
    assert "Uvicorn running on" in server.log_text(), server.log_tail()
    return server


@pytest.fixture(scope="module")
def sio_server(module_server_factory, module_backend):
    """What ``test_socketio_server`` runs its acceptance tests against, under uvicorn."""
    return under_uvicorn(module_server_factory(module_backend, server="uvicorn"))


@pytest.fixture(scope="module")
def strict_server(module_server_factory, module_backend):
    """``test_socketio_server``'s strict server (10 kB maxPayload, no pings in a test), under uvicorn."""
    return under_uvicorn(
        module_server_factory(
            module_backend,
            server="uvicorn",
            CHAT_ALLOWED_ORIGINS="http://good.example",
            CHAT_MAX_PAYLOAD="10000",
            CHAT_PING_INTERVAL_MS="60000",
            CHAT_PING_TIMEOUT_MS="60000",
        )
    )


# --- WebSocket close codes and reasons, under both servers --------------------------------------


@pytest.fixture(scope="module", params=SERVERS)
def any_server(request, module_server_factory, embedded_backend):
    """The strict settings under daphne and under uvicorn: close codes must not depend on the server."""
    return module_server_factory(
        embedded_backend,
        server=request.param,
        CHAT_MAX_PAYLOAD="10000",
        CHAT_PING_INTERVAL_MS="60000",
        CHAT_PING_TIMEOUT_MS="60000",
    )


async def _close_of(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    message = await ws.receive(timeout=5)
    assert message.type is aiohttp.WSMsgType.CLOSE, f"expected a close frame, got {message}"
    return ws.close_code, message.extra or ""


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        ("9nonsense", 1002, "Unknown Engine.IO packet type"),  # not an Engine.IO packet: 1002 protocol error
        ("6" + "x" * 10_000, 1009, "maxPayload"),  # one byte over maxPayload: 1009 message too big
    ],
    ids=["invalid-packet-1002", "too-big-1009"],
)
async def test_protocol_close_codes_and_reasons_reach_the_client(any_server, http, frame, code, reason):
    ws = await RawEngine(http, any_server.url).websocket()
    assert (await ws.receive_str(timeout=5)).startswith("0{")
    await ws.send_str(frame)
    close_code, close_reason = await _close_of(ws)
    assert close_code == code
    assert reason.lower() in close_reason.lower(), close_reason


async def test_application_close_code_reaches_the_client(any_server, http):
    """A Socket.IO connect on a WebSocket session, then an Engine.IO close from the client: a clean 1000."""
    ws = await RawEngine(http, any_server.url).websocket()
    assert (await ws.receive_str(timeout=5)).startswith("0{")
    await ws.send_str("1")  # the client's Engine.IO close packet
    close_code, _ = await _close_of(ws)
    assert close_code == 1000


async def test_upgrade_without_a_probe_is_closed_with_1002(any_server, http):
    raw = RawEngine(http, any_server.url)
    sid = (await raw.handshake())["sid"]
    ws = await raw.websocket(sid=sid)
    await ws.send_str("5")  # the upgrade packet before the probe
    close_code, close_reason = await _close_of(ws)
    assert close_code == 1002
    assert "probe" in close_reason, close_reason


# --- long-polling: a waiting GET whose client leaves ---------------------------------------------


async def test_abandoned_long_poll_is_cancelled_and_the_session_goes_on(strict_server, http):
    raw = RawEngine(http, strict_server.url)
    sid = (await raw.handshake())["sid"]
    assert await raw.post(sid, "40") == (200, "ok")
    status, body = await raw.get(sid)
    assert status == 200 and body.startswith("40{"), body
    if "auth" not in body:
        assert await raw.get(sid) == (200, '42["auth",{}]')

    # A GET that waits, and whose client goes away (aiohttp drops the connection on timeout).
    with pytest.raises(TimeoutError):
        await raw.get(sid, timeout=0.5)
    await asyncio.sleep(0.3)  # time for the server to see http.disconnect

    # Had the abandoned GET still been waiting, it would take this answer to a
    # dead connection, and the next GET would be an overlapping one (400).
    assert await raw.post(sid, '42["message","after the abandoned poll"]') == (200, "ok")
    status, body = await raw.get(sid)
    assert (status, body) == (200, '42["message-back","after the abandoned poll"]')

    # A POST whose body is split across several ASGI messages arrives whole.
    big = '42["message","' + "y" * 8000 + '"]'
    assert await raw.post(sid, big.encode()) == (200, "ok")
    status, body = await raw.get(sid)
    assert status == 200 and json.loads(body[2:]) == ["message-back", "y" * 8000]


async def test_long_poll_waits_until_data_arrives(strict_server, http):
    raw = RawEngine(http, strict_server.url)
    sid = (await raw.handshake())["sid"]
    assert await raw.post(sid, "40") == (200, "ok")
    body = (await raw.get(sid))[1]
    if "auth" not in body:
        await raw.get(sid)
    waiting = asyncio.create_task(raw.get(sid))
    await asyncio.sleep(0.5)
    assert not waiting.done(), "nothing to send: the GET waits"
    assert await raw.post(sid, '42["message",1]') == (200, "ok")
    assert await asyncio.wait_for(waiting, 5) == (200, '42["message-back",1]')
    assert await raw.post(sid, "1") == (200, "ok")  # the client closes
    status, body = await raw.get(sid)
    assert (status, engine_error(body)) == (400, (1, "Session ID unknown"))


# --- the chat protocol ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_server(module_server_factory, module_backend):
    return under_uvicorn(module_server_factory(module_backend, conformance=False, server="uvicorn", **RELAXED_SECURITY))


@pytest.mark.parametrize(
    "transports", [["websocket"], ["polling"], ["polling", "websocket"]], ids=lambda t: "-".join(t)
)
async def test_chat_between_two_clients(chat_server, transports):
    workspace, session = unique("uv"), unique("s")
    tokens = issue_tokens(chat_server, [("ann", workspace, "moderator"), ("bob", workspace, "moderator")])
    ann, bob = ChatClient("ann"), ChatClient("bob")
    try:
        await ann.connect(chat_server.url, tokens["ann"], transports)
        await bob.connect(chat_server.url, tokens["bob"], transports)
        await ann.join(workspace, session)
        await bob.join(workspace, session)
        for index in range(3):
            ack = await ann.send(session, f"ann {index}")
            assert ack["ok"] and ack["seq"] == 2 * index + 1, ack
            ack = await bob.send(session, f"bob {index}")
            assert ack["ok"] and ack["seq"] == 2 * index + 2, ack
        for reader, writer in ((ann, "bob"), (bob, "ann")):
            await reader.wait_for("chat:message-received", lambda m, w=writer: m["userName"] == w, count=3)
            received = [m for m in reader.events("chat:message-received") if m["userName"] == writer]
            assert [m["content"] for m in received] == [f"{writer} {i}" for i in range(3)]
            mine = [m for m in reader.events("chat:message-received") if m["userName"] == reader.label]
            assert mine == [], "a sender does not receive its own message back"
        await bob.disconnect()
        left = await ann.wait_for("chat:user-left", lambda d: d["sessionId"] == session)
        assert left["socketId"] == bob.sid
    finally:
        await ann.close()
        await bob.close()
