"""Issue #17, finding 1: the external verifier and failed CONNECTs are bounded.

"The external verifier is a blocking urlopen (5 s) on the thread all database
work shares, rejected tokens are not cached, failed CONNECTs can be retried
without limit; ``_local_user`` ignores is_active."

One server per backend with a real verifier (``hostile.Verifier``, which can
hold its answers) and ``CHAT_EXTERNAL_AUTH_CONCURRENCY=2``; the failed-connect
limit gets a server of its own per test, since every client here is 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import redis

from tests.conftest import ServerProcess
from tests.integration.chat_client import ChatClient, client_pool, db_execute, issue_tokens, unique
from tests.integration.clients import until
from tests.integration.hostile import HIGH_LIMITS, Verifier, better_auth, connect_error_packet, open_raw

CONCURRENCY = 2
FAILURE_LIMIT = 5


@pytest.fixture(scope="module")
def verifier():
    server = Verifier().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(module_server_factory, module_backend, verifier) -> ServerProcess:
    return module_server_factory(
        module_backend,
        conformance=False,
        CHAT_EXTERNAL_AUTH_URL=verifier.url,
        CHAT_EXTERNAL_AUTH_CONCURRENCY=str(CONCURRENCY),
        CHAT_EXTERNAL_AUTH_REJECT_CACHE_S="60",
        **HIGH_LIMITS,
    )


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def connect(client: ChatClient, url: str, token: str, transports: list[str] | None = None) -> ChatClient:
    """Connect, recording a refusal in ``client.stream`` instead of raising."""
    try:
        await client.sio.connect(url, auth={"token": token}, transports=transports or ["websocket"], wait_timeout=20)
    except Exception:
        pass
    return client


def refusal(client: ChatClient) -> dict[str, Any]:
    assert client.names() == ["connect_error"], client.stream
    return client.events("connect_error")[0]["data"]


def external_identity(verifier: Verifier, workspace: str | None = None) -> tuple[str, str]:
    token, user_id = unique("ext-token"), unique("ba")
    verifier.answers[token] = (200, better_auth(user_id, "Ext User", workspace))
    return token, user_id


async def test_external_verifier_does_not_block_database_work(server, verifier, new):
    """While the verifier takes its time, other clients connect, join and send (database work) meanwhile."""
    ws = unique("ws")
    token, user_id = external_identity(verifier, ws)
    verifier.hold(token)
    waiting = asyncio.create_task(connect(new("external"), server.url, token))
    try:
        assert await until(lambda: verifier.waiting == 1, 10), "the verifier was never asked"
        local = issue_tokens(server, [(unique("local"), ws, "member")])
        client = await connect(new("local"), server.url, next(iter(local.values())))
        assert client.names() == ["connect"], client.stream
        await client.join(ws, unique("s"))
        assert verifier.waiting == 1, "the database work above ran while the verifier still held its answer"
    finally:
        verifier.release()
    external = await waiting
    assert external.names() == ["connect"], external.stream  # a blocking call would have timed out meanwhile
    assert (await external.join(ws, unique("s")))["presence"]["userName"] == f"ext-{user_id}"


async def test_rejected_external_tokens_are_cached(server, verifier, new):
    rejected = unique("ext-rejected")
    for n in range(3):
        assert refusal(await connect(new(f"rejected{n}"), server.url, rejected))["reason"] == "external_rejected"
    assert verifier.count(rejected) == 1, verifier.calls  # CHAT_EXTERNAL_AUTH_REJECT_CACHE_S=60
    # A failing verifier (5xx) is no answer about the token: it is asked again next time.
    failing = unique("ext-500")
    verifier.answers[failing] = (500, {"error": "boom"})
    for n in range(2):
        assert refusal(await connect(new(f"failing{n}"), server.url, failing))["reason"] == "external_rejected"
    assert verifier.count(failing) == 2, verifier.calls


async def test_external_verifier_concurrency_is_capped(server, verifier, new):
    held = [external_identity(verifier)[0] for _ in range(CONCURRENCY)]
    verifier.hold(*held)
    pending = [asyncio.create_task(connect(new(f"held{n}"), server.url, t)) for n, t in enumerate(held)]
    try:
        assert await until(lambda: verifier.waiting == CONCURRENCY, 10), verifier.waiting
        extra, _ = external_identity(verifier)
        busy = await connect(new("extra"), server.url, extra)
        assert refusal(busy) == {"code": "auth_busy", "retryable": True}
        assert verifier.count(extra) == 0  # refused without asking
    finally:
        verifier.release()
    for task in pending:
        assert (await task).names() == ["connect"]
    later = await connect(new("later"), server.url, extra)
    assert later.names() == ["connect"], later.stream


async def test_local_user_ignores_is_active(server, verifier, new):
    """A deactivated local user stays out, whatever the external verifier says."""
    token, user_id = external_identity(verifier, unique("ws"))
    first = await connect(new("first"), server.url, token)
    assert first.names() == ["connect"], first.stream
    db_execute(server, "UPDATE auth_user SET is_active = ? WHERE username = ?", (False, f"ext-{user_id}"))
    again = await connect(new("again"), server.url, token)
    assert refusal(again) == {"code": "unauthenticated", "reason": "inactive_user"}


# --- failed CONNECTs per address ------------------------------------------------------------------------


async def test_failed_connects_are_limited_per_address(server_factory, backend, new):
    limited = server_factory(
        backend, conformance=False, **{**HIGH_LIMITS, "CHAT_CONNECT_FAILURE_LIMIT": str(FAILURE_LIMIT)}
    )
    if backend.env.get("REDIS_URL"):  # earlier servers' failures from 127.0.0.1 are in the shared count
        with redis.Redis.from_url(backend.env["REDIS_URL"]) as shared:
            shared.delete("chat:sec:rl:connect-failed:127.0.0.1")
    ws = unique("ws")
    good = next(iter(issue_tokens(limited, [(unique("good"), ws, "member")]).values()))
    forged = '40{"token":"chat_forged-token-value"}'
    unauthenticated = connect_error_packet(
        "Authentication required: pass a valid token in the auth payload.", "unauthenticated", reason="invalid_token"
    )
    async with aiohttp.ClientSession() as http:
        raw = await open_raw(http, limited.url, "polling")
        try:
            # Retrying on one Engine.IO connection: each refusal counts.
            for _ in range(FAILURE_LIMIT):
                mark = len(raw.packets)
                await raw.send(forged)
                await raw.wait_packet(lambda p: p == unauthenticated, 8, since=mark)
            mark = len(raw.packets)
            await raw.send(forged)
            throttled = await raw.wait_packet(lambda p: p != "2", 8, since=mark)
            assert "too_many_failed_connects" in throttled, throttled
            assert throttled.startswith("44"), throttled
        finally:
            await raw.aclose()
    # The address is refused before its credentials are looked at, a valid token too, with a retry time.
    refused = refusal(await connect(new("valid-but-throttled"), limited.url, good, ["polling", "websocket"]))
    assert refused["code"] == "too_many_failed_connects" and 0 < refused["retryAfter"] <= 60_000, refused


async def test_the_parlant_api_asks_the_same_verifier(server, verifier):
    """The Parlant-compatible API (synchronous) reaches the same asynchronous verifier and its caches."""
    org = unique("org")
    token, _ = external_identity(verifier, org)
    rejected = unique("ext-rejected")
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            async with http.get(f"{server.url}/parlant/{org}/t/{token}/sessions/{unique('none')}") as response:
                assert response.status == 404, await response.text()  # a member: no such session
            async with http.get(f"{server.url}/parlant/{org}/t/{rejected}/sessions/x") as response:
                body = await response.json()
                assert (response.status, body["code"], body["reason"]) == (403, "unauthenticated", "external_rejected")
    assert (verifier.count(token), verifier.count(rejected)) == (1, 1), verifier.calls
