"""Issue #17: "no throttling on the login pages".

``/login/`` and ``/admin/login/`` count log-in attempts (POSTs) per client
address and per user name in the cache (Redis on the services backend, so
every worker shares them); past ``CHAT_LOGIN_RATE_LIMIT`` the answer is 429
with ``Retry-After``, before any password is checked.
"""

from __future__ import annotations

import asyncio
import time
import zlib

import aiohttp
import pytest
import redis

from tests.conftest import ServerProcess
from tests.integration.hostile import HIGH_LIMITS

LIMIT = 3
CSRF = "A" * 32
ADDRESS = "127.0.0.1"  # every test client's


async def fresh_window(period_s: int = 60, margin_s: float = 15.0) -> None:
    """Wait, if need be, until this address's counting window has ``margin_s`` seconds ahead.

    django-ratelimit counts in fixed windows of the rate's period, each key's ending at its own
    offset in the period (the CRC-32 of the key's value). A run of attempts that straddles an end
    is counted in two windows and would rightly see the limit twice.
    """
    left_s = (zlib.crc32(ADDRESS.encode()) % period_s - time.time()) % period_s
    if left_s < margin_s:
        await asyncio.sleep(left_s + 1.5)


@pytest.fixture
def server(server_factory, backend) -> ServerProcess:
    if backend.env.get("REDIS_URL"):  # earlier runs' attempts from 127.0.0.1 within the minute
        with redis.Redis.from_url(backend.env["REDIS_URL"]) as shared:
            for key in shared.scan_iter(match=":1:rl:*"):
                shared.delete(key)
    return server_factory(backend, conformance=False, **{**HIGH_LIMITS, "CHAT_LOGIN_RATE_LIMIT": f"{LIMIT}/m"})


async def attempt(http: aiohttp.ClientSession, url: str, username: str) -> tuple[int, str | None]:
    form = {"username": username, "password": "wrong-password", "csrfmiddlewaretoken": CSRF}
    async with http.post(url, data=form, cookies={"csrftoken": CSRF}, allow_redirects=False) as response:
        await response.read()
        return response.status, response.headers.get("Retry-After")


async def test_no_throttling_on_the_login_pages(server):
    await fresh_window()
    async with aiohttp.ClientSession() as http:
        for n in range(LIMIT):
            status, _ = await attempt(http, f"{server.url}/login/", f"someone{n}")
            assert status == 200, n  # the form again, with its error
        status, retry_after = await attempt(http, f"{server.url}/login/", "someone-else")
        assert status == 429 and retry_after is not None and 1 <= int(retry_after) <= 60
        # The admin's log-in page shares the count: the same address is refused there too.
        status, retry_after = await attempt(http, f"{server.url}/admin/login/", "admin")
        assert status == 429 and retry_after is not None
        # Looking at the pages is not an attempt.
        async with http.get(f"{server.url}/login/") as response:
            assert response.status == 200
