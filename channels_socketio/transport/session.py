"""One Engine.IO connection, whichever transport currently carries it.

Layer: transport.  Spec: https://socket.io/docs/v4/engine-io-protocol/

An :class:`EngineSession` outlives the HTTP requests and WebSocket that carry
it: long-polling GETs drain its outbox, POSTs feed it packets, and an upgrade
moves it onto a WebSocket without losing anything queued.  The layer above
attaches through :class:`EngineHandler` (open, message, close), exactly as
python-engineio does, and never sees which transport is in use.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol

from channels_socketio import observer
from channels_socketio.errors import BadRequest, ProtocolError
from channels_socketio.wire.engine_packets import Packet, PacketType

logger = logging.getLogger(__name__)

WebSocketWriter = Callable[[str | bytes], Awaitable[None]]
#: Writes a text frame at once and says so, or declines (False): see :meth:`EngineSession.send_now`.
WebSocketWriterNow = Callable[[str], bool]

#: The last message's Engine.IO text: a broadcast's recipients share one
#: ``str`` (which the server can then frame once), not a copy each.
_last_message: tuple[str, str] = ("", "4")


def _message_text(data: str) -> str:
    global _last_message
    if _last_message[0] is not data:
        _last_message = (data, "4" + data)
    return _last_message[1]
WebSocketCloser = Callable[[int, str], Awaitable[None]]


#: python-engineio's client refuses a polling payload of more than 16 packets
#: (``Payload.max_decode_packets``), so no response carries more.
MAX_PACKETS_PER_POLL = 16
#: How long a closed polling session keeps what it queued for a GET to fetch.
CLOSED_SESSION_GRACE_S = 5.0
#: The WebSocket close code of a client disconnected for not reading (policy violation).
SLOW_CLIENT_CLOSE = 1008
#: How long closing a WebSocket may wait for a server that only accepts it once the client reads.
WS_CLOSE_TIMEOUT_S = 10.0
#: How long a close waits for what was queued before it to be written.
WS_FLUSH_TIMEOUT_S = 5.0


class CloseReason:
    """The reasons Socket.IO reports to disconnect handlers."""

    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"
    PING_TIMEOUT = "ping timeout"
    PARSE_ERROR = "parse error"
    FORCED = "forced close"
    #: The client left more unread than ``EngineOptions.max_buffered_packets`` / ``max_buffered_bytes``.
    SLOW_CLIENT = "slow client"
    SHUTDOWN = "server shutting down"


#: Closes after which nothing queued is worth waiting for: the client is gone or not reading.
_NOBODY_READS = frozenset(
    {CloseReason.TRANSPORT_CLOSE, CloseReason.TRANSPORT_ERROR, CloseReason.PING_TIMEOUT, CloseReason.SLOW_CLIENT}
)


@dataclass(frozen=True)
class EngineOptions:
    ping_interval_ms: int = 25_000
    ping_timeout_ms: int = 20_000
    max_payload: int = 1_000_000
    #: Most packets one polling POST may carry: each may become a handler's
    #: task, and a 1 MB body can hold half a million tiny ones.  A client
    #: batches what it buffered since its last POST; past this the session
    #: is closed (``too_many_packets``).
    max_packets_per_post: int = 500
    #: Most sessions one client address may hold on this worker that the
    #: layer above has not established yet (:meth:`EngineSession.establish`:
    #: for Socket.IO, no namespace connected, so nobody authenticated); a
    #: handshake beyond it is refused (``too_many_sessions``).  0: no limit.
    max_pending_sessions_per_address: int = 0
    #: Upper bound on what may wait for a client that does not read (a polling
    #: client that does not poll, a WebSocket whose transport takes no more),
    #: in bytes and in messages; past either the session is closed
    #: (:attr:`CloseReason.SLOW_CLIENT`) rather than letting memory grow or
    #: making anyone wait for it.
    max_buffered_bytes: int = 4_000_000
    max_buffered_packets: int = 1_000

    def handshake(self, sid: str, upgrades: list[str]) -> dict[str, Any]:
        return {
            "sid": sid,
            "upgrades": upgrades,
            "pingInterval": self.ping_interval_ms,
            "pingTimeout": self.ping_timeout_ms,
            "maxPayload": self.max_payload,
        }


class EngineHandler(Protocol):
    """What the layer above provides: three callbacks, nothing else."""

    async def on_open(self, session: EngineSession) -> None: ...

    async def on_message(self, session: EngineSession, data: str | bytes) -> None: ...

    async def on_close(self, session: EngineSession, reason: str) -> None: ...


class EngineSession:
    """State of one Engine.IO connection and its heartbeat."""

    def __init__(
        self,
        *,
        sid: str,
        scope: dict[str, Any],
        transport: str,
        options: EngineOptions,
        handler: EngineHandler,
        on_closed: Callable[[EngineSession], None],
        on_established: Callable[[EngineSession], None] | None = None,
    ) -> None:
        self.sid = sid
        self.scope = scope
        self.transport = transport
        self.options = options
        self.handler = handler
        self.closed = False
        self._forgotten = False
        self.upgrading = False
        #: Free for the layer above (the Socket.IO connection object).
        self.attachment: Any = None
        self._on_closed = on_closed
        self._on_established = on_established
        #: Whether the layer above accepted this session (:meth:`establish`).
        self.established = False
        self._outbox: list[Packet] = []
        self._outbox_bytes = 0
        self._poll_waiter: asyncio.Future[None] | None = None
        self._posting = False
        self._ws_write: WebSocketWriter | None = None
        self._ws_write_now: WebSocketWriterNow | None = None
        self._ws_close: WebSocketCloser | None = None
        #: What waits for the WebSocket, written in order by one task (:meth:`_write_queued`).
        self._ws_queue: deque[str | bytes] = deque()
        self._ws_queued_bytes = 0
        self._ws_writer: asyncio.Task[None] | None = None
        #: Set once the client is found too slow: nothing more is queued for it.
        self._gave_up = False
        self._loop = asyncio.get_running_loop()
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.opened_at = observer.current.connection_opened(transport)

    # --- lifecycle -----------------------------------------------------------

    def establish(self) -> None:
        """The layer above accepted the session (Socket.IO: a namespace connected); it stops counting as pending."""
        if not self.established:
            self.established = True
            if self._on_established is not None:
                self._on_established(self)

    async def open(self) -> None:
        """Tell the layer above the session exists and start the heartbeat."""
        self._schedule_ping()
        await self.handler.on_open(self)

    async def close(
        self, reason: str = CloseReason.FORCED, *, ws_code: int = 1000, detail: str = "", drain: bool | None = None
    ) -> None:
        """Close once; the layer above hears about it exactly once.

        ``detail`` is a sentence for the client, sent as the WebSocket close
        reason; it must never contain secrets or message content.

        A polling session the client closed itself (a close packet) is gone
        at once: a GET still waiting is answered with a noop, as the
        reference server does, and the next request gets 400.  Otherwise a
        close packet is queued.  ``drain`` says whether the client may still
        fetch it, with what was queued before it, for a grace period; by
        default only when the server closes with something to say (a
        ``CONNECT_ERROR``), not when the client is gone or broke the protocol.
        """
        if self.closed:
            return
        self.closed = True
        self._cancel_timers()
        observer.current.connection_closed(self.transport, reason, self.opened_at)
        if self.transport == "websocket" and self._ws_close is not None:
            self._forget()
            if reason not in _NOBODY_READS:
                await self._flush_ws_queue()  # what was sent before the close (a CONNECT_ERROR, say) goes first
            self._drop_ws_queue()
            try:
                await asyncio.wait_for(self._ws_close(ws_code, detail), WS_CLOSE_TIMEOUT_S)
            except Exception:  # the peer may already be gone, or not reading
                logger.debug("websocket close failed", exc_info=True)
        elif reason == CloseReason.TRANSPORT_CLOSE:
            self._outbox = [Packet(PacketType.NOOP)] if self._poll_waiter is not None else []
            self._outbox_bytes = 0
            self._forget()
            self._wake_poller()
        else:
            self._outbox.append(Packet(PacketType.CLOSE))
            if drain is None:
                drain = reason not in (CloseReason.PING_TIMEOUT, CloseReason.TRANSPORT_ERROR)
            if drain:
                self._loop.call_later(CLOSED_SESSION_GRACE_S, self._forget)
            else:
                self._forget()  # nobody will read more than a GET already waiting takes
            self._wake_poller()
        try:
            await self.handler.on_close(self, reason)
        except Exception:
            logger.exception("close handler failed")

    # --- sending ---------------------------------------------------------------
    #
    # Nothing here waits for the client: a WebSocket frame is written at once
    # where the transport takes it, or queued for this session's writer task;
    # a polling packet waits in the outbox for a GET.  A client that leaves
    # more unread than the options allow is disconnected (:meth:`_too_slow`),
    # so a broadcast never waits for its slowest recipient.

    async def send(self, data: str | bytes) -> None:
        """Send one Engine.IO message to the client."""
        await self._send_packet(Packet(PacketType.MESSAGE, data))

    def send_now(self, messages: list[str | bytes]) -> bool:
        """Send one text message without awaiting, where the WebSocket can take it at once.

        A broadcast reaches most of its recipients this way, without a
        coroutine per recipient.  False: nothing was sent; use :meth:`send_many`.
        """
        if (
            self._ws_write_now is None
            or len(messages) != 1
            or not isinstance(messages[0], str)
            or self.upgrading
            or self.closed
            or self._ws_queue
            or self._ws_writer is not None
        ):
            return False
        return self._write_now(_message_text(messages[0]))

    async def send_many(self, messages: list[str | bytes]) -> None:
        """Send several messages that must stay together (a binary packet)."""
        if self._on_websocket():
            for data in messages:
                self._queue_frame(data if isinstance(data, bytes) else _message_text(data))
            return
        for data in messages:
            await self._send_packet(Packet(PacketType.MESSAGE, data))

    async def _send_packet(self, packet: Packet) -> None:
        if self.closed or self._gave_up:
            return
        if self._on_websocket():
            data = packet.data
            self._queue_frame(data if isinstance(data, bytes) else f"{int(packet.type)}{data}")
            return
        self._outbox.append(packet)
        self._outbox_bytes += len(packet.data)
        if len(self._outbox) > self.options.max_buffered_packets or self._outbox_bytes > self.options.max_buffered_bytes:
            self._too_slow(len(self._outbox))
            return
        self._wake_poller()

    def _on_websocket(self) -> bool:
        return self.transport == "websocket" and self._ws_write is not None and not self.upgrading

    def _write_now(self, text: str) -> bool:
        try:
            return self._ws_write_now is not None and self._ws_write_now(text)
        except Exception:  # the writer task meets it again, and closes the session
            return False

    def _queue_frame(self, frame: str | bytes) -> None:
        """Write a frame at once if nothing waits before it and the transport takes it; otherwise queue it."""
        if self.closed or self._gave_up:
            return
        if not self._ws_queue and self._ws_writer is None and isinstance(frame, str) and self._write_now(frame):
            return
        self._ws_queue.append(frame)
        self._ws_queued_bytes += len(frame)
        if (
            len(self._ws_queue) > self.options.max_buffered_packets
            or self._ws_queued_bytes > self.options.max_buffered_bytes
        ):
            self._too_slow(len(self._ws_queue))
        elif self._ws_writer is None:
            self._ws_writer = self._loop.create_task(self._write_queued(), name="engine-ws-writer")

    async def _write_queued(self) -> None:
        """This session's writer: what was queued, in order, as fast as the client reads it."""
        assert self._ws_write is not None
        try:
            while self._ws_queue:
                frame = self._ws_queue.popleft()
                self._ws_queued_bytes -= len(frame)
                await self._ws_write(frame)
        except Exception:
            self._ws_writer = None
            await self.close(CloseReason.TRANSPORT_ERROR)
        finally:
            self._ws_writer = None

    async def _flush_ws_queue(self) -> None:
        """Let the writer finish what is queued, for a while."""
        writer = self._ws_writer
        if writer is not None and writer is not asyncio.current_task():
            await asyncio.wait([writer], timeout=WS_FLUSH_TIMEOUT_S)

    def _drop_ws_queue(self) -> None:
        writer, self._ws_writer = self._ws_writer, None
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()  # it may be waiting for a transport that never drains
        self._ws_queue.clear()
        self._ws_queued_bytes = 0

    def _too_slow(self, waiting: int) -> None:
        """The client left too much unread: drop it, and close the session in a task of its own."""
        self._gave_up = True
        logger.info("disconnecting a %s client that stopped reading (%d messages waiting)", self.transport, waiting)
        observer.current.slow_client_disconnected(self.transport)
        observer.current.messages_dropped("slow_client", waiting)
        self._drop_ws_queue()
        self._outbox, self._outbox_bytes = [], 0
        self._spawn(
            self.close(
                CloseReason.SLOW_CLIENT, ws_code=SLOW_CLIENT_CLOSE, detail="Too many unread messages.", drain=False
            )
        )

    def _spawn(self, coroutine: Any) -> None:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send_soon(self, packet: Packet) -> None:
        """Send from a timer callback, which cannot await."""
        self._spawn(self._send_packet(packet))

    # --- receiving -------------------------------------------------------------

    async def receive(self, packet: Packet) -> None:
        """Handle one packet from the client, whichever transport carried it."""
        if self.closed:
            return
        kind = packet.type
        if kind is PacketType.MESSAGE:
            await self.handler.on_message(self, packet.data)
        elif kind is PacketType.PONG:
            self._on_pong()
        elif kind is PacketType.PING:
            await self._send_packet(Packet(PacketType.PONG, packet.data))
        elif kind is PacketType.CLOSE:
            await self.close(CloseReason.TRANSPORT_CLOSE)
        elif kind is PacketType.NOOP:
            pass
        else:
            raise ProtocolError(f"Unexpected {kind.name.lower()} packet from the client.")

    # --- long-polling ------------------------------------------------------------

    async def poll(self) -> list[Packet]:
        """Wait for packets for a GET request and take up to :data:`MAX_PACKETS_PER_POLL`.

        Only one GET may wait at a time; a second one is an error that
        closes the session, as the reference server does.  What is left
        over answers the next GET at once.
        """
        if self._poll_waiter is not None:
            await self.close(CloseReason.TRANSPORT_ERROR)
            raise BadRequest("Overlapping polling requests.")
        if not self._outbox and not self.closed:
            waiter = self._loop.create_future()
            self._poll_waiter = waiter
            try:
                await waiter
            finally:
                self._poll_waiter = None
        packets, self._outbox = self._outbox[:MAX_PACKETS_PER_POLL], self._outbox[MAX_PACKETS_PER_POLL:]
        self._outbox_bytes -= sum(len(packet.data) for packet in packets)
        if self.closed and not self._outbox:
            self._forget()
        return packets

    @property
    def queued_packets(self) -> int:
        """Packets waiting for a polling GET."""
        return len(self._outbox)

    @property
    def queued_bytes(self) -> int:
        return self._outbox_bytes

    @property
    def queued_frames(self) -> int:
        """Frames waiting for the WebSocket to take them."""
        return len(self._ws_queue)

    @property
    def queued_frame_bytes(self) -> int:
        return self._ws_queued_bytes

    @property
    def draining(self) -> bool:
        """Closed, but a GET may still fetch what was queued before the close."""
        return self.closed and not self._forgotten and bool(self._outbox)

    def _forget(self) -> None:
        if not self._forgotten:
            self._forgotten = True
            self._on_closed(self)

    async def post(self, packets: list[Packet]) -> None:
        """Feed the packets of one POST request, in order."""
        if self._posting:
            await self.close(CloseReason.TRANSPORT_ERROR)
            raise BadRequest("Overlapping POST requests.")
        self._posting = True
        try:
            for packet in packets:
                if packet.type is PacketType.UPGRADE:
                    raise ProtocolError("Upgrade packet sent over polling.")
                await self.receive(packet)
        finally:
            self._posting = False

    def _wake_poller(self) -> None:
        if self._poll_waiter is not None and not self._poll_waiter.done():
            self._poll_waiter.set_result(None)

    # --- WebSocket ----------------------------------------------------------------

    def attach_websocket(
        self, write: WebSocketWriter, close: WebSocketCloser, write_now: WebSocketWriterNow | None = None
    ) -> None:
        """Carry this session on a WebSocket from the start (no polling)."""
        self.transport = "websocket"
        self._ws_write, self._ws_close, self._ws_write_now = write, close, write_now

    def begin_upgrade(self) -> None:
        """The probe succeeded: make the client's pending GET return so it can pause."""
        self.upgrading = True
        self._outbox.append(Packet(PacketType.NOOP))
        self._wake_poller()

    async def complete_upgrade(
        self, write: WebSocketWriter, close: WebSocketCloser, write_now: WebSocketWriterNow | None = None
    ) -> None:
        """Switch to the WebSocket and flush whatever polling had queued."""
        queued, self._outbox, self._outbox_bytes = self._outbox, [], 0
        self._wake_poller()
        self.attach_websocket(write, close, write_now)
        observer.current.connection_upgraded()
        self.upgrading = False
        for packet in queued:
            if packet.type is not PacketType.NOOP:
                await self._send_packet(packet)

    def abort_upgrade(self) -> None:
        self.upgrading = False

    # --- heartbeat --------------------------------------------------------------

    def _schedule_ping(self) -> None:
        self._ping_timer = self._loop.call_later(self.options.ping_interval_ms / 1000, self._ping)

    def _ping(self) -> None:
        if self.closed:
            return
        self._pong_timer = self._loop.call_later(self.options.ping_timeout_ms / 1000, self._on_ping_timeout)
        self._send_soon(Packet(PacketType.PING))

    def _on_pong(self) -> None:
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
            self._schedule_ping()

    def _on_ping_timeout(self) -> None:
        self._spawn(self.close(CloseReason.PING_TIMEOUT))

    def _cancel_timers(self) -> None:
        for timer in (self._ping_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_timer = None
