"""Server-side notices to a room's sockets (``Emitter.notice_room``): each runs the namespace's notice
handler once, between the socket's events, and nothing reaches the client."""

from __future__ import annotations

import asyncio
from typing import Any

from channels_socketio.protocol.namespace import Namespace
from channels_socketio.protocol.server import SocketServer
from channels_socketio.protocol.socket import Socket
from channels_socketio.transport.worker_channel import WorkerChannel


class FakeSession:
    scope: dict[str, Any] = {}
    transport = "websocket"

    def __init__(self) -> None:
        self.sent: list[str | bytes] = []

    def send_now(self, frames: list[str | bytes]) -> bool:
        self.sent += frames
        return True

    async def send_many(self, frames: list[str | bytes]) -> None:
        self.sent += frames


class FakeConnection:
    def __init__(self) -> None:
        self.session = FakeSession()


def connected_socket(server: SocketServer) -> Socket:
    socket = Socket(server, FakeConnection(), "/", None)  # type: ignore[arg-type]
    socket.connected = True
    return socket


def test_a_notice_runs_the_handler_for_each_socket_of_the_room_between_its_events() -> None:
    async def run() -> None:
        server = SocketServer(WorkerChannel())
        namespace = server.register(Namespace("/"))
        seen: list[tuple[str, Any, bool]] = []

        @namespace.on_notice
        async def notice(socket: Socket, data: Any) -> None:
            seen.append((socket.id, data, socket.lock.locked()))

        inside, also_inside, outside = (connected_socket(server) for _ in range(3))
        for socket in (inside, also_inside):
            await socket.join("user:7")
        await outside.join("user:8")

        async with inside.lock:  # an event of ``inside`` is being handled
            await server.emitter.notice_room("user:7", {"kind": "changed"})
            for _ in range(20):
                await asyncio.sleep(0)
            assert [socket_id for socket_id, *_ in seen] == [also_inside.id]
        for _ in range(20):
            await asyncio.sleep(0)

        assert sorted(seen) == sorted(
            [(inside.id, {"kind": "changed"}, True), (also_inside.id, {"kind": "changed"}, True)]
        )
        assert all(socket.connection.session.sent == [] for socket in (inside, also_inside, outside))

    asyncio.run(run())
