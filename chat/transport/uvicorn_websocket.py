"""uvicorn's WebSocket protocol with corked writes: what one loop iteration writes to a socket leaves in one system call.

Layer: transport (a server adapter; daphne and the other uvicorn protocols
work without it).  Use it with ``uvicorn --ws
chat.transport.uvicorn_websocket:CorkedWebSocketProtocol``.

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
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CorkedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol, writing through a :class:`CorkedTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(CorkedTransport(transport, self.loop))  # type: ignore[arg-type]
