"""The Redis broker: one publish reaches every other subscribed worker, in order, and survives a lost connection."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import redis.asyncio as redis

from channels_socketio.transport.redis_broker import RedisBroker


class Worker:
    def __init__(self, url: str, name: str = "sio-test") -> None:
        self.broker = RedisBroker(url, prefix="sio-test:", client_name=name)
        self.received: list[tuple[str, Any]] = []
        self.gaps = 0

    async def start(self) -> None:
        await self.broker.start(self.deliver, self.gap)

    async def deliver(self, topic: str, message: dict[str, Any]) -> None:
        self.received.append((topic, message))

    async def gap(self) -> None:
        self.gaps += 1


async def until(check, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_publish_reaches_other_subscribers_in_order_but_not_the_publisher(redis_url):
    a, b, c = Worker(redis_url), Worker(redis_url), Worker(redis_url)
    for worker in (a, b, c):
        await worker.start()
    try:
        await a.broker.subscribe("room")
        await b.broker.subscribe("room")
        for n in range(200):
            await a.broker.publish("room", {"n": n, "frames": ["42[\"x\"]", b"\x00\x01"]})
        await until(lambda: len(b.received) == 200)
        assert [message["n"] for _, message in b.received] == list(range(200))
        assert b.received[0] == ("room", {"n": 0, "frames": ["42[\"x\"]", b"\x00\x01"]})
        await asyncio.sleep(0.1)
        assert a.received == [] and c.received == []
    finally:
        for worker in (a, b, c):
            await worker.broker.stop()


async def test_unsubscribing_stops_delivery(redis_url):
    a, b = Worker(redis_url), Worker(redis_url)
    await a.start()
    await b.start()
    try:
        await b.broker.subscribe("room")
        await a.broker.publish("room", {"n": 1})
        await until(lambda: len(b.received) == 1)
        await b.broker.unsubscribe("room")
        await a.broker.publish("room", {"n": 2})
        await asyncio.sleep(0.2)
        assert len(b.received) == 1
    finally:
        await a.broker.stop()
        await b.broker.stop()


async def test_a_lost_subscription_is_restored_and_reported_as_a_gap(redis_url):
    name = f"sio-test-{secrets.token_hex(4)}"
    a, b = Worker(redis_url), Worker(redis_url, name)
    await a.start()
    await b.start()
    admin = redis.Redis.from_url(redis_url)
    try:
        await b.broker.subscribe("room")
        await a.broker.publish("room", {"n": 1})
        await until(lambda: len(b.received) == 1)
        subscriber = [c for c in await admin.client_list(_type="pubsub") if c["name"] == name]
        assert len(subscriber) == 1
        await admin.client_kill_filter(_id=subscriber[0]["id"])
        await until(lambda: b.gaps == 1)
        await a.broker.publish("room", {"n": 2})
        await until(lambda: len(b.received) == 2)
        assert b.received[-1] == ("room", {"n": 2})
    finally:
        await admin.aclose()
        await a.broker.stop()
        await b.broker.stop()
