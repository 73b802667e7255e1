"""One client's connection to one namespace: what event handlers work with.

Layer: protocol core.

A :class:`Socket` lets the application read who the client is
(``user``, ``auth``, ``data``, ``scope``) and act: :meth:`emit` to it,
:meth:`call` it and await its ack, :meth:`join` and :meth:`leave` rooms,
broadcast with :meth:`to`, and :meth:`disconnect` it.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, Awaitable, Callable, Iterable, Protocol

from channels_socketio import observer
from channels_socketio.errors import AckTimeout
from channels_socketio.protocol.emitter import NAMESPACE_ROOM, event_frames
from channels_socketio.protocol.rooms import RoomFanout, fanout_message, group_name
from channels_socketio.transport.session import EngineSession
from channels_socketio.wire.socket_packets import Limits, Packet, PacketDecoder, encode

DEFAULT_ACK_TIMEOUT_S = 10.0

#: ``fill(first, last)`` of :meth:`Socket.join_ordered`: ``(seq, event, args)`` of a room's numbered events.
RoomFill = Callable[[int, "int | None"], Awaitable[list[tuple[int, str, list[Any]]]]]


class SocketHost(Protocol):
    """What a socket needs from the server it belongs to (:class:`~channels_socketio.protocol.server.SocketServer`)."""

    fanout: RoomFanout

    async def disconnect_socket(self, socket: Socket, reason: str, *, notify: bool) -> None: ...

    def notice_socket(self, socket: Socket, data: Any) -> None: ...


class Connection:
    """The Socket.IO state of one Engine.IO session: its packet decoder and one socket per namespace."""

    def __init__(self, session: EngineSession, limits: Limits) -> None:
        self.session = session
        self.decoder = PacketDecoder(limits)
        self.sockets: dict[str, Socket] = {}
        #: Closes the connection if no namespace is joined in time (``SocketOptions.connect_timeout_ms``).
        self.connect_timer: asyncio.TimerHandle | None = None

    def cancel_connect_timer(self) -> None:
        if self.connect_timer is not None:
            self.connect_timer.cancel()
            self.connect_timer = None


class Socket:
    def __init__(self, server: SocketHost, connection: Connection, namespace: str, auth: dict[str, Any] | None):
        self.id = secrets.token_urlsafe(15)
        self.namespace = namespace
        self.server = server
        self.connection = connection
        self.auth = auth
        #: Set by the namespace's connect handler (an authenticated user, say).
        self.user: Any = None
        #: Free per-socket state for the application.
        self.data: dict[str, Any] = {}
        self.rooms: set[str] = set()
        self.connected = False
        #: What the connect handler emits waits here until the client has
        #: its CONNECT answer; ``None`` once connected or refused.
        self._before_connect: list[list[str | bytes]] | None = []
        #: Held while one of this socket's events is handled, so a client's
        #: events are handled one at a time, in the order they were sent.
        self.lock = asyncio.Lock()
        #: Events received and not yet handled (``SocketOptions.max_pending_events``).
        self.pending_events = 0
        self._acks: dict[int, asyncio.Future[list[Any]]] = {}
        self._next_ack_id = 0

    @property
    def scope(self) -> dict[str, Any]:
        """The ASGI scope of the request that opened the connection."""
        return self.connection.session.scope

    @property
    def transport(self) -> str:
        return self.connection.session.transport

    # --- to this client -------------------------------------------------------------

    async def emit(self, event: str, *args: Any) -> None:
        observer.current.message_delivered(event)
        await self.deliver(event_frames(self.namespace, event, args))

    async def call(self, event: str, *args: Any, timeout: float = DEFAULT_ACK_TIMEOUT_S) -> list[Any]:
        """Emit with an ack and return the client's ack arguments."""
        self._next_ack_id += 1
        ack_id = self._next_ack_id
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        try:
            await self.deliver(event_frames(self.namespace, event, args, ack_id))
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise AckTimeout() from None
        finally:
            self._acks.pop(ack_id, None)

    async def send_packet(self, packet: Packet) -> None:
        await self.deliver(encode(packet))

    def deliver_now(self, frames: list[str | bytes]) -> bool:
        """:meth:`deliver` without awaiting, where the transport can write at once; False: await :meth:`deliver`."""
        return self.connected and self.connection.session.send_now(frames)

    async def deliver(self, frames: list[str | bytes]) -> None:
        """Write already-encoded frames (the fan-out calls this for broadcasts)."""
        if self.connected:
            await self.connection.session.send_many(frames)
        elif self._before_connect is not None:
            self._before_connect.append(frames)

    async def mark_connected(self, connect_frames: list[str | bytes]) -> None:
        """Answer the CONNECT, then send what the connect handler emitted."""
        self.connected = True
        queued, self._before_connect = self._before_connect or [], None
        await self.connection.session.send_many(connect_frames)
        for frames in queued:
            await self.connection.session.send_many(frames)

    def mark_gone(self) -> None:
        self.connected = False
        self._before_connect = None

    @property
    def pending_acks(self) -> int:
        """Acks this socket asked the client for and still waits for."""
        return len(self._acks)

    def resolve_ack(self, ack_id: int, args: list[Any]) -> None:
        future = self._acks.get(ack_id)
        if future is not None and not future.done():
            future.set_result(args)

    # --- rooms ----------------------------------------------------------------------

    async def join(self, room: str) -> None:
        if room not in self.rooms:
            self.rooms.add(room)
            await self.server.fanout.join(self, group_name(self.namespace, room))

    async def join_ordered(self, room: str, next_seq: int, fill: RoomFill) -> int:
        """Join a room whose numbered broadcasts (``emit(..., seq=n)``) this worker's members get in order.

        ``next_seq`` is the number the room's members get next if this worker
        does not order the room yet (what the application last stored, plus
        one); ``fill(first, last)`` returns the room's events numbered
        ``first`` to ``last`` (``None``: the newest) as ``(seq, event, args)``,
        for the gaps a lost publisher leaves (see
        :mod:`channels_socketio.protocol.sequence`).  Returns the number of the
        last event this socket does not get live: the joiner reads it and
        earlier ones from the application's history, and gets every later one
        live, once, in order.
        """
        namespace = self.namespace
        group = group_name(namespace, room)

        async def fill_frames(first: int, last: int | None) -> list[dict[str, Any]]:
            return [
                fanout_message(group, event_frames(namespace, event, args), seq=seq)
                for seq, event, args in await fill(first, last)
            ]

        self.rooms.add(room)
        last_not_live = await self.server.fanout.join(self, group, (next_seq, fill_frames))
        return next_seq - 1 if last_not_live is None else last_not_live

    async def leave(self, room: str) -> None:
        if room in self.rooms:
            self.rooms.discard(room)
            await self.server.fanout.leave(self, group_name(self.namespace, room))

    async def leave_all(self) -> None:
        for room in list(self.rooms):
            await self.leave(room)

    def to(self, room: str) -> Broadcast:
        """Broadcast to a room, leaving this socket out (``socket.to(room).emit(...)``)."""
        return Broadcast(self.server, self.namespace, room, exclude=(self.id,))

    # --- lifecycle ------------------------------------------------------------------

    async def disconnect(self) -> None:
        """Disconnect this client from the namespace (the server's decision)."""
        await self.server.disconnect_socket(self, "server namespace disconnect", notify=True)

    async def apply_remote(self, op: str, room: str | None, data: Any = None) -> None:
        """Carry out a control message another worker sent to a room we are in."""
        if op == "disconnect":
            await self.disconnect()
        elif op == "join" and room is not None:
            await self.join(room)
        elif op == "leave" and room is not None:
            await self.leave(room)
        elif op == "notice":
            self.server.notice_socket(self, data)

    def fail_pending_acks(self) -> None:
        for future in self._acks.values():
            if not future.done():
                future.set_exception(AckTimeout("The client disconnected before acknowledging."))
        self._acks.clear()


class Broadcast:
    """A room to reach and the sockets to leave out.

    One room per broadcast: Socket.IO de-duplicates a multi-room emit per
    socket, which would need every worker to know every room of a socket.
    """

    def __init__(self, server: SocketHost, namespace: str, room: str = NAMESPACE_ROOM, exclude: Iterable[str] = ()):
        self.server = server
        self.namespace = namespace
        self.room = room
        self.exclude = tuple(exclude)

    async def emit(self, event: str, *args: Any) -> None:
        frames = event_frames(self.namespace, event, args)
        await self.server.fanout.broadcast(group_name(self.namespace, self.room), frames, self.exclude)
