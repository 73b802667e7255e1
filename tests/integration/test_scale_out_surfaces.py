"""Three workers behind nginx: every surface posts, every member sees each session in ``seq`` order, and a
worker killed mid-run loses and repeats nothing.

Issue #19's acceptance test.  Three uvicorn workers share PostgreSQL and
Redis behind a real nginx configured from ``deploy/nginx/chat.conf``
(round-robin, no stickiness).  Two sessions:

- a busy one, without an agent, where on *each* worker a socket client
  (``chat:send-message``), a REST client (``POST .../messages/``) and a
  Parlant client (``POST /parlant/.../events``, ``source: customer``) post
  as fast as they are confirmed;
- one with the built-in echo agent, which the same senders reach with every
  eighth message, so agent replies are posted by whichever worker runs them.

Members (receivers that never send) sit on different workers: one WebSocket
straight to each worker, one WebSocket and one long-polling client through
nginx (the polling client's requests land on every worker).  Mid-run one
worker gets SIGKILL; senders keep going, and every client of the dead
worker reconnects through nginx, as a browser behind a load balancer does,
resends what was not confirmed (socket and REST sends are idempotent by
id) and catches up on what it missed with ``chat:request-history``
``afterSeq``.

Checked afterwards:

- the stored history of each session is gap-free, and every confirmed
  message (``chat:message-sent`` ack, REST 201/200, Parlant 201) is in it
  once, with the seq it was confirmed with;
- every user message of the agent's session got exactly one answer (the
  reply, or the note that its worker was lost);
- for every member and session, each connection's live stream
  (``chat:message-received`` after the join's ``lastSeq``) is gap-free and
  in order, without repeats; and its live streams and catch-ups put together
  hold every seq exactly once.  (A reconnected client skips what it already
  holds: the worker it reaches may start its stream lower, at that worker's
  own progress, which is what ``lastSeq`` tells.)

This found three faults, now mended: a gap fill that ran in a finished REST
call's context and failed (``CurrentThreadExecutor already quit``); a
joiner's ``lastSeq`` read before it joined the room, so a reconnecting
member missed what its worker delivered in between; and nginx retrying a
long-poll GET on another worker after the relaying worker died, which
silently skipped the packets the first GET had taken
(``deploy/nginx/chat.conf``: ``proxy_next_upstream off``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import socketio

from tests.integration.chat_client import RELAXED_SECURITY, db_execute, db_rows, issue_tokens, unique
from tests.integration.nginx import Nginx

pytestmark = pytest.mark.services

WORKERS = 3
KILLED = 1
#: Sending before and after the kill, seconds.
BEFORE_KILL_S = 4.0
AFTER_KILL_S = 6.0
#: Every AGENT_EVERY-th message of a sender goes to the agent's session.
AGENT_EVERY = 8
#: Pause between a sender's messages (each waits for its confirmation first).
PAUSE_S = 0.02
#: How long, after the senders stop, everything may take to settle.
SETTLE_S = 20.0

ENV = {
    **RELAXED_SECURITY,
    "CHAT_API_RATE_LIMIT": "",
    # A dead worker's agent reply is given up after 3 s, not 30 s (the session's queue waits for it).
    "CHAT_AGENT_LEASE_S": "3",
    # Clients notice a dead worker's polling session within ~2.5 s.
    "CHAT_PING_INTERVAL_MS": "1000",
    "CHAT_PING_TIMEOUT_MS": "1500",
    "CHAT_PRESENCE_TTL_S": "3",
    "CHAT_CONNECTION_TTL_S": "3",
}


@pytest.fixture
def cluster(services_backend, server_factory, tmp_path):
    workers = [
        server_factory(services_backend, conformance=False, server="uvicorn", CHAT_WORKER_ID=f"w{i}", **ENV)
        for i in range(WORKERS)
    ]
    proxy = Nginx(tmp_path / "nginx", [worker.port for worker in workers]).start()
    try:
        yield workers, proxy
    finally:
        proxy.stop()


@dataclass
class World:
    workspace: str
    busy: str
    agent: str
    proxy_url: str
    tokens: dict[str, str]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    #: message id -> (session, seq confirmed, surface); seq is None for Parlant (it confirms an event offset).
    confirmed: dict[str, tuple[str, int | None, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def sessions(self) -> tuple[str, str]:
        return self.busy, self.agent

    def session_for(self, n: int) -> str:
        return self.agent if n % AGENT_EVERY == AGENT_EVERY - 1 else self.busy


# --- socket clients ----------------------------------------------------------------------------


class Connection:
    """One Socket.IO connection of a client: what it received, per session, in order."""

    def __init__(self, url: str, transports: list[str]) -> None:
        self.url = url
        self.transports = transports
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[int]] = {}
        self.last_seq: dict[str, int] = {}
        self.gone = asyncio.Event()

        @self.sio.on("chat:message-received")
        async def received(message: dict[str, Any]) -> None:
            self.received.setdefault(message["sessionId"], []).append(message["seq"])

        @self.sio.event
        async def disconnect(reason: Any = None) -> None:
            self.gone.set()

    async def open(self, token: str, world: World, agent_first: bool = False) -> None:
        await self.sio.connect(self.url, auth={"token": token}, transports=self.transports, wait_timeout=5)
        for session in world.sessions:
            payload = {"sessionId": session, "workspaceId": world.workspace}
            if agent_first and session == world.agent:
                payload["agentId"] = "echo"
            ack = await self.sio.call("chat:join-session", payload, timeout=10)
            if not ack.get("ok"):
                raise RuntimeError(f"join refused: {ack}")
            self.last_seq[session] = ack["lastSeq"]

    def live(self, session: str, held: int = 0) -> list[int]:
        """What arrived after the join's lastSeq (earlier seqs are history the join counted) and after ``held``.

        ``held``: the highest seq the client already had when it connected (a
        worker may start a reconnected client's stream below it).
        """
        last = self.last_seq.get(session)
        return [] if last is None else [seq for seq in self.received.get(session, []) if seq > max(last, held)]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()
        with contextlib.suppress(Exception):
            await self.sio.shutdown()


class Member:
    """A receiver: connected, it listens; disconnected, it reconnects through nginx and catches up by afterSeq."""

    def __init__(self, label: str, url: str, transports: list[str], world: World) -> None:
        self.label, self.world, self.transports = label, world, transports
        self.first_url = url
        #: Per session, in order: ("live", connection, held) and ("catch-up", [seq...], held) parts.
        self.parts: dict[str, list[tuple[str, Any, int]]] = {session: [] for session in world.sessions}
        self.connections: list[Connection] = []

    @property
    def current(self) -> Connection:
        return self.connections[-1]

    def describe(self, session: str) -> str:
        """The parts of the stream, for a failure message: which connection got what."""
        out = []
        for kind, part, held in self.parts[session]:
            seqs = part.live(session, held) if kind == "live" else part
            where = f" via {part.url} lastSeq {part.last_seq.get(session)}" if kind == "live" else ""
            out.append(f"{kind}{where}: {len(seqs)} seqs {seqs[:1]}..{seqs[-1:]}")
        return "; ".join(out)

    def assembled(self, session: str) -> list[int]:
        """Every seq this member holds for the session, in the order it got them (live and caught up)."""
        out: list[int] = []
        for kind, part, held in self.parts[session]:
            out += part.live(session, held) if kind == "live" else part
        return out

    def broken_live_streams(self, session: str) -> list[str]:
        """Connections whose own live stream (after the join's lastSeq) has a gap, a repeat or a swap."""
        broken = []
        for connection in self.connections:
            live, first = connection.live(session), connection.last_seq[session] + 1
            if live != list(range(first, first + len(live))):
                broken.append(
                    f"via {connection.url} from lastSeq {first - 1}: {first_difference(live, list(range(first, first + len(live))))}"
                )
        return broken

    async def start(self, agent_first: bool = False) -> None:
        await self._connect(self.first_url, agent_first)

    async def _connect(self, url: str, agent_first: bool = False) -> None:
        """Connect and join; after an earlier connection, first fetch what was missed, up to the join's lastSeq."""
        connection = Connection(url, self.transports)
        try:
            await connection.open(self.world.tokens[self.label], self.world, agent_first)
            caught_up, high = {}, {}
            for session in self.world.sessions:
                held = self.assembled(session)
                high[session] = held[-1] if held else 0
                caught_up[session] = await history(connection, session, high[session], connection.last_seq[session])
        except Exception:
            await connection.close()
            raise
        for session in self.world.sessions:
            if self.connections:
                self.parts[session].append(("catch-up", caught_up[session], high[session]))
            self.parts[session].append(("live", connection, high[session]))
        self.connections.append(connection)

    async def keep_connected(self, until: float) -> None:
        """Reconnect through nginx whenever the connection drops (until ``until``)."""
        while time.monotonic() < until:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.current.gone.wait(), 0.2)
            if not self.current.gone.is_set():
                continue
            await self.current.close()
            while time.monotonic() < until:
                try:
                    await self._connect(self.world.proxy_url)
                    break
                except Exception:
                    await asyncio.sleep(0.2)

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()


async def history(connection: Connection, session: str, after: int, upto: int) -> list[int]:
    """``chat:request-history`` from ``afterSeq`` on, page by page, up to seq ``upto``."""
    seqs: list[int] = []
    while after < upto:
        page = await connection.sio.call(
            "chat:request-history", {"sessionId": session, "afterSeq": after, "limit": 200}, timeout=10
        )
        if not page.get("ok"):
            raise RuntimeError(f"history refused: {page}")
        batch = [m["seq"] for m in page["messages"] if m["seq"] <= upto]
        seqs += batch
        if not page["hasMore"] or not batch:
            break
        after = batch[-1]
    return seqs


# --- senders ---------------------------------------------------------------------------------------


def text(label: str, n: int) -> str:
    return f"{label} says hello number {n}"


async def socket_sender(world: World, label: str, url: str) -> int:
    """``chat:send-message`` until confirmed, message after message; after a lost connection, through nginx."""
    connection = Connection(url, ["websocket"])
    await connection.open(world.tokens[label], world)
    sent = 0
    try:
        for n in itertools.count():
            if world.stop.is_set():
                return sent
            message_id, session = f"{label}-{n}", world.session_for(n)
            message = {"id": message_id, "sessionId": session, "content": text(label, n)}
            deadline = time.monotonic() + SETTLE_S
            while True:
                if time.monotonic() > deadline:
                    world.problems.append(f"{message_id} never confirmed")
                    return sent
                if connection.gone.is_set():
                    await connection.close()
                    connection = Connection(world.proxy_url, ["websocket"])
                    with contextlib.suppress(Exception):
                        await connection.open(world.tokens[label], world)
                    if not connection.sio.connected or len(connection.last_seq) < 2:
                        connection.gone.set()
                        await asyncio.sleep(0.2)
                        continue
                try:
                    ack = await connection.sio.call("chat:send-message", {"message": message}, timeout=5)
                except Exception:
                    connection.gone.set()
                    continue
                if not ack.get("ok"):
                    world.problems.append(f"{message_id} refused: {ack}")
                    return sent
                world.confirmed[message_id] = (session, ack["seq"], "socket")
                sent += 1
                break
            await asyncio.sleep(PAUSE_S)
    finally:
        await connection.close()
    return sent


async def rest_sender(world: World, http: aiohttp.ClientSession, label: str, url: str) -> int:
    """``POST /api/v1/.../messages/`` until 201 (or 200: already stored); after a failure, through nginx."""
    headers = {"Authorization": f"Bearer {world.tokens[label]}"}
    sent = 0
    for n in itertools.count():
        if world.stop.is_set():
            return sent
        message_id, session = f"{label}-{n}", world.session_for(n)
        body = {"id": message_id, "content": text(label, n)}
        deadline = time.monotonic() + SETTLE_S
        while True:
            if time.monotonic() > deadline:
                world.problems.append(f"{message_id} never confirmed")
                return sent
            endpoint = f"{url}/api/v1/workspaces/{world.workspace}/sessions/{session}/messages/"
            try:
                async with http.post(endpoint, json=body, headers=headers, timeout=aiohttp.ClientTimeout(5)) as r:
                    status, answer = r.status, await r.text()
            except (aiohttp.ClientError, asyncio.TimeoutError):
                url = world.proxy_url
                await asyncio.sleep(0.1)
                continue
            if status >= 500:
                url = world.proxy_url
                await asyncio.sleep(0.1)
                continue
            if status not in (200, 201):
                world.problems.append(f"{message_id}: REST {status} {answer[:200]}")
                return sent
            world.confirmed[message_id] = (session, json.loads(answer)["seq"], "rest")
            sent += 1
            break
        await asyncio.sleep(PAUSE_S)
    return sent


async def parlant_sender(world: World, http: aiohttp.ClientSession, label: str, url: str) -> int:
    """Customer events on the Parlant facade until 201; a failed post is posted again (through nginx)."""
    sent = 0
    for n in itertools.count():
        if world.stop.is_set():
            return sent
        session = world.session_for(n)
        body = {"kind": "message", "source": "customer", "message": text(label, n)}
        deadline = time.monotonic() + SETTLE_S
        while True:
            if time.monotonic() > deadline:
                world.problems.append(f"{label}-{n} never confirmed")
                return sent
            endpoint = f"{url}/parlant/{world.workspace}/t/{world.tokens[label]}/sessions/{session}/events"
            try:
                async with http.post(endpoint, json=body, timeout=aiohttp.ClientTimeout(5)) as r:
                    status, answer = r.status, await r.text()
            except (aiohttp.ClientError, asyncio.TimeoutError):
                url = world.proxy_url
                await asyncio.sleep(0.1)
                continue
            if status >= 500:
                url = world.proxy_url
                await asyncio.sleep(0.1)
                continue
            if status != 201:
                world.problems.append(f"{label}-{n}: Parlant {status} {answer[:200]}")
                return sent
            world.confirmed[json.loads(answer)["id"]] = (session, None, "parlant")
            sent += 1
            break
        await asyncio.sleep(PAUSE_S)
    return sent


# --- the test ----------------------------------------------------------------------------------------


def stored(worker: Any, session: str) -> list[tuple[int, str, str, dict[str, Any]]]:
    """``(seq, key, sender_type, metadata)`` of a session's stored messages, by seq."""
    rows = db_rows(
        worker,
        "SELECT m.seq, m.key, m.sender_type, m.metadata FROM chat_chatmessage m "
        "JOIN chat_chatsession s ON m.session_id = s.id WHERE s.key = ? ORDER BY m.seq",
        (session,),
    )
    return [
        (seq, key, kind, meta if isinstance(meta, dict) else json.loads(meta or "{}")) for seq, key, kind, meta in rows
    ]


def open_agent_runs(worker: Any, session: str) -> int:
    return db_rows(
        worker,
        "SELECT count(*) FROM chat_agentrun r JOIN chat_chatsession s ON r.session_id = s.id "
        "WHERE s.key = ? AND r.status IN ('pending', 'running')",
        (session,),
    )[0][0]


def describe_missing(rows: list[tuple[int, str, str, dict[str, Any]]], got: list[int], killed_at: float) -> str:
    held = set(got)
    return ", ".join(f"{seq} ({key})" for seq, key, *_ in rows if seq not in held)[:500]


def first_difference(got: list[int], expected: list[int]) -> str:
    for index, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            return f"at position {index}: got seq {a}, expected {b} (around: {got[max(0, index - 3) : index + 4]})"
    return f"length {len(got)} instead of {len(expected)} (ends: {got[-4:]} vs {expected[-4:]})"


async def test_every_surface_on_every_worker_reaches_every_member_in_seq_order_and_a_killed_worker_loses_nothing(
    cluster,
):
    workers, proxy = cluster
    workspace = unique("scale3")
    senders = [f"{kind}{i}" for kind in ("sock", "rest", "parl") for i in range(WORKERS)]
    members = [f"m{i}" for i in range(WORKERS)] + ["via-nginx", "polling"]
    tokens = issue_tokens(workers[0], [(name, workspace, "moderator") for name in senders + members])
    db_execute(
        workers[0],
        "INSERT INTO chat_agent (workspace_id, key, name, backend, config, created_at) "
        "SELECT id, 'echo', 'Echo', 'echo', ?, CURRENT_TIMESTAMP FROM chat_workspace WHERE slug = ?",
        (json.dumps({"delay_ms": 2}), workspace),
    )
    world = World(workspace, unique("busy"), unique("agent"), proxy.url, tokens)

    receivers = [Member(f"m{i}", workers[i].url, ["websocket"], world) for i in range(WORKERS)]
    receivers += [
        Member("via-nginx", proxy.url, ["websocket"], world),
        Member("polling", proxy.url, ["polling"], world),
    ]
    try:
        await receivers[0].start(agent_first=True)  # creates the agent's session, with the echo agent
        for member in receivers[1:]:
            await member.start()
        sending_until = time.monotonic() + BEFORE_KILL_S + AFTER_KILL_S
        watchers = [asyncio.create_task(m.keep_connected(sending_until + SETTLE_S)) for m in receivers]
        async with aiohttp.ClientSession() as http:
            tasks = {}
            for i, worker in enumerate(workers):
                tasks[f"sock{i}"] = asyncio.create_task(socket_sender(world, f"sock{i}", worker.url))
                tasks[f"rest{i}"] = asyncio.create_task(rest_sender(world, http, f"rest{i}", worker.url))
                tasks[f"parl{i}"] = asyncio.create_task(parlant_sender(world, http, f"parl{i}", worker.url))
            await asyncio.sleep(BEFORE_KILL_S)
            before_kill = len(world.confirmed)
            workers[KILLED].kill()
            killed_at = time.monotonic()
            await asyncio.sleep(AFTER_KILL_S)
            world.stop.set()
            sent = {label: await task for label, task in tasks.items()}
        assert not world.problems, world.problems[:10]
        after_kill = len(world.confirmed) - before_kill
        assert before_kill > 0 and after_kill > 0, (before_kill, after_kill)
        assert all(sent.values()), f"every sender had messages confirmed: {sent}"

        # Everything settles: the agent has answered every user message, and each session's last seq is stable.
        survivor = workers[0]
        deadline = time.monotonic() + SETTLE_S
        while open_agent_runs(survivor, world.agent) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert open_agent_runs(survivor, world.agent) == 0, "the agent's queue did not drain"
        history = {session: stored(survivor, session) for session in world.sessions}

        # The stored history: gap-free, each confirmed message once with its confirmed seq.
        for session, rows in history.items():
            assert [seq for seq, *_ in rows] == list(range(1, len(rows) + 1)), f"{session}: seq has gaps"
        seq_of = {(session, key): seq for session, rows in history.items() for seq, key, *_ in rows}
        for message_id, (session, seq, surface) in world.confirmed.items():
            assert (session, message_id) in seq_of, f"confirmed {surface} message {message_id} is not stored"
            if seq is not None:
                assert seq_of[session, message_id] == seq, (
                    f"{message_id} confirmed as {seq}, stored as {seq_of[session, message_id]}"
                )

        # The agent answered every user message of its session exactly once (a reply, or its worker's loss).
        rows = history[world.agent]
        asked = [key for _, key, kind, _ in rows if kind == "user"]
        answers = [meta.get("inReplyTo") for _, _, kind, meta in rows if kind != "user"]
        assert sorted(answers) == sorted(asked), "each user message has exactly one agent answer"
        assert len(asked) >= WORKERS, asked

        # Every member: live streams and catch-ups together hold each seq once, in order.
        last = {session: len(rows) for session, rows in history.items()}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
            (m.assembled(s) or [0])[-1] >= last[s] for m in receivers for s in world.sessions
        ):
            await asyncio.sleep(0.1)
        for watcher in watchers:
            watcher.cancel()
        reconnected = [m.label for m in receivers if len(m.connections) > 1]
        assert "m1" in reconnected, f"the killed worker's member reconnected; reconnected: {reconnected}"
        for member in receivers:
            for session in world.sessions:
                assert not member.broken_live_streams(session), (member.label, member.broken_live_streams(session))
                got = member.assembled(session)
                expected = list(range(1, last[session] + 1))
                assert got == expected, (
                    f"{member.label} ({len(member.connections)} connection(s)), "
                    f"{'agent' if session == world.agent else 'busy'} session: {first_difference(got, expected)}; "
                    f"{member.describe(session)}; missing: {describe_missing(history[session], got, killed_at)}"
                )
    finally:
        for member in receivers:
            await member.close()
