"""A client that stops reading cannot hold up anyone else's broadcasts, and is disconnected with 1008.

Against the conformance application under uvicorn as production runs it
(the corked protocol), with small bounds on what a client may leave unread.
Bystanders' latency is measured first with no slow client (the baseline),
then again, same traffic, with one in the room that reads nothing.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import socketio

from channels_socketio.tests.servers import Server
from channels_socketio.tests.slow_client import SlowClient
from channels_socketio.transport.session import SLOW_CLIENT_CLOSE

ROUNDS = 30
FLOOD_PER_ROUND = 10
FLOOD = "x" * 32_000
#: Bystanders may be this many times slower (median) than in the baseline; a blocked fan-out never delivers.
LATENCY_RATIO = 10


class Bystander:
    """A python-socketio client that timestamps every room message it receives."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.markers: dict[Any, float] = {}

        @self.sio.on("room-message")
        async def room_message(kind: str, value: Any = None) -> None:
            if kind == "marker":
                self.markers[value] = time.perf_counter()

    async def connect(self, url: str, room: str | None) -> None:
        await self.sio.connect(url, transports=["websocket"], wait_timeout=5)
        if room is not None:
            assert await self.sio.call("join", room, timeout=5) == "joined"


async def _rounds(sender: Bystander, here: Bystander, elsewhere: Bystander, phase: str) -> tuple[float, float]:
    """Floods of big broadcasts to room ``r1`` with a marker to ``r1`` and one to ``r2`` after each: median latencies."""
    same_room, other_room = [], []
    for round_ in range(ROUNDS):
        for _ in range(FLOOD_PER_ROUND):
            await sender.sio.emit("to-room", ("r1", "flood", FLOOD))
        key = f"{phase}-{round_}"
        sent = time.perf_counter()
        await sender.sio.emit("to-room", ("r1", "marker", key))
        await sender.sio.emit("to-room", ("r2", "marker", key))
        async with asyncio.timeout(10):
            while key not in here.markers or key not in elsewhere.markers:
                await asyncio.sleep(0.001)
        same_room.append(here.markers[key] - sent)
        other_room.append(elsewhere.markers[key] - sent)
    return statistics.median(same_room), statistics.median(other_room)


async def test_client_that_stops_reading_cannot_hold_up_broadcasts(tmp_path):
    limits = {"SIO_MAX_BUFFERED_PACKETS": "100", "SIO_MAX_BUFFERED_BYTES": "1000000"}
    server = Server("uvicorn-corked", tmp_path / "server.log", extra_env=limits)
    sender, here, elsewhere = Bystander(), Bystander(), Bystander()
    slow = SlowClient(server.url)
    try:
        await sender.connect(server.url, None)
        await here.connect(server.url, "r1")
        await elsewhere.connect(server.url, "r2")
        baseline = await _rounds(sender, here, elsewhere, "baseline")

        await slow.connect()
        assert await slow.call("join", "r1") == '431["joined"]'
        slow.stop_reading()
        stalled = await _rounds(sender, here, elsewhere, "stalled")

        assert await slow.close_code() == SLOW_CLIENT_CLOSE
        print(f"median latency (same room, other room): baseline {baseline}, with a stalled client {stalled}")
        assert stalled[0] <= LATENCY_RATIO * baseline[0], (baseline, stalled)
        assert stalled[1] <= LATENCY_RATIO * baseline[1], (baseline, stalled)
        assert sender.sio.connected and here.sio.connected and elsewhere.sio.connected
    finally:
        slow.close()
        for client in (sender, here, elsewhere):
            if client.sio.connected:
                await client.sio.disconnect()
        server.stop()

