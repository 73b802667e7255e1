"""An Engine.IO session's outgoing queue: sending never waits for the client, the bounds close it, a close flushes first."""

from __future__ import annotations

import asyncio

from channels_socketio import observer
from channels_socketio.transport.session import SLOW_CLIENT_CLOSE, CloseReason, EngineOptions, EngineSession


class Handler:
    def __init__(self) -> None:
        self.closed: list[str] = []

    async def on_open(self, session: EngineSession) -> None:
        pass

    async def on_message(self, session: EngineSession, data: str | bytes) -> None:
        pass

    async def on_close(self, session: EngineSession, reason: str) -> None:
        self.closed.append(reason)


class StalledWebSocket:
    """A WebSocket whose writes wait until :attr:`reading` is set, as a transport a client does not drain."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.written: list[str | bytes] = []
        self.close_codes: list[int] = []

    async def write(self, frame: str | bytes) -> None:
        await self.reading.wait()
        self.written.append(frame)

    async def close(self, code: int, reason: str) -> None:
        self.close_codes.append(code)


class Counting(observer.Observer):
    def __init__(self) -> None:
        self.slow: list[str] = []
        self.dropped: dict[str, int] = {}

    def slow_client_disconnected(self, transport: str) -> None:
        self.slow.append(transport)

    def messages_dropped(self, where: str, count: int) -> None:
        self.dropped[where] = self.dropped.get(where, 0) + count


def websocket_session(options: EngineOptions) -> tuple[EngineSession, StalledWebSocket, Handler]:
    handler, socket = Handler(), StalledWebSocket()
    session = EngineSession(
        sid="s", scope={}, transport="websocket", options=options, handler=handler, on_closed=lambda _: None
    )
    session.attach_websocket(socket.write, socket.close)
    return session, socket, handler


async def test_sending_never_waits_and_a_client_past_the_bound_is_closed_with_1008():
    counting, previous = Counting(), observer.current
    observer.install(counting)
    try:
        session, socket, handler = websocket_session(EngineOptions(max_buffered_packets=5))
        async with asyncio.timeout(1):  # nothing here may wait for the stalled client
            for index in range(5):
                await session.send_many([f"message {index}"])
            assert session.queued_frames == 5 and not session.closed
            await session.send_many(["one too many"])
        await asyncio.sleep(0.01)
        assert session.closed and handler.closed == [CloseReason.SLOW_CLIENT]
        assert socket.close_codes == [SLOW_CLIENT_CLOSE]
        assert socket.written == []
        assert counting.slow == ["websocket"] and counting.dropped == {"slow_client": 6}
    finally:
        observer.install(previous)


async def test_the_byte_bound_counts_too():
    session, socket, handler = websocket_session(EngineOptions(max_buffered_bytes=1000))
    await session.send_many(["x" * 600])
    await session.send_many(["y" * 600])
    await asyncio.sleep(0.01)
    assert handler.closed == [CloseReason.SLOW_CLIENT]


async def test_a_close_writes_what_was_queued_before_it_first():
    session, socket, handler = websocket_session(EngineOptions())
    await session.send_many(["last words", b"\x01"])
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, socket.reading.set)  # the client reads again
    await session.close(CloseReason.FORCED, ws_code=1008)
    assert socket.written == ["4last words", b"\x01"]
    assert socket.close_codes == [1008]


async def test_polling_past_the_bound_is_closed_as_slow():
    handler = Handler()
    options = EngineOptions(max_buffered_packets=3)
    session = EngineSession(
        sid="p", scope={}, transport="polling", options=options, handler=handler, on_closed=lambda _: None
    )
    for index in range(4):
        await session.send(f"m{index}")
    await asyncio.sleep(0.01)
    assert handler.closed == [CloseReason.SLOW_CLIENT]
