"""Several workers behind nginx, without sticky sessions, and losing one of them.

Two workers share PostgreSQL and Redis behind a real nginx configured from
``deploy/nginx/chat.conf`` (round-robin), under uvicorn as in production
(``deploy/systemd/chat@.service``, ``docs/deployment.md``).  Polling requests of one
client land on both workers and the conversation goes on; a worker killed
with SIGKILL mid-conversation loses no confirmed message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

import pytest
import socketio

from tests.integration.chat_client import ChatClient, db_rows, issue_tokens, unique
from tests.integration.nginx import Nginx

pytestmark = pytest.mark.services

ENV = {
    "CHAT_MESSAGE_RATE_LIMIT": "100000",
    "CHAT_SPAM_MAX_REPEATS": "100000",
    "CHAT_PRESENCE_TTL_S": "3",
    "CHAT_CONNECTION_TTL_S": "3",
    "CHAT_PING_INTERVAL_MS": "1000",
    "CHAT_PING_TIMEOUT_MS": "1500",
}


@pytest.fixture
def cluster(services_backend, server_factory, tmp_path):
    first = server_factory(services_backend, conformance=False, server="uvicorn", **ENV)
    second = server_factory(services_backend, conformance=False, server="uvicorn", **ENV)
    proxy = Nginx(tmp_path / "nginx", [first.port, second.port]).start()
    try:
        yield first, second, proxy
    finally:
        proxy.stop()


async def test_polling_requests_alternate_between_workers_and_chat_works(cluster):
    first, second, proxy = cluster
    workspace, session = unique("scale"), unique("s")
    tokens = issue_tokens(first, [("ann", workspace, "moderator"), ("bob", workspace, "moderator")])
    ann, bob = ChatClient("ann"), ChatClient("bob")
    try:
        await ann.connect(proxy.url, tokens["ann"], ["polling"])
        await bob.connect(proxy.url, tokens["bob"], ["polling"])
        await ann.join(workspace, session)
        await bob.join(workspace, session)
        for index in range(10):
            for client in (ann, bob):
                ack = await client.send(session, f"{client.label} {index}")
                assert ack["ok"], ack
        for reader, writer in ((ann, "bob"), (bob, "ann")):
            await reader.wait_for("chat:message-received", lambda m, w=writer: m["userName"] == w, count=10, timeout=15)
            received = [m for m in reader.events("chat:message-received") if m["userName"] == writer]
            assert [m["content"] for m in received] == [f"{writer} {i}" for i in range(10)]
            assert [m["seq"] for m in received] == sorted(m["seq"] for m in received)
        # Each client's polling requests reached both workers: neither is sticky.
        for client in (ann, bob):
            token = client.sio.eio.sid.split("~")[0]
            served_by = [server for server in (first, second) if token in server.log_text()]
            assert served_by == [first, second], f"{client.label}'s requests reached only {served_by}"
    finally:
        await ann.close()
        await bob.close()


class Member:
    """A client that reconnects, rejoins, resends until confirmed, and recovers what it missed."""

    def __init__(self, label: str, url: str, token: str, transports: list[str], workspace: str, session: str):
        self.label, self.url, self.token, self.transports = label, url, token, transports
        self.workspace, self.session = workspace, session
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=0.5)
        self.received: dict[str, int] = {}  # message id -> seq, live and recovered
        self.duplicates_live: list[str] = []
        self.confirmed: dict[str, int] = {}
        self.left: list[dict[str, Any]] = []
        self.joined = asyncio.Event()

        @self.sio.on("chat:message-received")
        async def received(message: dict[str, Any]) -> None:
            if message["id"] in self.received:
                self.duplicates_live.append(message["id"])
            self.received[message["id"]] = message["seq"]

        @self.sio.on("chat:user-left")
        async def user_left(data: dict[str, Any]) -> None:
            self.left.append({**data, "at": time.monotonic()})

        @self.sio.event
        async def connect() -> None:
            self.joined.clear()
            asyncio.get_running_loop().create_task(self._rejoin())

    async def _rejoin(self) -> None:
        with contextlib.suppress(Exception):
            ack = await self.sio.call(
                "chat:join-session", {"sessionId": self.session, "workspaceId": self.workspace}, timeout=5
            )
            if ack.get("ok"):
                self.joined.set()

    async def start(self) -> None:
        await self.sio.connect(self.url, auth={"token": self.token}, transports=self.transports, wait_timeout=5)
        await asyncio.wait_for(self.joined.wait(), 10)

    async def send_until_confirmed(self, message_id: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            await self.joined.wait()
            with contextlib.suppress(Exception):
                ack = await self.sio.call(
                    "chat:send-message",
                    {"message": {"id": message_id, "sessionId": self.session, "content": message_id}},
                    timeout=3,
                )
                if ack.get("ok"):
                    self.confirmed[message_id] = ack["seq"]
                    return
            await asyncio.sleep(0.1)

    async def recover(self) -> None:
        """Fetch everything after the highest seq seen contiguously, as a reconnecting widget does."""
        seqs = sorted(self.received.values())
        after = next((s - 1 for s, expected in zip(seqs, itertools.count(1)) if s != expected), len(seqs))
        while True:
            response: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self.sio.on("chat:history-response", lambda data, r=response: r.done() or r.set_result(data))
            page = await self.sio.call(
                "chat:request-history", {"sessionId": self.session, "afterSeq": after, "limit": 200}, timeout=10
            )
            assert page["ok"], page
            history = await asyncio.wait_for(response, 10)
            for message in history["messages"]:
                self.received.setdefault(message["id"], message["seq"])
            if not history["hasMore"]:
                return
            after = history["messages"][-1]["seq"]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()
        with contextlib.suppress(Exception):
            await self.sio.shutdown()


async def test_worker_killed_mid_conversation_loses_no_confirmed_message(cluster):
    first, second, proxy = cluster
    workspace, session = unique("scale"), unique("s")
    names = ["poller", "websocket", "observer", "doomed"]
    tokens = issue_tokens(first, [(name, workspace, "moderator") for name in names])
    members = {
        "poller": Member("poller", proxy.url, tokens["poller"], ["polling"], workspace, session),
        "websocket": Member("websocket", proxy.url, tokens["websocket"], ["websocket"], workspace, session),
        "observer": Member("observer", first.url, tokens["observer"], ["websocket"], workspace, session),
        "doomed": Member("doomed", second.url, tokens["doomed"], ["websocket"], workspace, session),
    }
    try:
        for member in members.values():
            await member.start()
        doomed_socket = members["doomed"].sio.get_sid("/")
        deadline = time.monotonic() + 30

        async def chatter(member: Member, count: int) -> None:
            for index in range(count):
                await member.send_until_confirmed(f"{member.label}-{index}", deadline)
                await asyncio.sleep(0.03)

        senders = [asyncio.create_task(chatter(members[n], 40)) for n in ("poller", "websocket", "observer")]
        await asyncio.sleep(1.0)
        killed_at = time.monotonic()
        second.kill()
        await asyncio.gather(*senders)
        await members["doomed"].close()

        survivors = [members[n] for n in ("poller", "websocket", "observer")]
        confirmed = {mid: seq for m in survivors for mid, seq in m.confirmed.items()}
        assert len(confirmed) == 120, "every send was eventually confirmed"

        # The others hear that the dead worker's socket left, within the presence TTL (+ a housekeeping round).
        observer = members["observer"]
        deadline_left = killed_at + 3 + 3 + 2
        while time.monotonic() < deadline_left and not any(e["socketId"] == doomed_socket for e in observer.left):
            await asyncio.sleep(0.1)
        left = [e for e in observer.left if e["socketId"] == doomed_socket]
        assert left, f"no chat:user-left for the dead worker's socket; saw {observer.left}"
        assert left[0]["at"] - killed_at < 3 + 3 + 2

        rows = db_rows(
            first,
            "SELECT m.key, m.seq FROM chat_chatmessage m JOIN chat_chatsession s ON m.session_id = s.id "
            "WHERE s.key = ? ORDER BY m.seq",
            (session,),
        )
        stored = {key: seq for key, seq in rows}
        assert [seq for _, seq in rows] == list(range(1, len(rows) + 1)), "seq is gap-free"
        for message_id, seq in confirmed.items():
            assert stored.get(message_id) == seq, f"confirmed {message_id} (seq {seq}) is not stored as such"

        for member in survivors:
            await member.recover()
            others = {mid: seq for mid, seq in confirmed.items() if not mid.startswith(member.label + "-")}
            missing = {mid for mid in others if member.received.get(mid) != others[mid]}
            assert not missing, f"{member.label} is missing confirmed messages {sorted(missing)[:5]}"
            assert not member.duplicates_live, f"{member.label} received {member.duplicates_live[:5]} twice"
    finally:
        for member in members.values():
            await member.close()
