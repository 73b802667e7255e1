"""A Socket.IO client over a raw WebSocket that stops reading when told, yet keeps answering pings.

It is what a stalled or hostile client looks like to the server: its
receive buffer is tiny, it reads nothing after :meth:`SlowClient.stop_reading`,
and it writes a pong every 100 ms so the heartbeat never closes it.  Only
the server's bound on unread messages can.  :meth:`close_code` reads
everything the server sent afterwards and returns the code of its close frame.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any
from urllib.parse import urlencode, urlsplit

#: The client's receive buffer: the kernel holds next to nothing for it.
RECEIVE_BUFFER = 4096
PONG_EVERY_S = 0.1


def masked_frame(text: str, opcode: int = 0x1) -> bytes:
    """A client's frame: FIN, the opcode, a masked payload."""
    payload = text.encode()
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


def next_frame(data: bytes) -> tuple[int, bytes, bytes] | None:
    """The first complete unmasked frame of ``data`` as (opcode, payload, what follows), or None."""
    if len(data) < 2:
        return None
    opcode, length, offset = data[0] & 0x0F, data[1] & 0x7F, 2
    if length == 126:
        if len(data) < 4:
            return None
        (length,), offset = struct.unpack("!H", data[2:4]), 4
    elif length == 127:
        if len(data) < 10:
            return None
        (length,), offset = struct.unpack("!Q", data[2:10]), 10
    if len(data) < offset + length:
        return None
    return opcode, data[offset : offset + length], data[offset + length :]


class SlowClient:
    def __init__(self, url: str, path: str = "/socket.io/") -> None:
        self.url = urlsplit(url)
        self.path = path
        self.sock: socket.socket | None = None
        self._pending = b""
        self._ponger: asyncio.Task[None] | None = None

    async def connect(self, auth: dict[str, Any] | None = None, **query: str) -> None:
        """Open the WebSocket and connect to the main namespace (with ``auth``)."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.setblocking(False)
        await loop.sock_connect(sock, (self.url.hostname, self.url.port))
        self.sock = sock
        key = base64.b64encode(os.urandom(16)).decode()
        params = urlencode({"EIO": "4", "transport": "websocket", **query})
        request = (
            f"GET {self.path}?{params} HTTP/1.1\r\nHost: {self.url.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        while b"\r\n\r\n" not in self._pending:
            self._pending += await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
        head, self._pending = self._pending.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        await self.wait_for_text(lambda text: text.startswith("0{"))
        await self.send_text("40" + (json.dumps(auth) if auth is not None else ""))
        await self.wait_for_text(lambda text: text.startswith("40"))

    async def send_text(self, text: str) -> None:
        assert self.sock is not None
        await asyncio.get_running_loop().sock_sendall(self.sock, masked_frame(text))

    async def call(self, event: str, *args: Any, ack_id: int = 1) -> str:
        """Emit ``event`` with an ack and return the raw ACK packet (reading until it comes)."""
        await self.send_text(f"42{ack_id}" + json.dumps([event, *args]))
        return await self.wait_for_text(lambda text: text.startswith(f"43{ack_id}"))

    async def wait_for_text(self, wanted: Any, timeout: float = 5.0) -> str:
        """Read until a text frame for which ``wanted(text)`` holds; answer pings meanwhile."""
        async with asyncio.timeout(timeout):
            while True:
                opcode, payload = await self._next_frame()
                if opcode != 0x1:
                    continue
                text = payload.decode()
                if text == "2":
                    await self.send_text("3")
                if wanted(text):
                    return text

    async def _next_frame(self) -> tuple[int, bytes]:
        assert self.sock is not None
        while (frame := next_frame(self._pending)) is None:
            chunk = await asyncio.get_running_loop().sock_recv(self.sock, 1 << 20)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._pending += chunk
        opcode, payload, self._pending = frame
        return opcode, payload

    def stop_reading(self) -> None:
        """From now on nothing is read; a pong is written every 100 ms so the heartbeat never closes us."""
        self._ponger = asyncio.get_running_loop().create_task(self._pong_forever())

    async def _pong_forever(self) -> None:
        try:
            while True:
                await asyncio.sleep(PONG_EVERY_S)
                await self.send_text("3")
        except (OSError, ConnectionError):
            pass  # the server is gone: nothing more to keep alive

    async def close_code(self, timeout: float = 10.0) -> int | None:
        """Read everything the server sent, until its close frame: the close code, or None if it just hung up."""
        if self._ponger is not None:
            self._ponger.cancel()
        async with asyncio.timeout(timeout):
            while True:
                try:
                    opcode, payload = await self._next_frame()
                except ConnectionError:
                    return None
                if opcode == 0x8:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    def close(self) -> None:
        if self._ponger is not None:
            self._ponger.cancel()
        if self.sock is not None:
            self.sock.close()

