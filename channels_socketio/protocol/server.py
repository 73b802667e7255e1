"""The Socket.IO server: packets in, namespaces, sockets and acks out.

Layer: protocol core.  Spec: https://socket.io/docs/v4/socket-io-protocol/

:class:`SocketServer` attaches to the Engine.IO layer through its three
callbacks (open, message, close).  Each Engine.IO session gets a
:class:`Connection` holding its packet decoder and one :class:`Socket` per
connected namespace.  Events of one socket are handled one at a time, in
order, each in its own task, so that a handler awaiting the client's ack
never blocks the ack itself from arriving.

:class:`SocketOptions` holds what Node's ``socket.io`` server takes as
options: ``connectTimeout`` (a connection that has not connected to any
namespace by then is closed) and the shape of ``CONNECT_ERROR``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Iterable

from channels_socketio import observer
from channels_socketio.errors import (
    ConnectionRefused,
    InvalidNamespace,
    ProtocolError,
    SocketIOError,
    TooManyPendingEvents,
)
from channels_socketio.protocol.emitter import NAMESPACE_ROOM, Emitter, event_frames, socket_room
from channels_socketio.protocol.namespace import Namespace
from channels_socketio.protocol.rooms import RoomFanout, group_name
from channels_socketio.protocol.socket import Broadcast, Connection, Socket
from channels_socketio.transport.session import CloseReason, EngineSession
from channels_socketio.transport.worker_channel import WorkerChannel
from channels_socketio.wire.socket_packets import Limits, Packet, PacketType, encode

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SocketOptions:
    #: A connection that has joined no namespace this long after its Engine.IO
    #: handshake is closed (Node's ``connectTimeout``, 45 s by default).
    connect_timeout_ms: int = 45_000
    #: ``CONNECT_ERROR`` carries ``data: {code, ...}`` besides its message.  The
    #: reference server sends only ``{"message"}`` for an unknown namespace, and
    #: protocol test suites compare the packet whole.
    connect_error_data: bool = True
    #: Events one socket may have waiting to be handled (each is a task queued
    #: on the socket's lock); one beyond is answered ``too_many_pending_events``
    #: at once, without a task.  0: no limit.
    max_pending_events: int = 0


class SocketServer:
    def __init__(
        self, worker: WorkerChannel, *, limits: Limits = Limits(), options: SocketOptions = SocketOptions()
    ) -> None:
        self.namespaces: dict[str, Namespace] = {}
        self.fanout = RoomFanout(worker)
        self.emitter = Emitter(self.fanout)
        self.limits = limits
        self.options = options
        self._tasks: set[asyncio.Task[Any]] = set()

    def register(self, namespace: Namespace) -> Namespace:
        self.namespaces[namespace.name] = namespace
        return namespace

    async def start(self) -> None:
        await self.fanout.start()

    def buffer_sizes(self) -> dict[str, dict[str, int]]:
        """The sizes of this server's bounded buffers, for whoever monitors the process.

        ``sessions`` are the engine's, to count the acks its sockets wait for.
        """
        fanout = self.fanout
        sizes = {
            "handler_tasks": {"items": len(self._tasks)},
            "rooms": {"items": fanout.rooms},
            "room_subscriptions": {"items": fanout.subscriptions},
        }
        queued = getattr(fanout.worker.broker, "queued", None)
        if queued is not None:  # broadcasts waiting to be published
            sizes["broker_outbox"] = {"items": queued}
        return sizes

    def pending_acks(self, sessions: Iterable[EngineSession]) -> int:
        """Acks the sockets of these sessions wait for."""
        return sum(
            socket.pending_acks
            for session in sessions
            if isinstance(session.attachment, Connection)
            for socket in list(session.attachment.sockets.values())
        )

    # --- the application's API --------------------------------------------------------

    def to(self, room: str, namespace: str = "/") -> Broadcast:
        return Broadcast(self, namespace, room)

    async def emit(
        self, event: str, *args: Any, room: str = NAMESPACE_ROOM, namespace: str = "/", exclude: Iterable[str] = ()
    ) -> None:
        await self.fanout.broadcast(group_name(namespace, room), event_frames(namespace, event, args), exclude)

    # --- Engine.IO callbacks ------------------------------------------------------------

    async def on_open(self, session: EngineSession) -> None:
        connection = Connection(session, self.limits)
        session.attachment = connection
        connection.connect_timer = asyncio.get_running_loop().call_later(
            self.options.connect_timeout_ms / 1000, self._connect_timed_out, connection
        )

    def _connect_timed_out(self, connection: Connection) -> None:
        """No namespace joined in time (a connect handler still running has not joined yet): close."""
        connection.connect_timer = None
        if not any(socket.connected for socket in connection.sockets.values()) and not connection.session.closed:
            logger.info("closing a connection that joined no namespace within the connect timeout")
            observer.current.connection_error("connect_timeout")
            self._spawn(connection.session.close(CloseReason.FORCED, ws_code=1008, detail="Connect timeout."))

    async def on_message(self, session: EngineSession, data: str | bytes) -> None:
        connection: Connection = session.attachment
        try:
            packet = connection.decoder.feed(data)
        except ProtocolError as error:
            await self._reject_packet(connection, error)
            return
        if packet is None:
            return
        kind = packet.type
        if kind is PacketType.CONNECT:
            await self._connect(connection, packet)
            return
        socket = connection.sockets.get(packet.namespace)
        if socket is None:
            await self._send_connect_error(
                connection, packet.namespace, SocketIOError("Not connected to this namespace.", code="not_connected")
            )
        elif kind in (PacketType.EVENT, PacketType.BINARY_EVENT):
            observer.current.message_received(packet.data[0], len(data))
            limit = self.options.max_pending_events
            if limit and socket.pending_events >= limit:
                await self._refuse_event(socket, packet, TooManyPendingEvents())
                return
            socket.pending_events += 1
            self._spawn(self._handle_event(socket, packet))
        elif kind in (PacketType.ACK, PacketType.BINARY_ACK):
            assert packet.id is not None
            socket.resolve_ack(packet.id, packet.data)
        elif kind is PacketType.DISCONNECT:
            self._spawn(self.disconnect_socket(socket, "client namespace disconnect", notify=False))
        else:
            await self._reject_packet(connection, ProtocolError("Clients may not send CONNECT_ERROR."))

    async def on_close(self, session: EngineSession, reason: str) -> None:
        connection: Connection | None = session.attachment
        if connection is None:
            return
        connection.cancel_connect_timer()
        for socket in list(connection.sockets.values()):
            await self.disconnect_socket(socket, reason, notify=False)

    # --- connect / disconnect -----------------------------------------------------------

    async def _connect(self, connection: Connection, packet: Packet) -> None:
        """Register the socket now, run the connect handler in its own task.

        Registering first means events the client sends right behind its
        CONNECT queue on the socket's lock and run once it is connected.
        """
        name = packet.namespace
        namespace = self.namespaces.get(name)
        if namespace is None:
            observer.current.connection_error("invalid_namespace")
            await self._send_connect_error(connection, name, InvalidNamespace())
            return
        if name in connection.sockets:
            await self._send_connect_error(connection, name, ConnectionRefused("Already connected to this namespace."))
            return
        socket = Socket(self, connection, name, packet.data)
        connection.sockets[name] = socket
        self._spawn(self._run_connect_handler(namespace, socket))

    async def _run_connect_handler(self, namespace: Namespace, socket: Socket) -> None:
        connection, name = socket.connection, socket.namespace
        async with socket.lock:
            try:
                if namespace.connect_handler is not None:
                    await namespace.connect_handler(socket, socket.auth)
            except SocketIOError as error:
                observer.current.connection_error(error.code)
                connection.sockets.pop(name, None)
                socket.mark_gone()
                await self._send_connect_error(connection, name, error)
                return
            except Exception:
                connection.sockets.pop(name, None)
                socket.mark_gone()
                logger.exception("connect handler failed")
                observer.current.connection_error("internal")
                refusal = ConnectionRefused("Internal server error.", code="internal")
                await self._send_connect_error(connection, name, refusal)
                return
            if connection.session.closed or connection.sockets.get(name) is not socket:
                # The client left while its connect handler ran: whatever the
                # handler took (a connection slot, say) is given back.
                connection.sockets.pop(name, None)
                socket.mark_gone()
                await self._run_disconnect_handler(namespace, socket, CloseReason.TRANSPORT_CLOSE)
                return
            connection.cancel_connect_timer()
            connection.session.establish()
            await socket.join(socket_room(socket.id))
            await socket.join(NAMESPACE_ROOM)
            await socket.mark_connected(encode(Packet(PacketType.CONNECT, name, {"sid": socket.id})))

    async def disconnect_socket(self, socket: Socket, reason: str, *, notify: bool) -> None:
        """Take a socket out of its namespace; its disconnect handler runs once."""
        connection = socket.connection
        if connection.sockets.get(socket.namespace) is not socket:
            return
        del connection.sockets[socket.namespace]
        was_connected = socket.connected
        if notify and was_connected:
            await socket.send_packet(Packet(PacketType.DISCONNECT, socket.namespace))
        socket.mark_gone()
        socket.fail_pending_acks()
        await socket.leave_all()
        namespace = self.namespaces.get(socket.namespace)
        if was_connected and namespace is not None:
            await self._run_disconnect_handler(namespace, socket, reason)

    async def _run_disconnect_handler(self, namespace: Namespace, socket: Socket, reason: str) -> None:
        if namespace.disconnect_handler is None:
            return
        try:
            await namespace.disconnect_handler(socket, reason)
        except Exception:
            logger.exception("disconnect handler failed")

    # --- events -------------------------------------------------------------------------

    async def _refuse_event(self, socket: Socket, packet: Packet, error: SocketIOError) -> None:
        """Answer an event with an error without handling it (nothing to answer without an ack id)."""
        observer.current.event_failed(packet.data[0], internal=False)
        if packet.id is not None:
            ack = Packet(PacketType.ACK, socket.namespace, [{"ok": False, **error.as_payload()}], packet.id)
            await socket.send_packet(ack)

    async def _handle_event(self, socket: Socket, packet: Packet) -> None:
        try:
            await self._handle_event_in_turn(socket, packet)
        finally:
            socket.pending_events -= 1

    async def _handle_event_in_turn(self, socket: Socket, packet: Packet) -> None:
        event, args = packet.data[0], packet.data[1:]
        observer.current.event_handling()
        namespace = self.namespaces[socket.namespace]
        async with socket.lock:
            if not socket.connected:
                return
            try:
                call = namespace.bind(event, socket, args)
                if call is None:
                    raise SocketIOError(f"Unknown event {event[:64]!r}.", code="unknown_event")
                result = await call()
            except SocketIOError as error:
                observer.current.event_failed(event, internal=False)
                if packet.id is None:
                    logger.info("event failed without an ack to report it: %s", error.code)
                    return
                result = {"ok": False, **error.as_payload()}
            except Exception:
                logger.exception("handler for an event failed")
                observer.current.event_failed(event, internal=True)
                if packet.id is None:
                    return
                result = {"ok": False, **SocketIOError().as_payload()}
            if packet.id is not None:
                ack_args = list(result) if isinstance(result, tuple) else ([] if result is None else [result])
                await socket.send_packet(Packet(PacketType.ACK, socket.namespace, ack_args, packet.id))

    # --- notices ------------------------------------------------------------------------

    def notice_socket(self, socket: Socket, data: Any) -> None:
        """A server-side notice for a socket: its handler runs in its own task, like an event, so it waits
        for the event being handled (never blocking the fan-out) and the next event waits for it."""
        self._spawn(self._handle_notice(socket, data))

    async def _handle_notice(self, socket: Socket, data: Any) -> None:
        namespace = self.namespaces.get(socket.namespace)
        if namespace is None or namespace.notice_handler is None:
            return
        async with socket.lock:
            if not socket.connected:
                return
            try:
                await namespace.notice_handler(socket, data)
            except Exception:
                logger.exception("notice handler failed")

    # --- errors -------------------------------------------------------------------------

    async def _send_connect_error(self, connection: Connection, namespace: str, error: SocketIOError) -> None:
        data: dict[str, Any] = {"message": error.message}
        if self.options.connect_error_data:
            data["data"] = {"code": error.code, **error.details}
        await connection.session.send_many(encode(Packet(PacketType.CONNECT_ERROR, namespace, data)))

    async def _reject_packet(self, connection: Connection, error: ProtocolError) -> None:
        """A malformed packet: tell the client why, then close its connection.

        The reference server closes the connection too; the reason is
        sent first as ``CONNECT_ERROR`` so the client sees a clear message.
        """
        logger.info("closing a connection after a malformed packet: %s", error.code)
        observer.current.connection_error(error.code)
        namespaces = list(connection.sockets) or ["/"]
        for namespace in namespaces:
            await self._send_connect_error(connection, namespace, error)
        await connection.session.close(CloseReason.PARSE_ERROR, ws_code=1002, detail=error.message)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
