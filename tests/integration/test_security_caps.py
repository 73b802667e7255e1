"""Issue #17, finding 3: Engine.IO work per request and per address is bounded.

"One task per event before any limit (a 1 MB polling POST can carry ~500,000
packets); unauthenticated Engine.IO sessions per address."  The caps are the
engine's options (``EngineOptions``), set from ``CHAT_MAX_PACKETS_PER_POST``
and ``CHAT_PENDING_SESSIONS_PER_ADDRESS``; one server per backend with small
values.  Every client here is 127.0.0.1, one address.
"""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.conftest import ServerProcess
from tests.integration.chat_client import issue_tokens, unique
from tests.integration.hostile import HIGH_LIMITS, RawPolling, RawWebSocket, open_raw

PACKETS = 16
PENDING = 3
EVENTS = 5


@pytest.fixture(scope="module")
def server(module_server_factory, module_backend) -> ServerProcess:
    return module_server_factory(
        module_backend,
        conformance=False,
        CHAT_MAX_PACKETS_PER_POST=str(PACKETS),
        CHAT_PENDING_SESSIONS_PER_ADDRESS=str(PENDING),
        CHAT_MAX_PENDING_EVENTS=str(EVENTS),
        **HIGH_LIMITS,
    )


@pytest.fixture(scope="module")
def token(server) -> str:
    return next(iter(issue_tokens(server, [(unique("capped"), unique("ws"), "member")]).values()))


async def test_a_polling_post_can_carry_half_a_million_packets(server, token):
    event = '42["no-such-event"]'
    async with aiohttp.ClientSession() as http:
        client = await open_raw(http, server.url, "polling")
        try:
            assert (await client.connect({"token": token})).startswith('40{"sid"')
            assert await client.send(*[event] * PACKETS) == (200, "ok")
            status, body = await client.send(*[event] * (PACKETS + 1))
            assert status == 400, body
            assert json.loads(body)["context"]["code"] == "too_many_packets", body
            # The session is closed: one more request is refused.
            assert (await client.post("6"))[0] == 400
        finally:
            await client.aclose()


async def test_one_task_per_event_before_any_limit(server, token):
    """Events wait for the socket's lock in tasks; past CHAT_MAX_PENDING_EVENTS one is refused at once, no task."""
    async with aiohttp.ClientSession() as http:
        client = await open_raw(http, server.url, "polling")
        try:
            assert (await client.connect({"token": token})).startswith('40{"sid"')
            events = [f'42{n}["no-such-event"]' for n in range(1, 13)]
            assert await client.send(*events) == (200, "ok")  # one POST: all arrive before any is handled
            acks = {}
            for n in range(1, 13):
                packet = await client.wait_packet(lambda p, n=n: isinstance(p, str) and p.startswith(f"43{n}["), 10)
                acks[n] = json.loads(packet[len(f"43{n}") :])[0]["code"]
            assert [acks[n] for n in range(1, 13)] == ["unknown_event"] * EVENTS + ["too_many_pending_events"] * 7
            # Handled ones free their places: the socket goes on.
            await client.send('4213["no-such-event"]')
            packet = await client.wait_packet(lambda p: isinstance(p, str) and p.startswith("4313["), 10)
            assert json.loads(packet[4:])[0]["code"] == "unknown_event"
        finally:
            await client.aclose()


async def handshake_status(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(RawPolling(http, url).query()) as response:
        return response.status, await response.text()


async def test_unauthenticated_engine_io_sessions_per_address(server, token):
    async with aiohttp.ClientSession() as http:
        pending = [await open_raw(http, server.url, transport) for transport in ("polling", "websocket", "polling")]
        try:
            # A fourth connection that has not authenticated from this address: refused, on either transport.
            status, body = await handshake_status(http, server.url)
            assert status == 429 and json.loads(body)["context"]["code"] == "too_many_sessions", body
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await RawWebSocket(http, server.url).open()
            # One of them authenticates: it no longer counts, so another may open.
            assert (await pending[0].connect({"token": token})).startswith('40{"sid"')
            extra = await open_raw(http, server.url, "polling")
            pending.append(extra)
            assert (await handshake_status(http, server.url))[0] == 429
            # One that leaves gives its place back too.
            await pending[1].aclose()
            pending.append(await open_raw(http, server.url, "websocket"))
        finally:
            for client in pending:
                await client.aclose()
