"""The Redis broker: one publish reaches every other subscribed worker, in order, and survives a lost connection."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as redis

from channels_socketio import observer
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
            await a.broker.publish("room", {"n": n, "frames": ['42["x"]', b"\x00\x01"]})
        await until(lambda: len(b.received) == 200)
        assert [message["n"] for _, message in b.received] == list(range(200))
        assert b.received[0] == ("room", {"n": 0, "frames": ['42["x"]', b"\x00\x01"]})
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


class RedisOutage:
    """A TCP relay to Redis that can go down and come back, as a restarted Redis does.

    Down: every connection through it is cut and new ones are refused;
    up again: the same port relays to Redis (which lost no subscription of
    its own: the clients must subscribe again).
    """

    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.database = parts.path
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{self.database}"

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, upstream_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


async def test_after_redis_comes_back_every_subscription_is_restored_and_the_gap_reported(redis_url):
    """Subscriptions made while Redis is down take effect when it is back; nothing stays unsubscribed.

    A worker's own address is one of its topics (the polling relay): left
    unsubscribed, long-polling across workers stops for good.
    """
    outage = RedisOutage(redis_url)
    await outage.up()
    a, b = Worker(outage.url), Worker(redis_url)
    await a.start()
    await b.start()
    try:
        await a.broker.subscribe("worker.a")
        await a.broker.subscribe("room")
        await outage.down()
        await asyncio.sleep(0.3)  # the reader notices, and its first attempts are refused
        await a.broker.subscribe("room-joined-while-down")  # a join meanwhile: no error, it counts once back
        await asyncio.sleep(0.5)
        await outage.up()
        await until(lambda: a.gaps >= 1, timeout=10)
        await asyncio.sleep(0.2)
        for topic in ("worker.a", "room", "room-joined-while-down"):
            await b.broker.publish(topic, {"to": topic})
        await until(lambda: {topic for topic, _ in a.received} >= {"worker.a", "room", "room-joined-while-down"})
    finally:
        await a.broker.stop()
        await b.broker.stop()
        await outage.down()


async def test_many_subscriptions_at_once_on_a_fresh_connection_share_it(redis_url):
    """The first subscriptions of a broker (or of one reconnected) may come all at once: one connection serves them."""
    a, b = Worker(redis_url), Worker(redis_url)
    await a.start()
    await b.start()
    try:
        await asyncio.gather(*(a.broker.subscribe(f"t{i}") for i in range(200)))
        for i in range(200):
            await b.broker.publish(f"t{i}", {"i": i})
        await until(lambda: len(a.received) == 200)
    finally:
        await a.broker.stop()
        await b.broker.stop()


class CountingObserver(observer.Observer):
    def __init__(self) -> None:
        self.dropped: dict[str, int] = {}

    def messages_dropped(self, where: str, count: int) -> None:
        self.dropped[where] = self.dropped.get(where, 0) + count


async def test_a_full_outbox_drops_new_messages_and_reports_each():
    """Redis slower than the workers publish (here: no sender at all): the outbox stays bounded."""
    broker = RedisBroker("redis://127.0.0.1:1/0", max_queued=3)
    counting, previous = CountingObserver(), observer.current
    observer.install(counting)
    try:
        for index in range(5):
            await broker.publish("room", {"n": index})
    finally:
        observer.install(previous)
    assert broker.queued == 3
    assert broker.dropped == 2
    assert counting.dropped == {"broker_overflow": 2}
