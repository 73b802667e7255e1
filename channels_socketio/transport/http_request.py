"""An HTTP consumer that reads a bounded body, then answers in a task a disconnect can cancel.

Layer: transport.

Long-polling (``channels_socketio.transport.polling``) and an application's
own long-held endpoints (the chat's Parlant-compatible API) both hold
requests open and both take request bodies from clients: a body over the limit is counted but not kept (the subclass answers
413 with ``self.too_large`` set), and the answer runs in its own task, so
that ``http.disconnect`` can stop a request still waiting while letting one
that writes finish.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer


class BoundedHttpConsumer(AsyncHttpConsumer):
    # Requests are woken through the worker's channel (or its room fan-out),
    # never through a channel of their own, so the consumer does not create one.
    channel_layer_alias = None

    def __init__(self) -> None:
        super().__init__()
        self.too_large = False
        self._received = 0
        self._request: asyncio.Task[None] | None = None

    def max_body(self) -> int:
        """The most body bytes kept."""
        raise NotImplementedError

    def cancel_on_disconnect(self) -> bool:
        """Whether a request still running when the client goes away is cancelled."""
        raise NotImplementedError

    async def respond(self, body: bytes) -> None:
        """Answer the request (its body, empty when ``too_large``)."""
        raise NotImplementedError

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Only the two ASGI message types exist here; no name-based lookup,
        # and no per-message database housekeeping on the hot path.
        if message["type"] == "http.request":
            await self.http_request(message)
        elif message["type"] == "http.disconnect":
            await self.http_disconnect(message)

    async def http_request(self, message: dict[str, Any]) -> None:
        chunk = message.get("body", b"")
        self._received += len(chunk)
        if self._received > self.max_body():
            self.too_large = True
            self.body.clear()
        elif not self.too_large:
            self.body.append(chunk)
        if not message.get("more_body", False) and self._request is None:
            self._request = asyncio.create_task(self.respond(b"".join(self.body)))

    async def http_disconnect(self, message: dict[str, Any]) -> None:
        if self._request is not None and not self._request.done() and self.cancel_on_disconnect():
            self._request.cancel()
        raise StopConsumer()
