"""Helpers for the security tests (``test_security_*.py``): hostile clients against real servers.

- :data:`HIGH_LIMITS` -- env for servers whose tests are not about limits.
- :class:`RawPolling` / :class:`RawWebSocket` -- Engine.IO by hand (aiohttp):
  a raw handshake, then any bytes we like, recording every packet, HTTP
  error and close the server answers with.  Both answer server pings, like
  a real client, unless told not to.
- :class:`SlowReader` -- a WebSocket completed by hand over a raw TCP socket
  with a small receive buffer, that can stop reading.
- :func:`security_events` / :func:`wait_security_events` -- the server's
  ``security_securityevent`` rows (written by a background writer: poll).
- :class:`Verifier` -- a small aiohttp server playing the external auth
  verifier (Better Auth's answer shape), counting the calls it gets.
- :func:`socket_token`, :func:`session_cookie` -- credentials over HTTP.
- :class:`Bystanders` -- two clients (one per transport) that keep chatting
  while something hostile happens next to them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from tests.conftest import ServerProcess, free_port
from tests.integration.chat_client import ChatClient, db_rows, server_python, unique
from tests.integration.clients import until

#: Servers whose tests are not about limits: nothing may be refused for volume.
HIGH_LIMITS = {
    "CHAT_MESSAGE_RATE_LIMIT": "100000",
    "CHAT_JOIN_RATE_LIMIT": "100000",
    "CHAT_TYPING_RATE_LIMIT": "100000",
    "CHAT_PRESENCE_RATE_LIMIT": "100000",
    "CHAT_HISTORY_RATE_LIMIT": "100000",
    "CHAT_REACTION_RATE_LIMIT": "100000",
    "CHAT_READ_RATE_LIMIT": "100000",
    "CHAT_SPAM_MAX_REPEATS": "100000",
    "CHAT_CONNECTION_LIMIT": "1000",
    "CHAT_CONNECT_FAILURE_LIMIT": "100000",
    "CHAT_API_RATE_LIMIT": "",
}

#: Every error code a chat event may answer with: the catalogue of docs/protocol.md
#: ("Error codes") and those of ``chat:cancel-agent`` (chat/agents/README.md).
CATALOGUE = {
    "invalid_payload",
    "not_a_member",
    "forbidden",
    "agent_not_found",
    "session_not_found",
    "session_closed",
    "not_joined",
    "message_too_long",
    "metadata_too_large",
    "rate_limited",
    "message_blocked",
    "spam_detected",
    "muted",
    "banned",
    "unknown_event",
    "too_many_pending_events",
    "internal",
    "agent_run_not_found",
    "agent_run_finished",
    "message_not_found",
    "invalid_emoji",
    "reaction_emoji_limit",
    "reaction_user_limit",
}

CHAT_EVENTS = [
    "chat:join-session",
    "chat:leave-session",
    "chat:send-message",
    "chat:typing",
    "chat:update-presence",
    "chat:request-history",
    "chat:cancel-agent",
    "chat:add-reaction",
    "chat:remove-reaction",
    "chat:mark-read",
]

RS = "\x1e"


def log_size(server: ServerProcess) -> int:
    return len(server.log_text())


def log_since(server: ServerProcess, offset: int) -> str:
    return server.log_text()[offset:]


_RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", re.MULTILINE)


def log_records(text: str) -> list[str]:
    """The server's log split into records (a record's traceback stays with it; access-log lines are their own)."""
    records, current = [], []
    for line in text.splitlines():
        if _RECORD_START.match(line) or line.startswith("127.0.0.1:"):
            if current:
                records.append("\n".join(current))
            current = [line]
        else:
            current.append(line)
    if current:
        records.append("\n".join(current))
    return records


def assert_no_traceback(server: ServerProcess, offset: int) -> None:
    tracebacks = [record for record in log_records(log_since(server, offset)) if "Traceback" in record]
    assert not tracebacks, "the server logged a traceback:\n" + "\n".join(tracebacks)[-6000:]


# --- security events ------------------------------------------------------------------------


def last_event_id(server: ServerProcess) -> int:
    rows = db_rows(server, "SELECT MAX(id) FROM security_securityevent")
    return int(rows[0][0] or 0)


def _detail(value: Any) -> dict[str, Any]:
    if isinstance(value, (bytes, str)):
        return json.loads(value)
    return value or {}


def security_events(server: ServerProcess, after_id: int = 0) -> list[dict[str, Any]]:
    """Every event with an id above ``after_id``: ``{id, type, username, detail, session_key, ip}``."""
    rows = db_rows(
        server,
        "SELECT e.id, e.type, u.username, e.detail, e.session_key, e.ip, e.workspace_id "
        "FROM security_securityevent e LEFT JOIN auth_user u ON u.id = e.user_id WHERE e.id > ? ORDER BY e.id",
        (after_id,),
    )
    return [
        {
            "id": row[0],
            "type": row[1],
            "username": row[2],
            "detail": _detail(row[3]),
            "session_key": row[4],
            "ip": None if row[5] is None else str(row[5]),  # PostgreSQL's inet comes back as an address object
            "workspace_id": row[6],
        }
        for row in rows
    ]


async def wait_security_events(
    server: ServerProcess,
    after_id: int,
    predicate: Callable[[dict[str, Any]], bool],
    count: int = 1,
    timeout: float = 15.0,
) -> list[dict[str, Any]]:
    """Poll until ``count`` events matching ``predicate`` exist; fail with what was found."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = await asyncio.to_thread(security_events, server, after_id)
        found = [row for row in rows if predicate(row)]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    rows = await asyncio.to_thread(security_events, server, after_id)
    raise AssertionError(f"expected {count} matching security event(s) within {timeout}s; all new events: {rows}")


def event_of(kind: str, username: str | None = None, **detail: Any) -> Callable[[dict[str, Any]], bool]:
    def match(row: dict[str, Any]) -> bool:
        return (
            row["type"] == kind
            and (username is None or row["username"] == username)
            and all(row["detail"].get(key) == value for key, value in detail.items())
        )

    return match


# --- credentials over HTTP ---------------------------------------------------------------------


async def socket_token(
    url: str,
    api_token: str | None = None,
    *,
    cookies: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """``POST /api/v1/auth/socket-token``: (status, JSON body)."""
    sent = dict(headers or {})
    if api_token is not None:
        sent["Authorization"] = f"Bearer {api_token}"
    async with aiohttp.ClientSession(cookies=cookies) as http:
        async with http.post(f"{url}/api/v1/auth/socket-token", headers=sent) as response:
            text = await response.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = {"raw": text}
            return response.status, body


_SESSION_SCRIPT = """
import sys
import django
django.setup()
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from importlib import import_module
user = get_user_model().objects.get(username=sys.argv[1])
store = import_module(settings.SESSION_ENGINE).SessionStore()
store[SESSION_KEY] = str(user.pk)
store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
store[HASH_SESSION_KEY] = user.get_session_auth_hash()
store.create()
print(store.session_key)
"""


def session_cookie(server: ServerProcess, username: str) -> str:
    """A logged-in Django session for ``username`` in the server's database: the cookie value."""
    return server_python(server, "-c", _SESSION_SCRIPT, username)


# --- raw Engine.IO ----------------------------------------------------------------------------


def engine_error_body(code: int, message: str, chat_code: str, reason: str) -> dict[str, Any]:
    """The JSON body of an Engine.IO HTTP error as this server writes it."""
    return {"code": code, "message": message, "context": {"code": chat_code, "reason": reason}}


def connect_error_packet(message: str, code: str, namespace: str = "/", **data: Any) -> str:
    """The Engine.IO message (``4`` + Socket.IO ``CONNECT_ERROR``) the server sends."""
    prefix = "" if namespace == "/" else namespace + ","
    body = json.dumps({"message": message, "data": {"code": code, **data}}, separators=(",", ":"), ensure_ascii=False)
    return f"44{prefix}{body}"


class RawClient:
    """What both raw transports share: the packets received and how the connection ended."""

    transport = ""

    def __init__(self, http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> None:
        self.http = http
        self.url = url
        self.headers = headers or {}
        self.handshake: dict[str, Any] = {}
        #: Engine.IO packets received, in order (text; binary messages as bytes).
        self.packets: list[str | bytes] = []
        self.closed = False
        #: How it ended: ("close-packet",), ("http", status, body), ("ws-close", code, reason), ("error", repr)
        self.ending: tuple[Any, ...] | None = None
        self.answer_pings = True
        self._reader: asyncio.Task[None] | None = None

    @property
    def sid(self) -> str:
        return self.handshake["sid"]

    def _received(self, packet: str | bytes) -> None:
        if packet == "2" and self.answer_pings:
            asyncio.get_running_loop().create_task(self._pong())
        self.packets.append(packet)

    async def _pong(self) -> None:
        with contextlib.suppress(Exception):
            await self.send("3")

    async def send(self, *packets: str | bytes) -> Any:
        raise NotImplementedError

    async def wait_packet(self, predicate: Callable[[str | bytes], bool], timeout: float = 5.0, since: int = 0) -> Any:
        found = await until(lambda: next((p for p in self.packets[since:] if predicate(p)), None), timeout)
        assert found is not None, (
            f"{self.transport}: no matching packet within {timeout}s; got {self.packets}, ending {self.ending}"
        )
        return found

    async def wait_closed(self, timeout: float = 5.0) -> tuple[Any, ...]:
        await until(lambda: self.closed, timeout)
        assert self.closed, f"{self.transport}: still open after {timeout}s; packets {self.packets}"
        assert self.ending is not None
        return self.ending

    async def connect(self, auth: Any = None, namespace: str = "/", timeout: float = 8.0) -> str:
        """Send a Socket.IO CONNECT and return the server's answer (``40...`` or ``44...``)."""
        prefix = "" if namespace == "/" else namespace + ","
        since = len(self.packets)
        await self.send("40" + prefix + (json.dumps(auth) if auth is not None else ""))
        return await self.wait_packet(
            lambda p: isinstance(p, str) and (p.startswith("40" + prefix) or p.startswith("44" + prefix)),
            timeout,
            since,
        )

    def messages(self, since: int = 0) -> list[str | bytes]:
        return [p for p in self.packets[since:] if p != "2"]

    async def aclose(self) -> None:
        raise NotImplementedError


class RawPolling(RawClient):
    """Engine.IO long-polling by hand; a background GET loop plays the client's pending GET."""

    transport = "polling"

    def query(self, **params: Any) -> str:
        params = {"EIO": "4", "transport": "polling", **params}
        return f"{self.url}/socket.io/?{urlencode({k: v for k, v in params.items() if v is not None})}"

    async def open(self, *, poll: bool = True) -> RawPolling:
        async with self.http.get(self.query(), headers=self.headers) as response:
            body = await response.text()
            assert response.status == 200 and body.startswith("0"), (response.status, body)
        self.handshake = json.loads(body[1:])
        if poll:
            self.start_polling()
        return self

    def start_polling(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._poll_loop())

    async def get_once(self, timeout: float = 10.0) -> tuple[int, str]:
        async with self.http.get(
            self.query(sid=self.sid), headers=self.headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            return response.status, await response.text()

    async def _poll_loop(self) -> None:
        for _ in range(100_000):  # bounded; a test ends long before
            try:
                status, body = await self.get_once(timeout=120)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.closed, self.ending = True, ("error", repr(error))
                return
            if status != 200:
                self.closed, self.ending = True, ("http", status, body)
                return
            for part in body.split(RS) if body else []:
                if part.startswith("b"):
                    self._received(base64.b64decode(part[1:]))
                elif part == "1":
                    self.closed, self.ending = True, ("close-packet",)
                    return
                else:
                    self._received(part)

    async def post(self, body: str | bytes, headers: dict[str, str] | None = None) -> tuple[int, str]:
        async with self.http.post(
            self.query(sid=self.sid),
            data=body.encode() if isinstance(body, str) else body,
            headers={**self.headers, **(headers or {})},
            timeout=aiohttp.ClientTimeout(total=15),
        ) as response:
            return response.status, await response.text()

    async def send(self, *packets: str | bytes) -> tuple[int, str]:
        """One POST carrying ``packets`` (binary ones base64-encoded as ``b...``)."""
        parts = ["b" + base64.b64encode(p).decode() if isinstance(p, bytes) else p for p in packets]
        return await self.post(RS.join(parts))

    async def aclose(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                await self.post("1")
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader


class RawWebSocket(RawClient):
    """Engine.IO over a WebSocket, frame by frame (aiohttp, no automatic pings)."""

    transport = "websocket"

    def __init__(self, http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(http, url, headers)
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def open(self) -> RawWebSocket:
        url = self.url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await self.http.ws_connect(url, headers=self.headers, autoping=False, autoclose=False, max_msg_size=0)
        first = await asyncio.wait_for(self.ws.receive(), 10)
        assert first.type == aiohttp.WSMsgType.TEXT and first.data.startswith("0"), first
        self.handshake = json.loads(first.data[1:])
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())
        return self

    async def _read_loop(self) -> None:
        assert self.ws is not None
        for _ in range(1_000_000):  # bounded; a test ends long before
            message = await self.ws.receive()
            if message.type == aiohttp.WSMsgType.TEXT:
                self._received(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                self._received(message.data)
            elif message.type == aiohttp.WSMsgType.CLOSE:
                self.closed, self.ending = True, ("ws-close", message.data, message.extra or "")
                return
            else:  # CLOSED / ERROR: the TCP connection ended without a close frame
                self.closed, self.ending = True, ("error", message.type.name, repr(message.data))
                return

    async def send(self, *frames: str | bytes) -> None:
        assert self.ws is not None
        for frame in frames:
            if isinstance(frame, bytes):
                await self.ws.send_bytes(frame)
            else:
                await self.ws.send_str(frame)

    async def send_text_bytes(self, payload: bytes) -> None:
        """A TEXT frame whose payload is exactly ``payload`` (which may not be UTF-8)."""
        assert self.ws is not None
        await self.ws.send_frame(payload, aiohttp.WSMsgType.TEXT)

    async def aclose(self) -> None:
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 3)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader


async def open_raw(http: aiohttp.ClientSession, url: str, transport: str, headers: dict[str, str] | None = None):
    client: RawClient = RawPolling(http, url, headers) if transport == "polling" else RawWebSocket(http, url, headers)
    return await client.open()


# --- a WebSocket by hand over TCP, for a reader that stops reading ----------------------------------


def _ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    mask = os.urandom(4)
    length = len(payload)
    head = bytes([0x80 | opcode])
    if length < 126:
        head += bytes([0x80 | length])
    elif length < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", length)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", length)
    return head + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


class SlowReader:
    """A blocking TCP socket speaking WebSocket by hand, with a small receive buffer.

    Used from a thread (``asyncio.to_thread``) so the test's loop never blocks.
    """

    def __init__(self, port: int, rcvbuf: int = 4096) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.port = port
        self._buffer = b""

    def handshake(self) -> dict[str, Any]:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buffer:
            chunk = self.sock.recv(4096)
            assert chunk, "the server closed during the WebSocket handshake"
            self._buffer += chunk
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        opened = self.read_text()
        assert opened.startswith("0"), opened
        return json.loads(opened[1:])

    def send_text(self, text: str) -> None:
        self.sock.sendall(_ws_frame(text.encode()))

    def _read_exact(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("EOF")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        first, second = self._read_exact(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack(">H", self._read_exact(2))
        elif length == 127:
            (length,) = struct.unpack(">Q", self._read_exact(8))
        return first & 0x0F, self._read_exact(length)

    def read_text(self) -> str:
        for _ in range(100_000):
            opcode, payload = self.read_frame()
            if opcode == 0x1:
                text = payload.decode()
                if text == "2":
                    self.send_text("3")
                    continue
                return text
            if opcode == 0x8:
                raise ConnectionError(f"close frame {payload!r}")
        raise AssertionError("no text frame")

    def read_until(self, predicate: Callable[[str], bool]) -> str:
        for _ in range(100_000):
            text = self.read_text()
            if predicate(text):
                return text
        raise AssertionError("no matching frame")

    def drain_until_closed(self, timeout: float) -> str:
        """Read everything until the server ends the connection; how it ended ("close-frame", "eof", "reset")."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(1)
        while time.monotonic() < deadline:
            try:
                opcode, _ = self.read_frame()
            except socket.timeout:
                continue
            except ConnectionResetError:
                return "reset"
            except ConnectionError:
                return "eof"
            if opcode == 0x8:
                return "close-frame"
        return "open"

    def close_code(self, timeout: float) -> int | str:
        """Read everything until the server's close frame: its code; or "eof" / "reset" / "open" if none came."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(1)
        while time.monotonic() < deadline:
            try:
                opcode, payload = self.read_frame()
            except socket.timeout:
                continue
            except ConnectionResetError:
                return "reset"
            except ConnectionError:
                return "eof"
            if opcode == 0x8:
                return struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else "close-frame"
        return "open"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


# --- the external verifier ---------------------------------------------------------------------


@dataclass
class Verifier:
    """A real HTTP server (aiohttp, its own thread and loop) answering like Better Auth.

    ``answers`` maps a token to ``(status, JSON body or raw text)``; unknown
    tokens get 401.  ``calls`` lists every token it was asked about.
    """

    port: int = field(default_factory=free_port)
    answers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    #: Tokens whose answer waits until :meth:`release` (or 30 s); ``waiting`` counts those held now.
    held: set[str] = field(default_factory=set)
    waiting: int = 0
    _gate: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/verify"

    def count(self, token: str) -> int:
        return self.calls.count(token)

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            token = (await request.json()).get("token")
        except Exception:
            return web.Response(status=400)
        self.calls.append(token)
        if token in self.held:
            self.waiting += 1
            try:
                for _ in range(1500):
                    if self._gate.is_set():
                        break
                    await asyncio.sleep(0.02)
            finally:
                self.waiting -= 1
        status, body = self.answers.get(token, (401, {"error": "unknown"}))
        if isinstance(body, str):
            return web.Response(status=status, text=body, content_type="application/json")
        return web.json_response(body, status=status)

    def hold(self, *tokens: str) -> None:
        """Hold the answers about ``tokens`` until :meth:`release`."""
        self._gate.clear()
        self.held.update(tokens)

    def release(self) -> None:
        """Answer every held question now (and any later one for a held token)."""
        self._gate.set()

    def start(self) -> Verifier:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/verify", self._handle)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="verifier", daemon=True)
        self._thread.start()
        assert ready.wait(10), "the verifier did not start"
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def better_auth(user_id: str, name: str, organization: str | None) -> dict[str, Any]:
    return {
        "user": {"id": user_id, "name": name, "email": f"{user_id}@example.com"},
        "session": {"id": unique("sess"), "activeOrganizationId": organization},
    }


# --- bystanders --------------------------------------------------------------------------------


class Bystanders:
    """Two members chatting in one session, one over WebSocket and one over polling."""

    def __init__(self, url: str, workspace: str, tokens: tuple[str, str]) -> None:
        self.url = url
        self.workspace = workspace
        self.tokens = tokens
        self.session = unique("bystand")
        self.ws = ChatClient("bystander-ws")
        self.polling = ChatClient("bystander-polling")

    async def start(self) -> Bystanders:
        await self.ws.connect(self.url, self.tokens[0], ["websocket"])
        await self.polling.connect(self.url, self.tokens[1], ["polling"])
        await self.ws.join(self.workspace, self.session)
        await self.polling.join(self.workspace, self.session)
        return self

    async def check(self, timeout: float = 8.0) -> None:
        """Each sends a message, the other receives it; both still connected."""
        assert self.ws.connected and self.polling.connected, (self.ws.stream[-5:], self.polling.stream[-5:])

        async def one_way(sender: ChatClient, receiver: ChatClient) -> None:
            mark = receiver.mark()
            mid = unique("by")
            ack = await sender.send(self.session, f"still chatting {mid}", mid, timeout=timeout)
            assert ack.get("ok") is True, (sender, ack)
            await receiver.wait_for("chat:message-received", lambda m: m["id"] == mid, timeout, since=mark)

        await asyncio.gather(one_way(self.ws, self.polling), one_way(self.polling, self.ws))
        for client in (self.ws, self.polling):
            assert not client.events("disconnect"), client.stream

    async def close(self) -> None:
        await asyncio.gather(self.ws.close(), self.polling.close(), return_exceptions=True)


def nested(depth: int, leaf: Any = 1) -> Any:
    """A JSON object nested ``depth`` levels deep (depth 1 is ``{"k": leaf}``)."""
    value = leaf
    for _ in range(depth):
        value = {"k": value}
    return value


def varied_text(length: int, seed: str = "") -> str:
    """Readable text of exactly ``length`` characters: no character runs, no links, no repeats."""
    words = []
    n = 0
    base = seed or unique("t")
    while sum(len(w) + 1 for w in words) < length + 8:
        words.append(f"{base}{n:x}w")
        n += 1
    return " ".join(words)[:length]


def chunked(items: Iterable[Any], size: int) -> list[list[Any]]:
    items = list(items)
    return [items[i : i + size] for i in range(0, len(items), size)]
