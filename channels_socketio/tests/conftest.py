"""The engine's own tests: no Django application of ours, only the engine, Django and Channels.

Run them alone with ``pytest -p no:django channels_socketio/tests`` (``make
test`` does): the last test of the session checks that no module of the
chat application was imported along the way.  Tests that need Redis take
its URL from ``SIO_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/8``);
without Redis they are skipped locally and fail in CI (``CI=true``).
"""

from __future__ import annotations

import os
import sys

import pytest

REDIS_URL = os.environ.get("SIO_TEST_REDIS_URL", "redis://127.0.0.1:6379/8")
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
async def redis_url() -> str:
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        await client.ping()
    except Exception as error:
        message = f"Redis at {REDIS_URL} is not available: {error}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: a missing service is a failure, not a skip)", pytrace=False)
        pytest.skip(message)
    finally:
        await client.aclose()
    return REDIS_URL


#: Packages of the chat application, which the engine must never need.
APPLICATION = ("chat", "chatsite", "security", "monitoring")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if anything imported a module of the application: the engine stands alone."""
    imported = sorted(name for name in sys.modules if name.split(".")[0] in APPLICATION)
    if imported:
        print(f"\nthe engine's tests imported the application: {', '.join(imported)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
