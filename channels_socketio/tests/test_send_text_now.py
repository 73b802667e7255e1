"""CorkedWebSocketProtocol's SEND_TEXT_NOW: the same frames as the ASGI path, once per text, declined when order or state need the ASGI path.

The protocol is uvicorn's own, driven here through a recording transport by
an ASGI app that accepts and then does what each test asks.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, Callable, Iterator

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode

from channels_socketio.transport.uvicorn_websocket import SEND_TEXT_NOW, CorkedWebSocketProtocol, TextFrames

KEY = base64.b64encode(b"0123456789abcdef").decode()
UPGRADE = (
    "GET /engine.io/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += data

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.written += chunk

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def text_frame(text: str) -> bytes:
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])


@pytest.fixture
def connect() -> Iterator[Callable[[Any], tuple[CorkedWebSocketProtocol, RecordingTransport, asyncio.AbstractEventLoop]]]:
    """Upgrade a connection to ``app`` on a loop of its own: (protocol, transport, loop)."""
    loops: list[asyncio.AbstractEventLoop] = []

    def upgrade(app: Any) -> tuple[CorkedWebSocketProtocol, RecordingTransport, asyncio.AbstractEventLoop]:
        loop = asyncio.new_event_loop()
        loops.append(loop)
        config = Config(app=app, ws="websockets-sansio", lifespan="off", ws_per_message_deflate=False)
        config.load()
        protocol = CorkedWebSocketProtocol(config=config, server_state=ServerState(), app_state={}, _loop=loop)
        transport = RecordingTransport()
        protocol.connection_made(transport)
        protocol.data_received(UPGRADE)
        return protocol, transport, loop

    yield upgrade
    for loop in loops:
        loop.close()


def run(loop: asyncio.AbstractEventLoop, ticks: int = 5) -> None:
    for _ in range(ticks):
        loop.run_until_complete(asyncio.sleep(0))


def after_handshake(transport: RecordingTransport) -> bytes:
    head, _, rest = bytes(transport.written).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return rest


def test_texts_written_now_are_the_frames_the_asgi_path_writes(connect) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        now = scope["extensions"][SEND_TEXT_NOW]["send"]
        broadcast = "4" + "x" * 200  # one str object, as for a broadcast's recipients
        seen["results"] = [now(broadcast), now(broadcast), now("4" + "y" * 70_000)]
        await send({"type": "websocket.send", "text": "after"})

    protocol, transport, loop = connect(app)
    run(loop)
    assert seen["results"] == [True, True, True]
    assert after_handshake(transport) == (
        text_frame("4" + "x" * 200) * 2 + text_frame("4" + "y" * 70_000) + text_frame("after")
    )


def test_declined_while_an_ordinary_send_waits_so_frames_keep_their_order(connect) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        now = scope["extensions"][SEND_TEXT_NOW]["send"]
        protocol.pause_writing()  # the transport's buffer is full
        waiting = asyncio.ensure_future(send({"type": "websocket.send", "text": "first"}))
        await asyncio.sleep(0)
        seen["while_paused"] = now("second")
        protocol.resume_writing()
        seen["while_the_first_is_due"] = now("second")
        await waiting
        seen["after"] = now("third")

    protocol, transport, loop = connect(app)
    run(loop, 10)
    assert seen == {"while_paused": False, "while_the_first_is_due": False, "after": True}
    assert after_handshake(transport) == text_frame("first") + text_frame("third")


@pytest.mark.parametrize("moment", ["before accept", "after close"])
def test_declined_outside_an_open_connection(connect, moment: str) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        now = scope["extensions"][SEND_TEXT_NOW]["send"]
        if moment == "before accept":
            seen["result"] = now("early")
            await send({"type": "websocket.accept"})
        else:
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})
            seen["result"] = now("late")

    protocol, transport, loop = connect(app)
    run(loop)
    assert seen["result"] is False
    assert b"early" not in transport.written and b"late" not in transport.written


def test_a_text_is_framed_once_while_it_is_the_last() -> None:
    frames = TextFrames()
    text = "4" + "z" * 10
    first = frames.frame(text)
    assert first == text_frame(text)
    assert frames.frame(text) is first
    other = frames.frame("4other")
    assert other == text_frame("4other")
    assert frames.frame("4" + "z" * 10) == first  # an equal str made anew is framed anew, equally
