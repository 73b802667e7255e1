"""The conformance application on the engine alone, with python-socketio's and python-engineio's clients.

Every test runs against a real server process (uvicorn and daphne) that
imports nothing of the chat; rooms across two processes go through Redis.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import engineio
import pytest
import socketio

from channels_socketio.tests.servers import Server

TRANSPORTS = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}


@pytest.fixture(scope="module", params=["uvicorn", "daphne"])
def server(request, tmp_path_factory):
    process = Server(request.param, tmp_path_factory.mktemp("server") / "server.log")
    yield process
    process.stop()


class Client:
    """A python-socketio client that records every event it receives, by namespace."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue[tuple[str, str, tuple[Any, ...]]] = asyncio.Queue()

        @self.sio.on("*", namespace="*")
        async def any_event(event: str, namespace: str, *args: Any) -> None:
            await self.events.put((namespace, event, args))

    async def next(self, timeout: float = 5.0) -> tuple[str, str, tuple[Any, ...]]:
        return await asyncio.wait_for(self.events.get(), timeout)


@pytest.fixture
async def client():
    made = Client()
    yield made
    if made.sio.connected:
        await made.sio.disconnect()


@pytest.mark.parametrize("mode", sorted(TRANSPORTS))
async def test_auth_echo_and_acks_in_every_transport_mode(server, client, mode):
    await client.sio.connect(server.url, auth={"mode": mode}, transports=TRANSPORTS[mode], wait_timeout=5)
    assert await client.next() == ("/", "auth", ({"mode": mode},))
    await client.sio.emit("message", [1, "two", {"three": 3}])
    assert await client.next() == ("/", "message-back", ([1, "two", {"three": 3}],))
    assert await client.sio.call("message-with-ack", "hello", timeout=5) == "hello"
    if mode == "upgrade":
        for _ in range(50):
            if client.sio.transport() == "websocket":
                break
            await asyncio.sleep(0.1)
        assert client.sio.transport() == "websocket"


async def test_binary_both_ways(server, client):
    await client.sio.connect(server.url, transports=["websocket"], wait_timeout=5)
    await client.next()
    await client.sio.emit("message", {"blob": b"\x00\x01\xff", "empty": b""})
    assert await client.next() == ("/", "message-back", ({"blob": b"\x00\x01\xff", "empty": b""},))


async def test_a_second_namespace_and_an_unknown_one(server, client):
    await client.sio.connect(server.url, namespaces=["/", "/custom"], transports=["websocket"], wait_timeout=5)
    seen = sorted([await client.next(), await client.next()], key=lambda event: event[0])
    assert seen == [("/", "auth", ({},)), ("/custom", "auth", ({},))]
    other = Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await other.sio.connect(server.url, namespaces=["/nowhere"], transports=["websocket"], wait_timeout=5)


async def test_the_server_calls_the_client_and_disconnects_it(server, client):
    # A handler of its own for "/" (python-socketio then skips the catch-all there, so no auth event is read).
    client.sio.on("question", lambda *args: ["answer", *args])
    await client.sio.connect(server.url, transports=["websocket"], wait_timeout=5)
    assert await client.sio.call("call-me", ("question", 42), timeout=5) == ["answer", 42]
    await client.sio.emit("disconnect-me")
    for _ in range(50):
        if not client.sio.connected:
            break
        await asyncio.sleep(0.1)
    assert not client.sio.connected


async def test_an_unknown_namespace_and_the_connect_timeout_as_the_reference_server(server):
    """``44/<nsp>,{"message":"Invalid namespace"}`` exactly; no namespace joined within 1 s: closed."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket")
        assert (await ws.receive_str(timeout=5)).startswith("0{")
        opened = time.monotonic()
        await ws.send_str("40/random")
        assert await ws.receive_str(timeout=5) == '44/random,{"message":"Invalid namespace"}'
        while True:  # answer the 300 ms pings: only the connect timeout may close it
            message = await ws.receive(timeout=10)
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            if message.data == "2":
                await ws.send_str("3")
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
        assert time.monotonic() - opened >= 0.95, "closed before the connect timeout"


async def test_the_bare_engine_io_endpoint_echoes(server):
    received: asyncio.Queue[Any] = asyncio.Queue()
    eio = engineio.AsyncClient()
    eio.on("message", received.put)
    await eio.connect(server.url, engineio_path="engine.io", transports=["polling"])
    try:
        await eio.send("ping me")
        await eio.send(b"\x01\x02")
        assert await asyncio.wait_for(received.get(), 5) == "ping me"
        assert await asyncio.wait_for(received.get(), 5) == b"\x01\x02"
    finally:
        await eio.disconnect()


async def test_rooms_span_two_processes_through_redis(redis_url, tmp_path):
    first = Server("uvicorn", tmp_path / "first.log", redis_url)
    second = Server("uvicorn", tmp_path / "second.log", redis_url)
    here, there = Client(), Client()
    try:
        await here.sio.connect(first.url, transports=["websocket"], wait_timeout=5)
        await there.sio.connect(second.url, transports=["websocket"], wait_timeout=5)
        await here.next()
        await there.next()
        assert await here.sio.call("join", "lobby", timeout=5) == "joined"
        assert await there.sio.call("join", "lobby", timeout=5) == "joined"
        assert await there.sio.call("to-room", ("lobby", "hello", b"\x07"), timeout=5) == "sent"
        assert await here.next() == ("/", "room-message", ("hello", b"\x07"))
        assert there.events.empty()  # the sender is left out
        assert await here.sio.call("leave", "lobby", timeout=5) == "left"
        await there.sio.call("to-room", ("lobby", "again"), timeout=5)
        await asyncio.sleep(0.3)
        assert here.events.empty()
    finally:
        for made in (here, there):
            if made.sio.connected:
                await made.sio.disconnect()
        first.stop()
        second.stop()
