"""Bad input, answered and harmless: a corpus of hostile inputs over both transports, on both backends.

Two parts, each case a test of its own:

- Raw Engine.IO / Socket.IO bytes (aiohttp; polling POST bodies after a raw
  handshake, WebSocket frames): each asserts the exact Engine.IO HTTP error
  JSON, WebSocket close code, or ``CONNECT_ERROR`` packet (``invalid_packet``)
  that precedes the close -- or the exact reply, for input that is wrong but
  does not end the connection.
- Every ``chat:*`` event with missing, wrong-typed, oversized, cross-workspace
  fields, through python-socketio over each transport: the exact ack
  ``{ok: false, code}`` equal to the ``<event>-error`` event, and the client
  stays connected.

After every case two bystanders (one WebSocket, one polling client,
connected all along) must still chat normally, and the server log must not
have gained a traceback.  One server per backend for the module
(``CHAT_MAX_PAYLOAD=200000``, limits high so that volume never interferes).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ServerProcess
from tests.integration.chat_client import ChatClient, assert_error, issue_tokens, session_pk, unique
from tests.integration.hostile import (
    CATALOGUE,
    CHAT_EVENTS,
    HIGH_LIMITS,
    RS,
    Bystanders,
    RawClient,
    RawPolling,
    assert_no_traceback,
    connect_error_packet,
    engine_error_body,
    log_size,
    nested,
    open_raw,
    until,
    varied_text,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_PAYLOAD = 200_000
EVENT_ARRAY = "EVENT payload must be an array starting with the event name."
BAD_JSON = "Invalid JSON in packet."
PLACEHOLDER = "Invalid binary placeholder."
ACK_TOO_LARGE = "Ack id too large."


@dataclass
class World:
    server: ServerProcess
    ws: str
    other_ws: str
    tokens: dict[str, str]
    users: dict[str, str]
    foreign_session: str  # in ``ws``, created by ``owner``: ``actor`` may not join it
    other_session: str  # in ``other_ws``, created by ``outsider``

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def world(module_server_factory, module_backend) -> World:
    server = module_server_factory(module_backend, conformance=False, CHAT_MAX_PAYLOAD=str(MAX_PAYLOAD), **HIGH_LIMITS)
    ws, other_ws, suffix = unique("hws"), unique("hother"), unique("u")
    names = {"by1": ws, "by2": ws, "raw": ws, "actor": ws, "owner": ws, "outsider": other_ws}
    users = {name: f"{name}-{suffix}" for name in names}
    roles = {"by1": "moderator", "by2": "moderator"}  # a moderator may join the other's session
    tokens = issue_tokens(server, [(users[n], slug, roles.get(n, "member")) for n, slug in names.items()])
    return World(
        server, ws, other_ws, {n: tokens[users[n]] for n in names}, users, unique("foreign"), unique("elsewhere")
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bystanders(world: World):
    group = await Bystanders(world.url, world.ws, (world.tokens["by1"], world.tokens["by2"])).start()
    yield group
    await group.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def actors(world: World):
    """One member per transport, joined to a session of its own, reused by every chat-event case."""
    made: dict[str, ChatClient] = {}
    owner = ChatClient("owner")
    outsider = ChatClient("outsider")
    await owner.connect(world.url, world.tokens["owner"], ["websocket"])
    await owner.join(world.ws, world.foreign_session)
    await outsider.connect(world.url, world.tokens["outsider"], ["websocket"])
    await outsider.join(world.other_ws, world.other_session)
    for transport in ("websocket", "polling"):
        client = ChatClient(f"actor-{transport}")
        await client.connect(world.url, world.tokens["actor"], [transport])
        session = unique("own")
        await client.join(world.ws, session)
        client.own_session = session  # type: ignore[attr-defined]
        made[transport] = client
    yield made
    await asyncio.gather(*(c.close() for c in [*made.values(), owner, outsider]), return_exceptions=True)


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def harmless(world: World, bystanders: Bystanders):
    """After every case: the bystanders still chat, and the server logged no traceback."""
    offset = log_size(world.server)
    yield
    await bystanders.check()
    assert world.server.alive, world.server.log_tail()
    assert_no_traceback(world.server, offset)


# --- raw Engine.IO / Socket.IO -----------------------------------------------------------------


@dataclass(frozen=True)
class EngineErr:
    """Refused by the Engine.IO layer: HTTP 400 (polling) / close 1002 (WebSocket); no CONNECT_ERROR."""

    reason: str


@dataclass(frozen=True)
class PacketErr:
    """A malformed Socket.IO packet: CONNECT_ERROR invalid_packet with ``message``, then the close."""

    message: str


@dataclass(frozen=True)
class TooLarge:
    """Over maxPayload: HTTP 413 (polling) / close 1009 (WebSocket)."""


@dataclass(frozen=True)
class Dropped:
    """The WebSocket layer itself fails the connection (e.g. a TEXT frame that is not UTF-8)."""


@dataclass(frozen=True)
class Replies:
    """Wrong but not fatal: exactly these packets come back and the connection stays usable."""

    packets: tuple[str, ...] = ()


@dataclass(frozen=True)
class BadText:
    """A WebSocket TEXT frame carrying these exact (non-UTF-8) bytes."""

    payload: bytes


@dataclass(frozen=True)
class Case:
    id: str
    #: What to send after a successful CONNECT, per transport (absent: not applicable there).
    #: Polling: one POST of the packets joined with the record separator (bytes: a raw body).
    #: WebSocket: one frame per item.
    send: dict[str, Any]
    expect: dict[str, Any]
    note: str = field(default="", compare=False)


def sio(*packets: str) -> tuple[str, ...]:
    """Socket.IO packets as Engine.IO messages."""
    return tuple("4" + packet for packet in packets)


def both(packets: tuple[Any, ...], expect: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return {"polling": packets, "websocket": packets}, {"polling": expect, "websocket": expect}


OVERSIZED = "42" + json.dumps(["chat:send-message", {"message": {"content": "x" * MAX_PAYLOAD}}])
NON_UTF8 = b'42["chat:typing",{"sessionId":"\xff\xfe"}]'
UNKNOWN_EVENT_ACK = '{"ok":false,"error":"Unknown event \'chat:nope\'.","code":"unknown_event"}'

# fmt: off
RAW_CASES = [
    # --- Engine.IO packets ---
    Case("eio-unknown-type", *both(("9",), EngineErr("Unknown Engine.IO packet type."))),
    Case("eio-type-letter", *both(("x42[]",), EngineErr("Unknown Engine.IO packet type."))),
    Case(
        "eio-empty",
        {"polling": ("",), "websocket": ("",)},
        {"polling": EngineErr("Empty payload."), "websocket": EngineErr("Empty packet.")},
    ),
    Case("eio-empty-in-batch", {"polling": ("6", "")}, {"polling": EngineErr("Empty packet.")}),
    Case("eio-open-from-client", *both(('0{"sid":"forged"}',), EngineErr("Unexpected open packet from the client."))),
    Case(
        "eio-upgrade-packet",
        {"polling": ("5",), "websocket": ("5",)},
        {
            "polling": EngineErr("Upgrade packet sent over polling."),
            "websocket": EngineErr("Unexpected upgrade packet from the client."),
        },
    ),
    Case(
        "eio-non-utf8",
        {"polling": NON_UTF8, "websocket": (BadText(NON_UTF8),)},
        {"polling": EngineErr("Payload is not valid UTF-8."), "websocket": Dropped()},
    ),
    Case("eio-bad-base64", {"polling": ("b!!!",)}, {"polling": EngineErr("Invalid base64 in binary packet.")}),
    Case("eio-over-max-payload", *both((OVERSIZED,), TooLarge())),
    # --- Socket.IO packets ---
    Case("sio-unknown-type", *both(sio("9"), PacketErr("Unknown Socket.IO packet type."))),
    Case("sio-unknown-type-7", *both(sio('7["chat:typing",{}]'), PacketErr("Unknown Socket.IO packet type."))),
    Case("sio-empty", *both(sio(""), PacketErr("Empty Socket.IO packet."))),
    Case("sio-bad-json", *both(sio('2["chat:typing",{'), PacketErr(BAD_JSON))),
    Case("sio-trailing-garbage", *both(sio('2["chat:typing",{}]}}'), PacketErr(BAD_JSON))),
    Case("sio-single-quotes", *both(sio("2['chat:typing']"), PacketErr(BAD_JSON))),
    Case("sio-event-object", *both(sio('2{"sessionId":"s"}'), PacketErr(EVENT_ARRAY))),
    Case("sio-event-empty-array", *both(sio("2[]"), PacketErr(EVENT_ARRAY))),
    Case("sio-event-name-number", *both(sio("2[42,{}]"), PacketErr(EVENT_ARRAY))),
    Case("sio-event-string", *both(sio('2"chat:typing"'), PacketErr(EVENT_ARRAY))),
    Case("sio-event-null", *both(sio("2null"), PacketErr(EVENT_ARRAY))),
    Case("sio-attachments-lie", *both(sio('51-["chat:send-message",{"_placeholder":true,"num":1}]'), PacketErr(PLACEHOLDER))),
    Case("sio-attachments-zero", *both(sio('50-["a",{"_placeholder":true,"num":0}]'), PacketErr(PLACEHOLDER))),
    Case("sio-placeholder-bool", *both(sio('51-["a",{"_placeholder":true,"num":true}]'), PacketErr(PLACEHOLDER))),
    Case("sio-placeholder-negative", *both(sio('51-["a",{"_placeholder":true,"num":-1}]'), PacketErr(PLACEHOLDER))),
    Case("sio-attachment-count-garbage", *both(sio('5x-["a"]'), PacketErr("Invalid attachment count."))),
    Case("sio-attachment-count-unbounded", *both(sio('5123456-["a"]'), PacketErr("Invalid attachment count."))),
    Case("sio-attachment-count-11", *both(sio('511-["a"]'), PacketErr("Too many attachments (at most 10)."))),
    Case(
        "sio-attachment-never-sent",
        *both(
            sio('51-["a",{"_placeholder":true,"num":0}]', '2["b"]'),
            PacketErr("Text packet received while binary attachments were expected."),
        ),
    ),
    Case("sio-stray-attachment", *both((b"\x00\x01\x02",), PacketErr("Unexpected binary attachment."))),
    Case("sio-ack-id-negative", *both(sio('2-1["chat:typing",{}]'), PacketErr(BAD_JSON))),
    Case("sio-ack-id-17-digits", *both(sio('299999999999999999["a"]'), PacketErr(ACK_TOO_LARGE))),
    Case("sio-ack-id-2-pow-53", *both(sio('29007199254740992["a"]'), PacketErr(ACK_TOO_LARGE))),
    Case("sio-ack-huge-id", *both(sio("3" + "9" * 40 + "[1]"), PacketErr(ACK_TOO_LARGE))),
    Case("sio-namespace-control-char", *both(sio('2/\x01,["a"]'), PacketErr("Invalid namespace."))),
    Case("sio-namespace-too-long", *both(sio("2/" + "n" * 300 + ',["a"]'), PacketErr("Namespace too long."))),
    Case(
        "sio-nested-40",
        *both(sio('2["a",' + "[" * 40 + "]" * 40 + "]"), PacketErr("Packet data nested too deeply (at most 32).")),
    ),
    Case("sio-nested-50000", *both(sio('2["a",' + "[" * 50_000 + "]" * 50_000 + "]"), PacketErr(BAD_JSON))),
    Case("sio-nan", *both(sio('2["a",NaN]'), PacketErr(BAD_JSON))),
    Case("sio-infinity", *both(sio('2["a",1e400]'), PacketErr(BAD_JSON))),
    Case("sio-huge-integer", *both(sio('2["a",' + "9" * 5000 + "]"), PacketErr(BAD_JSON))),
    Case("sio-connect-not-object", *both(sio('0"chat_token"'), PacketErr("CONNECT payload must be an object."))),
    Case("sio-disconnect-payload", *both(sio('1{"a":1}'), PacketErr("DISCONNECT takes no payload."))),
    Case("sio-ack-without-id", *both(sio('3["x"]'), PacketErr("ACK packet without an ack id."))),
    Case("sio-ack-not-array", *both(sio('31{"a":1}'), PacketErr("ACK payload must be an array."))),
    Case("sio-client-connect-error", *both(sio('4{"message":"x"}'), PacketErr("Clients may not send CONNECT_ERROR."))),
    # --- wrong, but answered without closing ---
    Case(
        "sio-event-unknown-namespace",
        *both(
            sio('2/nope,["chat:typing",{}]'),
            Replies((connect_error_packet("Not connected to this namespace.", "not_connected", "/nope"),)),
        ),
    ),
    Case(
        "sio-connect-unknown-namespace",
        *both(sio("0/nope,"), Replies((connect_error_packet("Invalid namespace", "invalid_namespace", "/nope"),))),
    ),
    Case(
        "sio-connect-twice",
        *both(
            sio('0{"token":"chat_x"}'),
            Replies((connect_error_packet("Already connected to this namespace.", "connection_refused"),)),
        ),
    ),
    Case("sio-unknown-event", *both(sio('21["chat:nope",{}]'), Replies((f"431[{UNKNOWN_EVENT_ACK}]",)))),
    Case(
        "sio-largest-ack-id",
        *both(sio('29007199254740991["chat:nope"]'), Replies((f"439007199254740991[{UNKNOWN_EVENT_ACK}]",))),
    ),
    Case("sio-ack-for-nothing", *both(sio("3999[1]"), Replies(()))),
    Case(
        "sio-chat-event-not-object",
        *both(
            sio('2["chat:join-session","not an object"]'),
            Replies(
                (
                    '42["chat:join-session-error",{"error":"The event payload must be a single JSON object.",'
                    '"code":"invalid_payload"}]',
                ),
            ),
        ),
    ),
]
# fmt: on

RAW_PARAMS = [
    pytest.param(case, transport, id=f"{case.id}-{transport}")
    for case in RAW_CASES
    for transport in ("polling", "websocket")
    if transport in case.send
]


async def connected_raw(world: World, http: aiohttp.ClientSession, transport: str) -> RawClient:
    client = await open_raw(http, world.url, transport)
    answer = await client.connect({"token": world.tokens["raw"]})
    assert answer.startswith('40{"sid":'), answer
    if transport == "polling":
        await asyncio.sleep(0.1)  # let the client's next GET reach the server, as a real client's would
    return client


async def deliver(client: RawClient, payload: Any) -> tuple[int, str] | None:
    if isinstance(payload, bytes) and client.transport == "polling":
        return await client.post(payload)  # type: ignore[attr-defined]
    if client.transport == "polling":
        return await client.send(*payload)
    for frame in payload:
        if isinstance(frame, BadText):
            await client.send_text_bytes(frame.payload)  # type: ignore[attr-defined]
        else:
            await client.send(frame)
    return None


async def assert_alive(client: RawClient) -> None:
    """The connection still works: an event with an ack is answered."""
    since = len(client.packets)
    await client.send('427["liveness"]')
    answer = await client.wait_packet(lambda p: isinstance(p, str) and p.startswith("437"), 8, since)
    assert answer == '437[{"ok":false,"error":"Unknown event \'liveness\'.","code":"unknown_event"}]', answer
    assert not client.closed, client.ending


async def assert_session_gone(client: RawClient) -> None:
    if isinstance(client, RawPolling):
        status, body = await client.get_once(timeout=5)
        assert (status, json.loads(body)) == (
            400,
            engine_error_body(1, "Session ID unknown", "unknown_session", "Session ID unknown"),
        )


async def check_case(client: RawClient, case: Case, transport: str, answer: tuple[int, str] | None) -> None:
    expect = case.expect[transport]
    since_connect = 1  # the CONNECT answer is packet 0 (pings are filtered out below)
    if isinstance(expect, EngineErr):
        if transport == "polling":
            status, body = answer  # type: ignore[misc]
            assert (status, json.loads(body)) == (
                400,
                engine_error_body(3, "Bad request", "invalid_packet", expect.reason),
            ), body
            assert await client.wait_closed() == ("close-packet",)
        else:
            ending = await client.wait_closed()
            assert ending[:2] == ("ws-close", 1002), ending
        assert client.messages(since_connect) == [], "an Engine.IO error sends no Socket.IO packet"
        await assert_session_gone(client)
    elif isinstance(expect, PacketErr):
        if transport == "polling":
            assert answer == (200, "ok"), answer
            assert await client.wait_closed() == ("close-packet",)
        else:
            ending = await client.wait_closed()
            assert ending[:2] == ("ws-close", 1002), ending
        assert client.messages(since_connect) == [connect_error_packet(expect.message, "invalid_packet")]
        await assert_session_gone(client)
    elif isinstance(expect, TooLarge):
        if transport == "polling":
            status, body = answer  # type: ignore[misc]
            reason = f"Payload exceeds maxPayload ({MAX_PAYLOAD} bytes)."
            assert (status, json.loads(body)) == (
                413,
                engine_error_body(3, "Bad request", "payload_too_large", reason),
            ), body
            assert await client.wait_closed() == ("close-packet",)
        else:
            ending = await client.wait_closed()
            assert ending[:2] == ("ws-close", 1009), ending
        assert client.messages(since_connect) == []
        await assert_session_gone(client)
    elif isinstance(expect, Dropped):
        ending = await client.wait_closed()
        assert ending[0] == "error" or (ending[0] == "ws-close" and ending[1] == 1007), ending
        assert client.messages(since_connect) == []
    elif isinstance(expect, Replies):
        if transport == "polling":
            assert answer == (200, "ok"), answer
        if expect.packets:
            await until(lambda: len(client.messages(since_connect)) >= len(expect.packets), 8)
        else:
            await asyncio.sleep(0.3)
        assert client.messages(since_connect) == list(expect.packets)
        await assert_alive(client)
    else:  # pragma: no cover
        raise AssertionError(expect)


@pytest.mark.parametrize("case, transport", RAW_PARAMS)
async def test_raw_hostile_input(world, http, case: Case, transport: str):
    client = await connected_raw(world, http, transport)
    try:
        answer = await deliver(client, case.send[transport])
        await check_case(client, case, transport, answer)
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    "frames, reason, code",
    [
        pytest.param(("9",), "Unknown Engine.IO packet type.", 1002, id="engine-io"),
        pytest.param(sio('2["chat:typing",{'), BAD_JSON, 1002, id="socket-io-json"),
        pytest.param(sio('299999999999999999["a"]'), ACK_TOO_LARGE, 1002, id="socket-io-ack-id"),
        pytest.param((OVERSIZED,), f"Frame exceeds maxPayload ({MAX_PAYLOAD} bytes).", 1009, id="too-large"),
    ],
)
async def test_websocket_close_reason_says_why(world, http, frames, reason, code):
    """The close frame carries the reason the server passes to it (``EngineSession.close(detail=...)``)."""
    client = await connected_raw(world, http, "websocket")
    try:
        await deliver(client, frames)
        assert await client.wait_closed() == ("ws-close", code, reason)
    finally:
        await client.aclose()


async def test_polling_connect_error_reaches_a_client_between_two_gets(world, http):
    """A malformed packet POSTed while no GET is pending: the next GET still gets the explanation.

    A real client re-issues its GET right after each response, so a POST can
    always land in between; the protocol promises the CONNECT_ERROR before the
    close (docs/protocol.md), as the reference server flushes its buffer first.
    """
    client = RawPolling(http, world.url)
    await client.open(poll=False)
    try:
        assert await client.send('40{"token":"%s"}' % world.tokens["raw"]) == (200, "ok")
        status, body = await client.get_once()
        assert status == 200 and body.startswith('40{"sid":'), body
        assert await client.send('42["chat:typing",{') == (200, "ok")  # no GET pending now
        status, body = await client.get_once(timeout=5)
        assert (status, body) == (200, connect_error_packet(BAD_JSON, "invalid_packet") + RS + "1")
    finally:
        await client.aclose()


async def test_events_sent_before_connect_run_no_handler(world, http):
    """Chat events on a connection that never sent CONNECT: answered not_connected, nothing stored."""
    session = unique("never")
    for transport in ("polling", "websocket"):
        client = await open_raw(http, world.url, transport)
        try:
            await client.send(
                '421["chat:join-session",%s]' % json.dumps({"sessionId": session, "workspaceId": world.ws})
            )
            answer = await client.wait_packet(lambda p: isinstance(p, str) and p.startswith("4"), 5)
            assert answer == connect_error_packet("Not connected to this namespace.", "not_connected")
            await asyncio.sleep(0.3)
            assert not any(isinstance(p, str) and p.startswith("43") for p in client.packets), client.packets
        finally:
            await client.aclose()
    assert session_pk(world.server, world.ws, session) is None


# --- every chat event, hostile payloads ----------------------------------------------------------------

S, FOREIGN, OTHER_WS, OTHER_S, NOT_JOINED = "<own>", "<foreign>", "<other-ws>", "<other-session>", "<not-joined>"


def _fill(value: Any, world: World, client: ChatClient) -> Any:
    names = {
        S: client.own_session,  # type: ignore[attr-defined]
        FOREIGN: world.foreign_session,
        OTHER_WS: world.other_ws,
        OTHER_S: world.other_session,
        NOT_JOINED: "never-joined-here",
        "<ws>": world.ws,
    }
    if value == "<new-id>":
        return unique("m")
    if value == "<new-session>":
        return unique("s")
    if value == "<new-text>":
        return f"hello {unique('t')}"  # never a repeated message
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, dict):
        return {key: _fill(item, world, client) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, world, client) for item in value]
    if isinstance(value, tuple):
        return tuple(_fill(item, world, client) for item in value)
    return value


def msg(**fields: Any) -> dict[str, Any]:
    return {"message": {"id": "<new-id>", "sessionId": S, "content": "<new-text>", **fields}}


def metadata_of_size(size: int) -> dict[str, str]:
    """ASCII metadata whose compact JSON is exactly ``size`` characters."""
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    return {"k": "v" * (size - overhead)}


LONG = "a" * 129
# fmt: off
EVENT_CASES: list[tuple[str, str, Any, str]] = [
    # chat:join-session
    ("join-no-payload", "chat:join-session", None, "invalid_payload"),
    ("join-string", "chat:join-session", "session", "invalid_payload"),
    ("join-array", "chat:join-session", [[S, "<ws>"]], "invalid_payload"),
    ("join-two-args", "chat:join-session", ({"sessionId": S, "workspaceId": "<ws>"}, {"x": 1}), "invalid_payload"),
    ("join-missing-session", "chat:join-session", {"workspaceId": "<ws>"}, "invalid_payload"),
    ("join-session-number", "chat:join-session", {"sessionId": 5, "workspaceId": "<ws>"}, "invalid_payload"),
    ("join-session-empty", "chat:join-session", {"sessionId": "", "workspaceId": "<ws>"}, "invalid_payload"),
    ("join-session-129", "chat:join-session", {"sessionId": LONG, "workspaceId": "<ws>"}, "invalid_payload"),
    ("join-session-path", "chat:join-session", {"sessionId": "../../etc", "workspaceId": "<ws>"}, "invalid_payload"),
    ("join-session-unicode", "chat:join-session", {"sessionId": "séance", "workspaceId": "<ws>"}, "invalid_payload"),
    ("join-session-nul", "chat:join-session", {"sessionId": "a\x00b", "workspaceId": "<ws>"}, "invalid_payload"),
    ("join-session-room", "chat:join-session", {"sessionId": "chat:session:x", "workspaceId": "<ws>"}, "invalid_payload"),
    ("join-missing-workspace", "chat:join-session", {"sessionId": "ok-id"}, "invalid_payload"),
    ("join-workspace-65", "chat:join-session", {"sessionId": "ok-id", "workspaceId": "w" * 65}, "invalid_payload"),
    ("join-workspace-object", "chat:join-session", {"sessionId": "ok-id", "workspaceId": {"$ne": 1}}, "invalid_payload"),
    ("join-agent-number", "chat:join-session", {"sessionId": "ok-id", "workspaceId": "<ws>", "agentId": 7}, "invalid_payload"),
    ("join-agent-129", "chat:join-session", {"sessionId": "ok-id", "workspaceId": "<ws>", "agentId": LONG}, "invalid_payload"),
    ("join-agent-unknown", "chat:join-session", {"sessionId": "<new-session>", "workspaceId": "<ws>", "agentId": "ghost"}, "agent_not_found"),
    ("join-other-workspace", "chat:join-session", {"sessionId": OTHER_S, "workspaceId": OTHER_WS}, "not_a_member"),
    ("join-missing-workspace-slug", "chat:join-session", {"sessionId": "ok-id", "workspaceId": "no-such-ws"}, "not_a_member"),
    ("join-foreign-session", "chat:join-session", {"sessionId": FOREIGN, "workspaceId": "<ws>"}, "forbidden"),
    # chat:leave-session
    ("leave-not-joined", "chat:leave-session", {"sessionId": NOT_JOINED}, "not_joined"),
    ("leave-session-number", "chat:leave-session", {"sessionId": 12}, "invalid_payload"),
    ("leave-other-workspace", "chat:leave-session", {"sessionId": OTHER_S, "workspaceId": OTHER_WS}, "not_joined"),
    ("leave-workspace-long", "chat:leave-session", {"sessionId": S, "workspaceId": "w" * 65}, "invalid_payload"),
    # chat:send-message
    ("send-no-message", "chat:send-message", {}, "invalid_payload"),
    ("send-message-string", "chat:send-message", {"message": "hello"}, "invalid_payload"),
    ("send-flat-payload", "chat:send-message", {"id": "m1", "sessionId": S, "content": "hi"}, "invalid_payload"),
    ("send-id-missing", "chat:send-message", {"message": {"sessionId": S, "content": "hi"}}, "invalid_payload"),
    ("send-id-129", "chat:send-message", msg(id=LONG), "invalid_payload"),
    ("send-id-number", "chat:send-message", msg(id=42), "invalid_payload"),
    ("send-id-spaces", "chat:send-message", msg(id="a b"), "invalid_payload"),
    ("send-content-missing", "chat:send-message", {"message": {"id": "m-nc", "sessionId": S}}, "invalid_payload"),
    ("send-content-number", "chat:send-message", msg(content=123), "invalid_payload"),
    ("send-content-object", "chat:send-message", msg(content={"html": "<b>"}), "invalid_payload"),
    ("send-content-blank", "chat:send-message", msg(content=" \n\t "), "invalid_payload"),
    ("send-content-10001", "chat:send-message", msg(content=varied_text(10_001)), "message_too_long"),
    ("send-content-type-html", "chat:send-message", msg(contentType="html"), "invalid_payload"),
    ("send-content-type-long", "chat:send-message", msg(contentType="markdown" * 100), "invalid_payload"),
    ("send-metadata-list", "chat:send-message", msg(metadata=[1, 2]), "invalid_payload"),
    ("send-metadata-string", "chat:send-message", msg(metadata="meta"), "invalid_payload"),
    ("send-metadata-depth-9", "chat:send-message", msg(metadata=nested(9)), "metadata_too_large"),
    ("send-metadata-16385", "chat:send-message", msg(metadata=metadata_of_size(16 * 1024 + 1)), "metadata_too_large"),
    ("send-not-joined", "chat:send-message", msg(sessionId=NOT_JOINED), "not_joined"),
    ("send-other-workspace", "chat:send-message", msg(sessionId=OTHER_S, workspaceId=OTHER_WS), "not_joined"),
    ("send-foreign-session", "chat:send-message", msg(sessionId=FOREIGN), "not_joined"),
    ("send-content-lone-surrogate", "chat:send-message", msg(content="broken \ud800 text"), "invalid_payload"),
    ("send-metadata-nul", "chat:send-message", msg(metadata={"k": "nul\x00byte"}), "invalid_payload"),
    ("send-metadata-lone-surrogate", "chat:send-message", msg(metadata={"k": "\udc80"}), "invalid_payload"),
    # chat:typing
    ("typing-string-flag", "chat:typing", {"sessionId": S, "isTyping": "yes"}, "invalid_payload"),
    ("typing-number-flag", "chat:typing", {"sessionId": S, "isTyping": 1}, "invalid_payload"),
    ("typing-missing-flag", "chat:typing", {"sessionId": S}, "invalid_payload"),
    ("typing-not-joined", "chat:typing", {"sessionId": NOT_JOINED, "isTyping": True}, "not_joined"),
    ("typing-other-workspace", "chat:typing", {"sessionId": OTHER_S, "workspaceId": OTHER_WS, "isTyping": True}, "not_joined"),
    # chat:update-presence
    ("presence-unknown-status", "chat:update-presence", {"sessionId": S, "status": "online"}, "invalid_payload"),
    ("presence-number-status", "chat:update-presence", {"sessionId": S, "status": 3}, "invalid_payload"),
    ("presence-huge-status", "chat:update-presence", {"sessionId": S, "status": "away" * 2500}, "invalid_payload"),
    ("presence-not-joined", "chat:update-presence", {"sessionId": NOT_JOINED, "status": "away"}, "not_joined"),
    # chat:request-history
    ("history-limit-0", "chat:request-history", {"sessionId": S, "limit": 0}, "invalid_payload"),
    ("history-limit-negative", "chat:request-history", {"sessionId": S, "limit": -5}, "invalid_payload"),
    ("history-limit-string", "chat:request-history", {"sessionId": S, "limit": "10"}, "invalid_payload"),
    ("history-limit-float", "chat:request-history", {"sessionId": S, "limit": 1.5}, "invalid_payload"),
    ("history-limit-bool", "chat:request-history", {"sessionId": S, "limit": True}, "invalid_payload"),
    ("history-limit-2-pow-60", "chat:request-history", {"sessionId": S, "limit": 2**60}, "invalid_payload"),
    ("history-offset-negative", "chat:request-history", {"sessionId": S, "offset": -1}, "invalid_payload"),
    ("history-after-seq-negative", "chat:request-history", {"sessionId": S, "afterSeq": -1}, "invalid_payload"),
    ("history-not-joined", "chat:request-history", {"sessionId": NOT_JOINED}, "not_joined"),
    ("history-other-workspace", "chat:request-history", {"sessionId": OTHER_S, "workspaceId": OTHER_WS}, "not_joined"),
    # chat:cancel-agent
    ("cancel-no-message-id", "chat:cancel-agent", {"sessionId": S}, "invalid_payload"),
    ("cancel-message-id-129", "chat:cancel-agent", {"sessionId": S, "messageId": LONG}, "invalid_payload"),
    ("cancel-message-id-object", "chat:cancel-agent", {"sessionId": S, "messageId": {"$gt": ""}}, "invalid_payload"),
    ("cancel-unknown-run", "chat:cancel-agent", {"sessionId": S, "messageId": "no-such-run"}, "agent_run_not_found"),
    ("cancel-not-joined", "chat:cancel-agent", {"sessionId": NOT_JOINED, "messageId": "m1"}, "not_joined"),
    ("cancel-other-workspace", "chat:cancel-agent", {"sessionId": OTHER_S, "workspaceId": OTHER_WS, "messageId": "m1"}, "not_joined"),
]
# fmt: on

EVENT_PARAMS = [
    pytest.param(event, payload, code, transport, id=f"{name}-{transport}")
    for name, event, payload, code in EVENT_CASES
    for transport in ("websocket", "polling")
]


@pytest.mark.parametrize("event, payload, code, transport", EVENT_PARAMS)
async def test_hostile_chat_event(world, actors, event, payload, code, transport):
    client = actors[transport]
    since = client.mark()
    ack = await client.call(event, _fill(payload, world, client))
    body = assert_error(ack, code, client, event, since)
    if code == "message_too_long":
        assert body["maxLength"] == 10_000
    await client.assert_no_events(
        ["chat:message-sent", "chat:join-session-success", "chat:history-response"], within=0, since=since
    )
    assert client.connected and not client.events("disconnect"), client.stream[-5:]


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_limits_at_the_boundary_are_accepted(world, actors, transport):
    """Exactly at each limit is fine: 10,000 characters, metadata of 16 KiB and depth 8, 128-character ids."""
    client = actors[transport]
    own = client.own_session  # type: ignore[attr-defined]
    for fields in (
        {"content": varied_text(10_000)},
        {"metadata": metadata_of_size(16 * 1024)},
        {"metadata": nested(8)},
        {"id": "i" * 128},
    ):
        message = {"id": unique("m"), "sessionId": own, "content": f"boundary {unique('b')}", **fields}
        ack = await client.call("chat:send-message", {"message": message})
        assert ack.get("ok") is True, (fields.keys(), ack)
    long_session = "s" * 128
    ack = await client.call("chat:join-session", {"sessionId": long_session, "workspaceId": world.ws})
    assert ack.get("ok") is True, ack
    assert (await client.call("chat:leave-session", {"sessionId": long_session}))["ok"] is True


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_non_ascii_metadata_under_16_kib_is_accepted(world, actors, transport):
    """Metadata "over 16 KiB of JSON" is refused; 3,000 "é" are about 6 KiB of UTF-8 JSON and must pass."""
    client = actors[transport]
    metadata = {"k": "é" * 3000}
    assert len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode()) < 16 * 1024
    message = {"id": unique("m"), "sessionId": client.own_session, "content": "accents", "metadata": metadata}  # type: ignore[attr-defined]
    ack = await client.call("chat:send-message", {"message": message})
    assert ack.get("ok") is True, ack


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_huge_history_limits_are_clamped_and_offsets_past_the_end_are_empty(world, actors, transport):
    client = actors[transport]
    own = client.own_session  # type: ignore[attr-defined]
    for limit, offset in ((10**9, 0), (2**53, 0), (201, 0), (50, 10**12)):
        since = client.mark()
        ack = await client.call("chat:request-history", {"sessionId": own, "limit": limit, "offset": offset})
        assert ack.get("ok") is True, ack
        response = await client.wait_for("chat:history-response", since=since)
        assert response["limit"] == min(limit, 200) and response["offset"] == offset, response
        if offset:
            assert response["messages"] == [] and response["hasMore"] is False, response


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_unknown_events_are_answered_by_ack_only(world, actors, transport):
    client = actors[transport]
    since = client.mark()
    for name in ("chat:nope", "chat:join-session-success", "x" * 1000, "__proto__"):
        ack = await client.call(name, {"sessionId": "x"})
        assert ack == {"ok": False, "error": f"Unknown event {name[:64]!r}.", "code": "unknown_event"}, ack
    await client.assert_no_events(within=0.2, since=since)
    assert client.connected


async def test_a_hostile_message_never_fails_other_users_messages(world, bystanders):
    """Messages are stored in shared batches: one that the database refuses must not take others down with it.

    Metadata the database cannot hold (NUL, a lone surrogate: PostgreSQL's
    jsonb refuses both) sent at the same moment as other members' messages,
    from four sockets at once so that the writer's batches mix them.
    """
    hostile = []
    for n in range(4):
        client = ChatClient(f"poisoner{n}")
        await client.connect(world.url, world.tokens["actor"], [["websocket"], ["polling"]][n % 2])
        session = unique("poison")
        await client.join(world.ws, session)
        hostile.append((client, session))

    async def poison(client: ChatClient, session: str, n: int) -> Any:
        value = "nul\x00" if n % 2 else "\udc80"
        message = {"id": unique("p"), "sessionId": session, "content": f"poison {n}", "metadata": {"k": value}}
        return await client.call("chat:send-message", {"message": message}, timeout=15)

    async def honest(client: ChatClient, n: int) -> Any:
        return await client.send(bystanders.session, f"honest {n} {unique('h')}", timeout=15)

    try:
        results = await asyncio.gather(
            *(honest(bystanders.ws, n) for n in range(15)),
            *(honest(bystanders.polling, n) for n in range(15)),
            *(poison(client, session, n) for client, session in hostile for n in range(15)),
        )
    finally:
        await asyncio.gather(*(client.close() for client, _ in hostile), return_exceptions=True)
    refused = [ack for ack in results[:30] if ack.get("ok") is not True]
    assert refused == [], f"{len(refused)} of 30 honest messages failed next to hostile ones: {refused[:2]}"


# --- fuzzing every chat event ------------------------------------------------------------------------


#: No NUL and no lone surrogates here: both are covered by named cases above
#: (send-metadata-nul, send-*-lone-surrogate), and would only re-find those bugs.
_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
_LEAF = (
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False, allow_infinity=False) | _TEXT
)
JSON = st.recursive(
    _LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4), max_leaves=15
)
CLIENT_ID = st.from_regex(r"[A-Za-z0-9_-]{1,128}", fullmatch=True)


def _fields(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Any subset of ``fields``, plus sometimes junk keys."""
    return st.builds(
        lambda known, extra: {**extra, **known},
        st.fixed_dictionaries({}, optional=fields),
        st.dictionaries(_TEXT, JSON, max_size=2),
    )


def payloads(world: World, own: str) -> st.SearchStrategy[tuple[str, Any]]:
    session = st.sampled_from([own, world.foreign_session, world.other_session]) | CLIENT_ID | JSON
    workspace = (
        st.sampled_from([world.ws, world.other_ws]) | st.from_regex(r"[-a-zA-Z0-9_]{1,64}", fullmatch=True) | JSON
    )
    number = st.integers(-5, 10**6) | st.integers(-(2**60), 2**60) | JSON
    emoji = st.sampled_from(["👍", "🇫🇷", "👨‍👩‍👧", "x", "<b>", "\ud800"]) | st.text(max_size=40) | JSON
    message = _fields(
        id=CLIENT_ID | JSON,
        sessionId=session,
        workspaceId=workspace,
        content=_TEXT.filter(str.strip) | st.text(max_size=300) | JSON,
        contentType=st.sampled_from(["text", "markdown"]) | JSON,
        metadata=st.dictionaries(_TEXT, JSON, max_size=4) | JSON,
    )
    by_event = {
        "chat:join-session": _fields(sessionId=session, workspaceId=workspace, agentId=CLIENT_ID | JSON),
        "chat:leave-session": _fields(sessionId=session, workspaceId=workspace),
        "chat:send-message": _fields(message=message | JSON),
        "chat:typing": _fields(sessionId=session, workspaceId=workspace, isTyping=st.booleans() | JSON),
        "chat:update-presence": _fields(
            sessionId=session, workspaceId=workspace, status=st.sampled_from(["active", "idle", "away"]) | JSON
        ),
        "chat:cancel-agent": _fields(sessionId=session, workspaceId=workspace, messageId=CLIENT_ID | JSON),
        "chat:request-history": _fields(
            sessionId=session, workspaceId=workspace, limit=number, offset=number, afterSeq=number
        ),
        **{
            event: _fields(sessionId=session, workspaceId=workspace, messageId=CLIENT_ID | JSON, emoji=emoji)
            for event in ("chat:add-reaction", "chat:remove-reaction")
        },
        "chat:mark-read": _fields(sessionId=session, workspaceId=workspace, seq=number),
    }
    events = st.sampled_from(list(by_event))
    shaped = events.flatmap(lambda event: st.tuples(st.just(event), by_event[event]))
    anything = st.tuples(events | st.from_regex(r"chat:[a-z-]{0,20}", fullmatch=True), JSON)
    odd_arity = st.tuples(events, st.just(()) | st.tuples(JSON, JSON))  # no argument, or two
    return shaped | anything | odd_arity


#: Refusals are fine; "internal" is not: it means the server failed on input a client chose.
FUZZ_CODES = CATALOGUE - {"internal"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fuzzers(world: World):
    made = {}
    for transport in ("websocket", "polling"):
        client = ChatClient(f"fuzz-{transport}")
        await client.connect(world.url, world.tokens["actor"], [transport])
        session = unique("fuzz")
        await client.join(world.ws, session)
        client.own_session = session  # type: ignore[attr-defined]
        made[transport] = client
    yield made
    await asyncio.gather(*(c.close() for c in made.values()), return_exceptions=True)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
async def test_fuzz_every_chat_event(world, fuzzers, transport, data):
    """Random JSON for every chat event: always an ack, ok or a catalogued refusal; never a disconnect."""
    client = fuzzers[transport]
    event, payload = data.draw(payloads(world, client.own_session))  # type: ignore[attr-defined]
    ack = await client.call(event, payload, timeout=15)
    assert isinstance(ack, dict), (event, payload, ack)
    if ack.get("ok") is True:
        assert event in CHAT_EVENTS, (event, payload, ack)
    else:
        assert ack.get("ok") is False and ack.get("code") in FUZZ_CODES, (event, payload, ack)
        assert isinstance(ack.get("error"), str) and ack["error"], ack
    assert client.connected and not client.events("disconnect"), (event, payload, client.stream[-3:])
