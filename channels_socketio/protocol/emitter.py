"""Emit to rooms from anywhere: a socket handler, a REST view, a management command.

Layer: protocol core.

An :class:`Emitter` needs only the process's room fan-out.  It encodes the
packet once and sends it to the room, where every worker with members
delivers it (see :mod:`channels_socketio.protocol.rooms`).  From synchronous code use
:meth:`Emitter.emit_sync`; from inside a transaction, call it in
``transaction.on_commit`` so nothing is announced that could still roll back.
"""

from __future__ import annotations

from typing import Any, Iterable

from asgiref.sync import async_to_sync

from channels_socketio.protocol.rooms import RoomFanout, group_name, process_fanout
from channels_socketio.wire.socket_packets import Packet, PacketType, encode


def event_frames(namespace: str, event: str, args: Iterable[Any], ack_id: int | None = None) -> list[str | bytes]:
    """Encode an event once, as the Engine.IO messages that carry it."""
    return encode(Packet(PacketType.EVENT, namespace, [event, *args], ack_id))


def socket_room(socket_id: str) -> str:
    """The room every socket is in alone, as in Socket.IO, so one socket can be reached anywhere."""
    return f"socket:{socket_id}"


#: The room every socket of a namespace is in, for namespace-wide emits.
NAMESPACE_ROOM = ""


class Emitter:
    def __init__(self, fanout: RoomFanout | None = None) -> None:
        self._fanout = fanout

    @property
    def fanout(self) -> RoomFanout:
        """The fan-out given, or else this process's Socket.IO server's (found on first use)."""
        if self._fanout is None:
            self._fanout = process_fanout()
        return self._fanout

    async def emit(
        self,
        event: str,
        *args: Any,
        room: str = NAMESPACE_ROOM,
        namespace: str = "/",
        exclude: Iterable[str] = (),
        seq: int | None = None,
    ) -> None:
        """Send ``event`` to everyone in ``room`` (default: the whole namespace).

        ``seq``: the event's number in the room's ordered stream (:meth:`RoomFanout.sequence`).
        """
        frames = event_frames(namespace, event, args)
        await self.fanout.broadcast(group_name(namespace, room), frames, exclude, seq=seq)

    async def emit_to_socket(self, socket_id: str, event: str, *args: Any, namespace: str = "/") -> None:
        await self.emit(event, *args, room=socket_room(socket_id), namespace=namespace)

    async def disconnect_room(self, room: str, *, namespace: str = "/") -> None:
        """Disconnect every socket in ``room`` on every worker (a ban, a closed session)."""
        await self._control("disconnect", room, namespace)

    async def join_room(self, room: str, new_room: str, *, namespace: str = "/") -> None:
        """Make every socket in ``room`` join ``new_room`` too, on every worker."""
        await self._control("join", room, namespace, new_room)

    async def leave_room(self, room: str, old_room: str, *, namespace: str = "/") -> None:
        await self._control("leave", room, namespace, old_room)

    async def notice_room(self, room: str, data: Any, *, namespace: str = "/") -> None:
        """Give every socket in ``room``, on every worker, a server-side notice: the namespace's notice
        handler (:meth:`Namespace.on_notice`) runs for each with ``data`` (JSON-like); the client sees nothing."""
        await self.fanout.control(group_name(namespace, room), "notice", data=data)

    async def _control(self, op: str, room: str, namespace: str, target: str | None = None) -> None:
        await self.fanout.control(group_name(namespace, room), op, target)

    def emit_sync(self, event: str, *args: Any, **kwargs: Any) -> None:
        async_to_sync(self.emit)(event, *args, **kwargs)

    def disconnect_room_sync(self, room: str, *, namespace: str = "/") -> None:
        async_to_sync(self.disconnect_room)(room, namespace=namespace)
