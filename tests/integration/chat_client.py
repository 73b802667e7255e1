"""Helpers for the chat protocol tests (``docs/protocol.md``) against real servers.

- :class:`ChatClient` -- python-socketio's ``AsyncClient`` recording *every*
  event it receives, in order (``connect``, ``disconnect`` and
  ``connect_error`` included), so tests can assert on the full stream.
- :func:`issue_tokens` -- users, workspaces, memberships and API tokens made
  with ``manage.py chat_token --create`` against a running server's database.
- :func:`db_rows` / :func:`db_execute` -- SQL on a server's ``DATABASE_URL``
  (SQLite or PostgreSQL), to read what was stored or to put the database into
  a state (a closed session, an injected storage failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
import time
import uuid
from typing import Any, Callable, Iterable, Iterator

import pytest
import socketio

from tests.conftest import REPO_ROOT, ServerProcess

#: Every chat event runs over both transports.
TRANSPORTS = [pytest.param(["websocket"], id="websocket"), pytest.param(["polling"], id="polling")]

#: Server settings for protocol tests: rate limits, connection limits and spam
#: heuristics far above anything a test does, so they never interfere (the
#: tests that exercise one set it low on purpose).
RELAXED_SECURITY = {
    "CHAT_MESSAGE_RATE_LIMIT": "100000",
    "CHAT_JOIN_RATE_LIMIT": "100000",
    "CHAT_TYPING_RATE_LIMIT": "100000",
    "CHAT_PRESENCE_RATE_LIMIT": "100000",
    "CHAT_HISTORY_RATE_LIMIT": "100000",
    "CHAT_CONNECTION_LIMIT": "1000",
    "CHAT_SPAM_MAX_CHAR_RUN": "100000",
    "CHAT_SPAM_MAX_REPEATS": "100000",
    "CHAT_SPAM_MAX_LINKS": "1000",
}

#: Reserved names the stream records besides server events.
LIFECYCLE = ("connect", "disconnect", "connect_error")

MESSAGE_FIELDS = {
    "id",
    "sessionId",
    "workspaceId",
    "seq",
    "senderType",
    "userId",
    "userName",
    "content",
    "contentType",
    "html",
    "metadata",
    "timestamp",
    "version",
    "editedAt",
    "deleted",
    "attachments",
}
PRESENCE_FIELDS = {"sessionId", "workspaceId", "userId", "userName", "socketId", "status", "lastSeen"}
USER_LEFT_FIELDS = {"sessionId", "userId", "socketId", "timestamp"}
TYPING_FIELDS = {"sessionId", "userId", "userName", "isTyping", "timestamp"}


def unique(prefix: str) -> str:
    """A fresh client id (sessions, messages, slugs): tests never collide with each other."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def now_ms() -> int:
    return int(time.time() * 1000)


# --- the client ---------------------------------------------------------------------------


class ChatClient:
    """A Socket.IO client that keeps the full, ordered stream of what it received.

    ``stream`` holds ``(name, data)`` pairs: server events with their single
    argument (a tuple when there were several), plus ``connect`` (None),
    ``disconnect`` (the reason) and ``connect_error`` (the error's data).
    """

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.sio = socketio.AsyncClient(reconnection=False)
        self.stream: list[tuple[str, Any]] = []
        self.sid: str | None = None

        @self.sio.on("*")
        async def any_event(event: str, *args: Any) -> None:
            self.stream.append((event, args[0] if len(args) == 1 else args))

        @self.sio.event
        async def connect() -> None:
            self.sid = self.sio.get_sid()
            self.stream.append(("connect", None))

        @self.sio.event
        async def disconnect(reason: Any = None) -> None:
            self.stream.append(("disconnect", reason))

        @self.sio.event
        async def connect_error(data: Any = None) -> None:
            self.stream.append(("connect_error", data))

    def __repr__(self) -> str:
        return f"<ChatClient {self.label} sid={self.sid}>"

    # --- connection -------------------------------------------------------------------

    async def connect(
        self,
        url: str,
        token: str | None,
        transports: list[str],
        *,
        auth: Any = ...,
        expect_error: bool = False,
    ) -> ChatClient:
        """Connect with ``auth={"token": token}`` (or ``auth`` as given; ``token=None`` sends none)."""
        if auth is ...:
            auth = {"token": token} if token is not None else None
        try:
            await self.sio.connect(url, auth=auth, transports=transports, wait_timeout=5)
        except socketio.exceptions.ConnectionError:
            if not expect_error:
                raise AssertionError(f"{self.label}: connection failed; stream: {self.stream}") from None
            return self
        assert not expect_error, f"{self.label}: connected although a refusal was expected; stream: {self.stream}"
        assert self.sio.transport() == transports[-1], (self.sio.transport(), transports)
        return self

    @property
    def connected(self) -> bool:
        return self.sio.connected

    async def disconnect(self) -> None:
        """A graceful disconnect; waits until the client has seen it."""
        if self.sio.connected:
            await self.sio.disconnect()
        await self.wait_for("disconnect", timeout=5)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.sio.connected:
                await self.sio.disconnect()
        with contextlib.suppress(Exception):
            await self.sio.shutdown()

    # --- sending ----------------------------------------------------------------------

    async def call(self, event: str, payload: Any, timeout: float = 10.0) -> Any:
        """Emit with an ack and return the ack's argument."""
        return await self.sio.call(event, payload, timeout=timeout)

    async def emit(self, event: str, payload: Any) -> None:
        await self.sio.emit(event, payload)

    async def join(self, workspace: str, session: str, **extra: Any) -> dict[str, Any]:
        """Join and check the ack is a success and the success event arrived; return it."""
        ack = await self.call("chat:join-session", {"sessionId": session, "workspaceId": workspace, **extra})
        assert isinstance(ack, dict) and ack.get("ok") is True, f"{self.label}: join {workspace}/{session}: {ack}"
        return await self.wait_for("chat:join-session-success", lambda d: d["sessionId"] == session)

    async def send(
        self, session: str, content: str, message_id: str | None = None, *, timeout: float = 10.0, **extra: Any
    ) -> dict[str, Any]:
        """Send a message and return the ack (``{ok, messageId, seq, ...}`` or ``{ok: false, ...}``)."""
        message = {"id": message_id or unique("m"), "sessionId": session, "content": content, **extra}
        return await self.call("chat:send-message", {"message": message}, timeout=timeout)

    # --- reading the stream -------------------------------------------------------------

    def _joined_at(self, session: Any, workspace: Any) -> dict[str, Any] | None:
        for name, data in self.stream:
            if name == "chat:join-session-success" and (data.get("sessionId"), data.get("workspaceId")) == (
                session,
                workspace,
            ):
                return data
        return None

    def pre_join(self, name: str, data: Any) -> bool:
        """An event about something that happened before this socket joined, delivered late.

        The fan-out between workers takes a moment, so a socket that joins
        right after another may still receive that one's ``chat:user-joined``
        (or a message already counted in its ``lastSeq``).  Clients tell them
        apart by ``lastSeen``/``seq``; the stream helpers leave them out.
        """
        if name not in ("chat:user-joined", "chat:message-received") or not isinstance(data, dict):
            return False
        joined = self._joined_at(data.get("sessionId"), data.get("workspaceId"))
        if joined is None:
            return False
        if name == "chat:user-joined":
            return data.get("lastSeen", 0) < joined["presence"]["lastSeen"] and data.get("socketId") != self.sid
        return data.get("seq", 0) <= joined["lastSeq"]

    def _current(self, since: int) -> list[tuple[str, Any]]:
        return [(name, data) for name, data in self.stream[since:] if not self.pre_join(name, data)]

    def names(self, since: int = 0) -> list[str]:
        """The names of the events received (from stream index ``since``), in order."""
        return [name for name, _ in self._current(since)]

    def events(self, name: str, since: int = 0) -> list[Any]:
        """The data of every event ``name`` received (from stream index ``since``), in order."""
        return [data for event, data in self._current(since) if event == name]

    def mark(self) -> int:
        """The current length of the stream: pass it as ``since`` to look only at what comes next."""
        return len(self.stream)

    async def wait_for(
        self,
        event: str,
        predicate: Callable[[Any], bool] | None = None,
        timeout: float = 5.0,
        *,
        since: int = 0,
        count: int = 1,
    ) -> Any:
        """Wait until ``count`` events ``event`` matching ``predicate`` arrived; return the last one."""
        deadline = time.monotonic() + timeout
        while True:
            found = [d for d in self.events(event, since) if predicate is None or predicate(d)]
            if len(found) >= count:
                return found[count - 1]
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{self.label}: no {event!r} #{count} matching within {timeout}s; stream: {self.stream}"
                )
            await asyncio.sleep(0.01)

    async def assert_no_events(
        self, names: Iterable[str] | None = None, within: float = 0.5, *, since: int | None = None
    ) -> None:
        """Wait ``within`` seconds, then assert no event named in ``names`` (any event if None) was received.

        ``since`` defaults to the stream's length when called: nothing new may
        arrive.  Pass ``since=0`` to assert on the whole stream.
        """
        start = self.mark() if since is None else since
        if within:
            await asyncio.sleep(within)
        unwanted = [(n, d) for n, d in self._current(start) if names is None or n in set(names)]
        assert not unwanted, f"{self.label}: unexpected events {unwanted}; full stream: {self.stream}"


async def assert_silent(clients: Iterable[ChatClient], marks: dict[ChatClient, int] | None = None, within=0.5):
    """One wait for several clients: none received anything since its mark (or since now)."""
    clients = list(clients)
    marks = marks or {client: client.mark() for client in clients}
    await asyncio.sleep(within)
    for client in clients:
        await client.assert_no_events(None, within=0, since=marks[client])


async def while_connected(clients: Iterable[ChatClient], awaitable: Any, timeout: float) -> Any:
    """Await ``awaitable``, failing at once (not at the timeout) if one of ``clients`` is disconnected."""
    clients = list(clients)
    task = asyncio.ensure_future(awaitable)
    deadline = time.monotonic() + timeout
    try:
        while not task.done():
            gone = [c for c in clients if "disconnect" in c.names()]
            if gone:
                raise AssertionError(
                    f"disconnected while waiting: {[(c.label, c.events('disconnect')) for c in gone]}; "
                    f"last events of the first: {gone[0].stream[-3:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"not done within {timeout}s")
            await asyncio.sleep(0.05)
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


@contextlib.asynccontextmanager
async def client_pool() -> Any:
    """``async with client_pool() as new: c = await new(label).connect(...)``; all closed at the end."""
    made: list[ChatClient] = []

    def new(label: str = "") -> ChatClient:
        client = ChatClient(label)
        made.append(client)
        return client

    try:
        yield new
    finally:
        await asyncio.gather(*(client.close() for client in made), return_exceptions=True)


def assert_error(ack: Any, code: str, client: ChatClient, event: str, since: int = 0) -> dict[str, Any]:
    """``ack`` is ``{ok: false, code}`` and equals (ok aside) the ``<event>-error`` event the client got."""
    assert isinstance(ack, dict), ack
    assert ack.get("ok") is False, ack
    assert ack.get("code") == code, f"expected {code!r}, got {ack}"
    assert isinstance(ack.get("error"), str) and ack["error"], ack
    errors = client.events(f"{event}-error", since)
    assert errors, f"no {event}-error event; stream: {client.stream}"
    body = {k: v for k, v in ack.items() if k != "ok"}
    assert errors[-1] == body, (errors[-1], ack)
    return body


# --- credentials ----------------------------------------------------------------------------

_ISSUE_SCRIPT = """
import io, json, sys
import django
django.setup()
from django.core.management import call_command
tokens = {}
for user, workspace, role in json.loads(sys.stdin.read()):
    out = io.StringIO()
    call_command("chat_token", user, workspace=workspace, role=role, create=True, stdout=out)
    tokens[user] = out.getvalue().strip()
print(json.dumps(tokens))
"""


def server_python(server: ServerProcess, *args: str) -> str:
    """Run Python with the server's settings and database (``manage.py ...``, ``-c SCRIPT``): its last line."""
    done = subprocess.run(
        [sys.executable, *args], env=server.env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def issue_token(server: ServerProcess, user: str, workspace: str, role: str = "member") -> str:
    """``manage.py chat_token USER --workspace SLUG --role ROLE --create``: the printed API token."""
    token = server_python(server, "manage.py", "chat_token", user, "--workspace", workspace, "--role", role, "--create")
    assert token.startswith("chat_"), token
    return token


def issue_tokens(server: ServerProcess, specs: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """The ``chat_token --create`` command for many ``(user, workspace, role)`` in one process.

    A user named twice (two workspaces) gets a membership in each; its last
    token is returned (every one stays valid).
    """
    done = subprocess.run(
        [sys.executable, "-c", _ISSUE_SCRIPT],
        input=json.dumps([list(spec) for spec in specs]),
        env=server.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    tokens = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(token.startswith("chat_") for token in tokens.values()), tokens
    return tokens


# --- SQL on a server's database -----------------------------------------------------------------


def _database_url(target: ServerProcess | str) -> str:
    return target if isinstance(target, str) else target.env["DATABASE_URL"]


@contextlib.contextmanager
def _connect(url: str) -> Iterator[tuple[Any, bool]]:
    if url.startswith("sqlite:///"):
        connection = sqlite3.connect(url[len("sqlite:///") :], timeout=30, isolation_level=None)
        try:
            yield connection, False
        finally:
            connection.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as connection:
            yield connection, True


def db_rows(target: ServerProcess | str, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """Run ``sql`` (``?`` placeholders) and return its rows."""
    with _connect(_database_url(target)) as (connection, postgres):
        cursor = connection.execute(sql.replace("?", "%s") if postgres else sql, tuple(params))
        return list(cursor.fetchall()) if cursor.description else []


def db_execute(target: ServerProcess | str, sql: str, params: Iterable[Any] = ()) -> None:
    db_rows(target, sql, params)


def is_postgres(target: ServerProcess | str) -> bool:
    return not _database_url(target).startswith("sqlite:")


SESSION_PK = (
    "SELECT s.id FROM chat_chatsession s JOIN chat_workspace w ON w.id = s.workspace_id WHERE w.slug = ? AND s.key = ?"
)


def session_pk(target: ServerProcess | str, workspace: str, session: str) -> int | None:
    rows = db_rows(target, SESSION_PK, (workspace, session))
    return rows[0][0] if rows else None


def stored_messages(target: ServerProcess | str, workspace: str, session: str) -> list[tuple[int, str, str]]:
    """``(seq, id, content)`` of every stored message of a session, by seq."""
    return [
        (int(seq), key, content)
        for seq, key, content in db_rows(
            target,
            f"SELECT seq, key, content FROM chat_chatmessage WHERE session_id IN ({SESSION_PK}) ORDER BY seq",
            (workspace, session),
        )
    ]


def presence_rows(target: ServerProcess | str, socket_id: str) -> list[tuple[Any, ...]]:
    return db_rows(
        target, "SELECT session_id, user_name, worker_id FROM chat_presence WHERE socket_id = ?", (socket_id,)
    )


def close_session(target: ServerProcess | str, workspace: str, session: str) -> None:
    db_execute(
        target, f"UPDATE chat_chatsession SET status = 'closed' WHERE id IN ({SESSION_PK})", (workspace, session)
    )


def hide_message(target: ServerProcess | str, workspace: str, session: str, seq: int) -> None:
    db_execute(
        target,
        f"UPDATE chat_chatmessage SET hidden = ? WHERE seq = ? AND session_id IN ({SESSION_PK})",
        (True, seq, workspace, session),
    )


def create_agent(target: ServerProcess | str, workspace: str, key: str, name: str = "Helper") -> None:
    db_execute(
        target,
        "INSERT INTO chat_agent (workspace_id, key, name, backend, config, created_at) "
        "SELECT id, ?, ?, 'echo', '{}', CURRENT_TIMESTAMP FROM chat_workspace WHERE slug = ?",
        (key, name, workspace),
    )


@contextlib.contextmanager
def storage_failure(target: ServerProcess | str, content: str) -> Iterator[None]:
    """Make storing a message whose content is ``content`` fail inside the database."""
    name = f"injected_{uuid.uuid4().hex[:8]}"
    literal = content.replace("'", "''")
    if is_postgres(target):
        db_execute(target, f"ALTER TABLE chat_chatmessage ADD CONSTRAINT {name} CHECK (content <> '{literal}')")
        undo = f"ALTER TABLE chat_chatmessage DROP CONSTRAINT IF EXISTS {name}"
    else:
        db_execute(
            target,
            f"CREATE TRIGGER {name} BEFORE INSERT ON chat_chatmessage WHEN NEW.content = '{literal}' "
            "BEGIN SELECT RAISE(ABORT, 'injected'); END",
        )
        undo = f"DROP TRIGGER IF EXISTS {name}"
    try:
        yield
    finally:
        db_execute(target, undo)
