"""uvicorn's WebSocket protocol with corked writes and broadcasts framed once.

Layer: transport (a server adapter; daphne and the other uvicorn protocols
work without it).  Use it with ``uvicorn --ws
channels_socketio.transport.uvicorn_websocket:CorkedWebSocketProtocol``.

A broadcast is encoded once, but every recipient still costs a ``send()``
system call, and on this machine that call was the largest single item of
the server's profile (16 % of its CPU at 1,000 messages/s, most of it the
kernel delivering over loopback).  Under load the writer announces a whole
batch of messages in one pass, and a sender's ack and confirmation leave
together, so a socket is often written several times in one iteration of
the event loop.  Holding those frames until the iteration ends and handing
them to the kernel together (as Node's ``socket.cork()`` does) turns N
system calls into one; a frame waits at most until the loop next runs its
ready callbacks.

A broadcast's frame is also the same bytes for every recipient (a server
does not mask its frames), yet the ASGI path frames it again for each one,
through three coroutines.  The protocol therefore offers the application
an ASGI extension, :data:`SEND_TEXT_NOW`: a plain function that writes a
text frame at once, framing each distinct ``str`` object only once, so a
broadcast's recipients after the first cost a dictionary-free identity
check and a list append.  It declines (returns ``False``) whenever the
ordinary path must be taken instead: before the handshake completes, after
a close, with an extension such as per-message deflate, or while an
ordinary send is waiting for the transport to drain (so frames keep their
order).

Closing is the other write that must not wait: uvicorn's ``websocket.close``
waits, like any send, until the transport drains, which a client that
stopped reading never lets it do.  :data:`CLOSE_NOW` writes the close frame
at once behind what is buffered and aborts the connection if the client has
not answered it within uvicorn's close timeout.

With ``--no-access-log`` the protocol also keeps uvicorn's per-connection
lines out of the log: uvicorn writes every WebSocket handshake (with its
path and query string) and "connection open" / "connection closed" to its
*error* logger at INFO, whatever the access log setting.  Those are access
log lines; warnings and errors still reach ``uvicorn.error``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

#: ``scope["extensions"][SEND_TEXT_NOW]["send"](text) -> bool``: write ``text``
#: as one text frame now, or return ``False`` to have it sent with ``websocket.send``.
SEND_TEXT_NOW = "channels_socketio.send_text_now"
#: ``scope["extensions"][CLOSE_NOW]["close"](code, reason) -> bool``: send the close frame now, even
#: while the transport is paused; ``False``: close with ``websocket.close``.
CLOSE_NOW = "channels_socketio.close_now"


class CorkedTransport:
    """A transport whose writes are gathered and passed on once per loop iteration."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._corked: list[bytes] = []
        self._corked_size = 0

    def write(self, data: bytes) -> None:
        if not self._corked:
            self._loop.call_soon(self.uncork)
        self._corked.append(data)
        self._corked_size += len(data)

    def writelines(self, chunks: Any) -> None:
        for data in chunks:
            self.write(data)

    def uncork(self) -> None:
        """Hand what was written to the real transport (a no-op when nothing waits)."""
        if not self._corked:
            return
        chunks, self._corked, self._corked_size = self._corked, [], 0
        if not self._transport.is_closing():
            self._transport.writelines(chunks)

    def get_write_buffer_size(self) -> int:
        return self._corked_size + self._transport.get_write_buffer_size()

    def close(self) -> None:
        self.uncork()  # a close frame written just before must still go out
        self._transport.close()

    def abort(self) -> None:
        self._corked, self._corked_size = [], 0
        self._transport.abort()

    # uvicorn pauses and resumes reading around every message it receives: spelled out, not looked up.
    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class TextFrames:
    """The last text framed, with its frame: a broadcast's recipients are written one after another."""

    def __init__(self) -> None:
        self._text = ""
        self._frame = Frame(Opcode.TEXT, b"").serialize(mask=False, extensions=[])

    def frame(self, text: str) -> bytes:
        if text is not self._text:
            self._text, self._frame = text, Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
        return self._frame


_text_frames = TextFrames()


class WarningsOnly(logging.LoggerAdapter):
    """``uvicorn.error`` for warnings and errors only: what a connection logs with the access log off."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})

    @property
    def level(self) -> int:  # uvicorn reads it to decide on its TRACE lines
        return max(self.logger.level, logging.WARNING)

    def isEnabledFor(self, level: int) -> bool:
        return level >= logging.WARNING and self.logger.isEnabledFor(level)


class CorkedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol, writing through a :class:`CorkedTransport`, offering :data:`SEND_TEXT_NOW`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sends_waiting = 0
        if not self.config.access_log:
            # The protocol's own lines, and those of websockets' state machine (which logs through it).
            self.logger = self.conn.logger = WarningsOnly(self.logger)  # type: ignore[assignment]
            self.conn.debug = self.conn.logger.isEnabledFor(logging.DEBUG)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(CorkedTransport(transport, self.loop))  # type: ignore[arg-type]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if not self.close_sent:
            self.scope["extensions"][SEND_TEXT_NOW] = {"send": self.send_text_now}  # type: ignore[index]
            self.scope["extensions"][CLOSE_NOW] = {"close": self.close_now}  # type: ignore[index]

    def send_text_now(self, text: str) -> bool:
        if (
            self._sends_waiting
            or not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.conn.state is not State.OPEN
            or self.conn.extensions
            or not self.writable.is_set()
        ):
            return False
        self.transport.write(_text_frames.frame(text))
        return True

    def close_now(self, code: int, reason: str) -> bool:
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.conn.state is not State.OPEN
            or self.transport.is_closing()
        ):
            return False
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        # transport.close() would wait for the buffer to drain, which a client that does not read never does.
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)
        return True

    async def send(self, message: Any) -> None:
        # Counted while suspended (waiting for the transport to drain), so
        # that send_text_now cannot overtake a frame sent before it.
        self._sends_waiting += 1
        try:
            await super().send(message)
        finally:
            self._sends_waiting -= 1
