"""security.connections with the memory tracker and a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from chat.errors import ConnectionRefused
from security.connections import (
    MemoryConnectionTracker,
    RedisConnectionTracker,
    connections_from_settings,
)
from security.errors import ConnectionLimitExceeded
from security.ratelimit import BackendUnavailable
from tests.unit.security_support import FakeClock, override_chat

pytestmark = pytest.mark.usefixtures("default_security_settings")


async def test_limit_per_user(clock: FakeClock) -> None:
    tracker = MemoryConnectionTracker(limit=3, ttl_s=30, clock=clock)
    assert [await tracker.acquire(1, f"c{n}") for n in range(4)] == [True, True, True, False]
    assert await tracker.acquire(2, "other-user")
    assert await tracker.count(1) == 3
    await tracker.release(1, "c0")
    assert await tracker.acquire(1, "c3")
    assert not await tracker.acquire(1, "c4")


async def test_reacquire_is_idempotent(clock: FakeClock) -> None:
    tracker = MemoryConnectionTracker(limit=1, ttl_s=30, clock=clock)
    assert await tracker.acquire(1, "c")
    assert await tracker.acquire(1, "c")
    assert await tracker.count(1) == 1


async def test_acquire_or_raise(clock: FakeClock) -> None:
    tracker = MemoryConnectionTracker(limit=1, ttl_s=30, clock=clock)
    await tracker.acquire_or_raise("7", "a")
    with pytest.raises(ConnectionLimitExceeded) as caught:
        await tracker.acquire_or_raise("7", "b")
    error = caught.value
    assert isinstance(error, ConnectionRefused)
    assert error.code == "connection_limit"
    assert error.as_payload() == {
        "error": ConnectionLimitExceeded.default_message,
        "code": "connection_limit",
        "limit": 1,
    }
    assert "b" not in tracker.owned


async def test_unrefreshed_entries_expire(clock: FakeClock) -> None:
    tracker = MemoryConnectionTracker(limit=2, ttl_s=30, clock=clock)
    await tracker.acquire(1, "a")
    await tracker.acquire(1, "b")
    clock.advance(29.9)
    assert not await tracker.acquire(1, "c")
    clock.advance(0.1)
    assert await tracker.count(1) == 0
    assert await tracker.acquire(1, "c")


async def test_refresh_keeps_owned_connections_alive(clock: FakeClock) -> None:
    tracker = MemoryConnectionTracker(limit=2, ttl_s=30, clock=clock)
    await tracker.acquire(1, "a")
    await tracker.acquire(2, "b")
    for _ in range(5):
        clock.advance(20)
        assert await tracker.refresh() == 2
    assert await tracker.count(1) == 1 and await tracker.count(2) == 1
    clock.advance(20)
    assert await tracker.refresh(["a", "unknown"]) == 1
    clock.advance(20)
    assert await tracker.count(1) == 1 and await tracker.count(2) == 0


async def test_refresh_readds_an_owned_entry_that_expired(clock: FakeClock) -> None:
    tracker = MemoryConnectionTracker(limit=1, ttl_s=30, clock=clock)
    await tracker.acquire(1, "a")
    clock.advance(31)  # this worker stalled past the TTL, but the connection is alive
    assert await tracker.refresh() == 1
    assert await tracker.count(1) == 1


async def test_release_forgets_ownership(clock: FakeClock) -> None:
    tracker = MemoryConnectionTracker(limit=1, ttl_s=30, clock=clock)
    await tracker.acquire(1, "a")
    await tracker.release(1, "a")
    await tracker.release(1, "a")  # twice is fine
    assert tracker.owned == {} and await tracker.refresh() == 0


async def test_heartbeat_task_refreshes() -> None:
    tracker = MemoryConnectionTracker(limit=1, ttl_s=0.15)
    await tracker.acquire(1, "a")
    tracker.start_heartbeat()
    tracker.start_heartbeat()  # idempotent
    await asyncio.sleep(0.4)
    assert await tracker.count(1) == 1
    await tracker.stop_heartbeat()
    await asyncio.sleep(0.2)
    assert await tracker.count(1) == 0


async def test_fails_open_when_the_store_is_down(clock: FakeClock) -> None:
    class Down(MemoryConnectionTracker):
        async def _acquire(self, *args):
            raise BackendUnavailable("down")

        async def _release(self, *args):
            raise BackendUnavailable("down")

        async def _refresh(self, *args):
            raise BackendUnavailable("down")

        async def _count(self, *args):
            raise BackendUnavailable("down")

    tracker = Down(limit=1, ttl_s=30, clock=clock)
    assert await tracker.acquire(1, "a") and await tracker.acquire(1, "b")
    assert await tracker.refresh() == 0
    assert await tracker.count(1) == 0
    await tracker.release(1, "a")


def test_validation_and_defaults(settings) -> None:
    with pytest.raises(ValueError):
        MemoryConnectionTracker(limit=0)
    tracker = MemoryConnectionTracker()
    assert (tracker.limit, tracker.ttl_s, tracker.heartbeat_interval_s) == (5, 30.0, 10.0)
    override_chat(settings, connection_limit=2, connection_ttl_s=9)
    assert (MemoryConnectionTracker().limit, MemoryConnectionTracker().ttl_s) == (2, 9.0)


async def test_from_settings(settings) -> None:
    override_chat(settings, redis_url="")
    assert isinstance(connections_from_settings(), MemoryConnectionTracker)
    override_chat(settings, redis_url="redis://127.0.0.1:6379/10")
    tracker = connections_from_settings()  # connects lazily
    assert isinstance(tracker, RedisConnectionTracker)
    await tracker.aclose()
