"""The broker over Redis publish/subscribe: one ``PUBLISH`` per message, whatever the number of workers.

Layer: transport.  See :mod:`channels_socketio.transport.broker` for what a
broker promises.

A message goes out as one Redis message on the topic's channel: this
broker's 16-byte id, then the message in msgpack.  Every worker subscribed to
the topic receives it; the publisher recognises its own by the id and
skips it without decoding (it served its own members already).

Publishing does not wait for Redis: messages join a queue that one task
sends in pipelines, in order, so a broadcast costs the caller no round trip
and a burst costs Redis one round trip per pipeline.  If Redis cannot be
reached, what could not be sent is dropped and counted (``dropped``, and
reported to :mod:`channels_socketio.observer`), as is what finds the queue
full (``max_queued``: Redis slower than the workers publish), the
receiving side reconnects with a growing pause, subscribes again to every
topic, and then calls ``on_gap`` so that ordered rooms catch up.  A topic
subscribed or unsubscribed meanwhile (a socket joining a room) raises
nothing: it is part of the next subscription.  The subscriptions share one
connection, made once (concurrent first subscriptions would each open one);
it does not reconnect behind the broker's back, so no lost connection goes
unreported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from typing import Any

import msgpack
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from channels_socketio import observer
from channels_socketio.transport.broker import Deliver, OnGap

logger = logging.getLogger(__name__)

#: Most messages sent in one pipeline.
MAX_PIPELINE = 500
#: Most messages waiting to be published; past it new ones are dropped and counted.
MAX_QUEUED = 100_000
RECONNECT_PAUSES_S = (0.1, 0.25, 0.5, 1.0, 2.0)


class RedisBroker:
    crosses_processes = True

    def __init__(
        self, url: str, *, prefix: str = "sio:", client_name: str = "channels_socketio", max_queued: int = MAX_QUEUED
    ) -> None:
        self.url = url
        self.max_queued = max_queued
        self.prefix = prefix
        #: How this broker's connections show in Redis's ``CLIENT LIST``.
        self.client_name = client_name
        self.id = secrets.token_bytes(16)
        #: Messages that could not be published (Redis unreachable, or the outbox full).
        self.dropped = 0
        self._client: redis.Redis | None = None
        #: The subscriptions' client: no retries inside redis-py, so a lost connection reaches the reader.
        self._subscriber: redis.Redis | None = None
        self._pubsub: Any = None
        #: Set when the subscription connection is lost, until the reader has subscribed again.
        self._lost = False
        self._subscribing = asyncio.Lock()
        self._topics: set[str] = set()
        self._deliver: Deliver | None = None
        self._on_gap: OnGap | None = None
        self._reader: asyncio.Task[None] | None = None
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------

    async def start(self, deliver: Deliver, on_gap: OnGap) -> None:
        self._deliver, self._on_gap = deliver, on_gap
        self._client = redis.Redis.from_url(self.url, client_name=self.client_name)
        self._subscriber = redis.Redis.from_url(self.url, client_name=self.client_name, retry=Retry(NoBackoff(), 0))
        self._pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read(), name="broker-reader")
        self._sender = loop.create_task(self._send(), name="broker-sender")

    async def stop(self) -> None:
        for task in (self._reader, self._sender):
            if task is not None:
                task.cancel()
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
        for client in (self._client, self._subscriber):
            if client is not None:
                await client.aclose()

    # --- subscriptions --------------------------------------------------------------

    async def subscribe(self, topic: str) -> None:
        self._topics.add(topic)
        async with self._subscribing:
            if self._lost:
                return  # the reader subscribes again to every topic, this one included
            try:
                await self._pubsub.subscribe(self.prefix + topic)
            except (RedisError, OSError):
                self._lose()

    async def unsubscribe(self, topic: str) -> None:
        self._topics.discard(topic)
        async with self._subscribing:
            if self._lost:
                return
            try:
                await self._pubsub.unsubscribe(self.prefix + topic)
            except (RedisError, OSError):
                self._lose()

    def _lose(self) -> None:
        if not self._lost:
            self._lost = True
            logger.warning("lost the Redis subscription; reconnecting", exc_info=True)

    # --- publishing -------------------------------------------------------------------

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        if len(self._outbox) >= self.max_queued:
            self.dropped += 1
            observer.current.messages_dropped("broker_overflow", 1)
            return
        self._outbox.append((self.prefix + topic, self.id + msgpack.packb(message, use_bin_type=True)))
        self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._outbox)

    async def _send(self) -> None:
        assert self._client is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                batch = [self._outbox.popleft() for _ in range(min(MAX_PIPELINE, len(self._outbox)))]
                try:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for channel, data in batch:
                            pipe.publish(channel, data)
                        await pipe.execute()
                except RedisError:
                    self.dropped += len(batch)
                    observer.current.messages_dropped("broker_publish", len(batch))
                    logger.warning("could not publish %d message(s) to Redis", len(batch), exc_info=True)

    # --- receiving ----------------------------------------------------------------------

    async def _read(self) -> None:
        failures = 0
        while True:
            if self._lost:
                await asyncio.sleep(RECONNECT_PAUSES_S[min(failures, len(RECONNECT_PAUSES_S) - 1)])
                failures += 1
                if await self._resubscribe():
                    failures = 0
                continue
            if not self._pubsub.subscribed:
                await asyncio.sleep(0.05)  # nothing to listen to yet
                continue
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except (RedisError, OSError):
                self._lose()
                continue
            if message is None or message.get("type") != "message":
                continue
            data = message["data"]
            if data[:16] == self.id:
                continue  # our own: served before it was published
            channel = message["channel"].decode()
            try:
                payload = msgpack.unpackb(data[16:], raw=False)
            except Exception:
                logger.warning("dropped an undecodable message on %s", channel)
                continue
            assert self._deliver is not None
            try:
                await self._deliver(channel[len(self.prefix) :], payload)
            except Exception:
                logger.exception("delivering a brokered message failed")

    async def _resubscribe(self) -> bool:
        """A fresh subscription to every topic, then the gap is reported (messages may have been missed).

        False if Redis cannot be reached yet (the reader tries again after a pause).
        """
        assert self._subscriber is not None
        async with self._subscribing:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
            self._pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                if self._topics:
                    await self._pubsub.subscribe(*(self.prefix + topic for topic in self._topics))
                else:
                    await self._pubsub.ping()
            except (RedisError, OSError):
                return False
            self._lost = False
        logger.warning("Redis subscription restored (%d topics)", len(self._topics))
        if self._on_gap is not None:
            try:
                await self._on_gap()
            except Exception:
                logger.exception("catching up after a lost subscription failed")
        return True
