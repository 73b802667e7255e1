"""This worker process's one channel on the channel layer.

Layer: transport.

Everything that must reach a worker rather than a socket shares this
channel: room broadcasts (:mod:`channels_socketio.protocol.rooms`) and polling requests
relayed from other workers (:mod:`channels_socketio.transport.relay`).  Messages are
dispatched by their ``type`` to handlers registered explicitly; a type
nobody registered is dropped and counted, never looked up by name.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from channels_socketio import observer

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class WorkerChannel:
    def __init__(self, channel_layer: Any) -> None:
        self.layer = channel_layer
        self.name: str | None = None
        self._handlers: dict[str, Handler] = {}
        self._starting = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        #: Messages of a type no handler was registered for.
        self.dropped = 0

    def route(self, message_type: str, handler: Handler) -> None:
        self._handlers[message_type] = handler

    async def start(self) -> str:
        """Create the channel and start receiving (once; later calls return at once)."""
        if self.name is None:
            async with self._starting:
                if self.name is None:
                    name = await self.layer.new_channel("worker")
                    self._task = asyncio.get_running_loop().create_task(self._receive_loop(name), name="worker-channel")
                    self.name = name
        return self.name

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        await observer.current.layer_send(self.layer.send(channel, message), "relay")

    async def _receive_loop(self, name: str) -> None:
        while True:
            try:
                message = await self.layer.receive(name)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("channel layer receive failed; retrying")
                await asyncio.sleep(0.5)
                continue
            handler = self._handlers.get(message.get("type")) if isinstance(message, dict) else None
            if handler is None:
                self.dropped += 1
                continue
            try:
                await handler(message)
            except Exception:
                logger.exception("worker channel handler failed")
