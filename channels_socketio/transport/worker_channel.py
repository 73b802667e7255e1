"""This worker process's one connection to the broker, and its own address on it.

Layer: transport.

Everything that crosses processes goes through here: room broadcasts (the
fan-out, :mod:`channels_socketio.protocol.rooms`, subscribes to its rooms'
topics and handles what arrives on them) and messages addressed to this
worker (its ``name`` is a topic only it subscribes to: polling requests
relayed from other workers, :mod:`channels_socketio.transport.relay`).
Addressed messages are dispatched by their ``type`` to handlers registered
explicitly; a type nobody registered is dropped and counted, never looked
up by name.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any, Awaitable, Callable

from channels_socketio import observer
from channels_socketio.transport.broker import Broker, LocalBroker, OnGap

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]
TopicHandler = Callable[[str, dict[str, Any]], Awaitable[None]]


async def _nothing_missed() -> None:
    pass


class WorkerChannel:
    def __init__(self, broker: Broker | None = None) -> None:
        self.broker: Broker = broker if broker is not None else LocalBroker()
        #: This worker's address: ``worker.<random>`` (see ``relay.WORKER_CHANNEL``).
        self.name: str | None = None
        self._handlers: dict[str, Handler] = {}
        self._topics: TopicHandler | None = None
        self._on_gap: OnGap = _nothing_missed
        self._starting = asyncio.Lock()
        #: Addressed messages of a type no handler was registered for.
        self.dropped = 0

    @property
    def crosses_processes(self) -> bool:
        return self.broker.crosses_processes

    def route(self, message_type: str, handler: Handler) -> None:
        """Handle messages of ``message_type`` addressed to this worker."""
        self._handlers[message_type] = handler

    def handle_topics(self, handler: TopicHandler, on_gap: OnGap) -> None:
        """Handle messages of every other subscribed topic (the fan-out's rooms); ``on_gap`` after a lost connection."""
        self._topics, self._on_gap = handler, on_gap

    async def start(self) -> str:
        """Connect to the broker and subscribe to this worker's address (once; later calls return at once)."""
        if self.name is None:
            async with self._starting:
                if self.name is None:
                    name = f"worker.{secrets.token_hex(12)}"
                    await self.broker.start(self._deliver, self._gap)
                    await self.broker.subscribe(name)
                    self.name = name
        return self.name

    async def stop(self) -> None:
        await self.broker.stop()

    async def send(self, worker: str, message: dict[str, Any]) -> None:
        """Send ``message`` to another worker, by its name."""
        await observer.current.layer_send(self.broker.publish(worker, message), "relay")

    async def subscribe(self, topic: str) -> None:
        await self.broker.subscribe(topic)

    async def unsubscribe(self, topic: str) -> None:
        await self.broker.unsubscribe(topic)

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        """Send ``message`` to the other workers subscribed to ``topic``."""
        await self.broker.publish(topic, message)

    async def _deliver(self, topic: str, message: dict[str, Any]) -> None:
        if topic != self.name:
            if self._topics is not None:
                await self._topics(topic, message)
            return
        handler = self._handlers.get(message.get("type")) if isinstance(message, dict) else None
        if handler is None:
            self.dropped += 1
            observer.current.messages_dropped("unrouted", 1)
            return
        try:
            await handler(message)
        except Exception:
            logger.exception("worker channel handler failed")

    async def _gap(self) -> None:
        await self._on_gap()
