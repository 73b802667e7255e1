"""Issue #17, "One message freezes a worker": every surface refuses oversized and adversarial input in bounded time.

The finding, on a running server: ``"<" + " " * 9999`` over a socket froze
the worker for 2.6 s (a bystander's ``/healthz`` went from 180 ms to
2,649 ms), and a 20,000-character REST post, screened before its length was
checked, froze the process for 8.3 s.  Here the same inputs, and a body over
``CHAT_API_BODY_MAX_BYTES``, go to the REST API, the Parlant-compatible API
and a socket of a real server (daphne, both backends) uvicorn on the
services backend as in the report) while a bystander keeps asking for
``/healthz``.  Each is answered with its code (or accepted, when it is only
long text) in time comparable to an ordinary message on the same surface, and
the bystander's median latency during the attack stays within a ratio of its
median before -- ratios measured in the test itself, never absolute times.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.conftest import ServerProcess
from tests.integration.chat_client import ChatClient, issue_tokens, unique
from tests.integration.hostile import HIGH_LIMITS

LIMIT = 10_000  # CHAT_MESSAGE_MAX_LENGTH
BODY_LIMIT = 262_144  # CHAT_API_BODY_MAX_BYTES
#: An attack request may take this many times an ordinary message on the same surface.
ATTACK_RATIO = 20
#: The bystander's median latency during the attacks, relative to its median before.
BYSTANDER_RATIO = 10

INPUTS = {
    # The finding's socket message: only long text, accepted -- in the time ordinary text takes.
    "lt-then-spaces-at-the-limit": "<" + " " * (LIMIT - 1),
    # The finding's REST post: refused for its length before anything screens it.
    "lt-then-spaces-twice-the-limit": "<" + " " * (2 * LIMIT - 1),
    # A hostile-looking message at the limit: delivered as text (standard), recorded.
    "script-tags-at-the-limit": ("<script src='x.js'></script> " * LIMIT)[:LIMIT],
    # A body over the API limit: refused before it is parsed (the socket's frames are bounded by maxPayload).
    "body-over-the-api-limit": "a b " * (BODY_LIMIT // 4 + 100),
}
#: What each surface answers: (HTTP status or "ack", code or "ok").
EXPECTED = {
    "lt-then-spaces-at-the-limit": {"rest": (201, "ok"), "parlant": (201, "ok"), "socket": ("ack", "ok")},
    "lt-then-spaces-twice-the-limit": {
        "rest": (400, "message_too_long"),
        "parlant": (422, "message_too_long"),
        "socket": ("ack", "message_too_long"),
    },
    "script-tags-at-the-limit": {"rest": (201, "ok"), "parlant": (201, "ok"), "socket": ("ack", "ok")},
    "body-over-the-api-limit": {
        "rest": (413, "payload_too_large"),
        "parlant": (413, "payload_too_large"),
        "socket": ("ack", "message_too_long"),
    },
}


@dataclass
class World:
    server: ServerProcess
    ws: str
    token: str
    session: str = ""
    client: ChatClient | None = None


@pytest.fixture(scope="module")
def server(module_server_factory, module_backend) -> World:
    server_kind = "uvicorn" if module_backend.name == "services" else "daphne"
    server = module_server_factory(module_backend, conformance=False, server=server_kind, **HIGH_LIMITS)
    ws, name = unique("bws"), unique("attacker")
    return World(server, ws, issue_tokens(server, [(name, ws, "member")])[name])


@pytest.fixture
async def world(server: World):
    client = ChatClient("attacker")
    await client.connect(server.server.url, server.token, ["websocket"])
    session = unique("b")
    await client.join(server.ws, session)  # the attacker's own session, posted to on every surface
    yield World(server.server, server.ws, server.token, session, client)
    await client.close()


async def attempt(http: aiohttp.ClientSession, world: World, surface: str, content: str) -> tuple[Any, str]:
    """Send ``content`` on ``surface``: (status or "ack", code or "ok")."""
    headers = {"Authorization": f"Bearer {world.token}"}
    if surface == "socket":
        ack = await world.client.send(world.session, content, timeout=30)
        return "ack", "ok" if ack.get("ok") else ack.get("code")
    if surface == "rest":
        url = f"{world.server.url}/api/v1/workspaces/{world.ws}/sessions/{world.session}/messages/"
        body = {"id": unique("m"), "content": content}
    else:
        url = f"{world.server.url}/parlant/{world.ws}/sessions/{world.session}/events"
        body = {"kind": "message", "source": "customer", "message": content}
    async with http.post(url, json=body, headers=headers) as response:
        answer = await response.json(content_type=None)
        return response.status, "ok" if response.status < 300 else answer.get("code")


async def healthz(http: aiohttp.ClientSession, server: ServerProcess) -> float:
    start = time.perf_counter()
    async with http.get(f"{server.url}/healthz") as response:
        await response.read()
        assert response.status == 200
    return time.perf_counter() - start


async def timed(awaitable: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = await awaitable
    return result, time.perf_counter() - start


@pytest.mark.parametrize("name", sorted(INPUTS))
@pytest.mark.parametrize("surface", ["rest", "parlant", "socket"])
async def test_every_surface_refuses_the_same_inputs_in_bounded_time(world, surface, name):
    content = INPUTS[name]
    async with aiohttp.ClientSession() as http, aiohttp.ClientSession() as bystander:
        # Before: the bystander's latency, and an ordinary message on this surface.
        before = [await healthz(bystander, world.server) for _ in range(9)]
        ordinary = []
        for n in range(3):
            result, elapsed = await timed(attempt(http, world, surface, f"an ordinary message {n} {unique('o')}"))
            assert result[1] == "ok", result
            ordinary.append(elapsed)
        # During: the attack three times, the bystander asking all along.
        during: list[float] = []
        stop = asyncio.Event()

        async def probe() -> None:
            while not stop.is_set():
                during.append(await healthz(bystander, world.server))
                await asyncio.sleep(0.01)

        prober = asyncio.create_task(probe())
        attacks = []
        try:
            for _ in range(3):
                result, elapsed = await timed(attempt(http, world, surface, content))
                assert result == EXPECTED[name][surface], (surface, name, result)
                attacks.append(elapsed)
            during.append(await healthz(bystander, world.server))
        finally:
            stop.set()
            await prober
    attack, usual = statistics.median(attacks), statistics.median(ordinary)
    assert attack <= ATTACK_RATIO * usual, f"{surface} {name}: {attack * 1000:.0f} ms vs {usual * 1000:.0f} ms ordinary"
    calm, busy = statistics.median(before), statistics.median(during)
    assert busy <= BYSTANDER_RATIO * calm, f"bystander /healthz {busy * 1000:.0f} ms during vs {calm * 1000:.0f} ms"
    assert world.client.connected
