"""An ASGI wrapper that bounds HTTP request bodies before the application parses anything.

Layer: security (an ASGI wrapper, like the origin and auth checks).

Django's ASGI handler reads a whole body (spooling it to disk past 2.5 MB)
before a view runs, and DRF's JSON parser then parses all of it: without a
bound, a client decides how much the server reads, stores and parses.  This
wrapper answers ``413`` with ``{"error", "code": "payload_too_large",
"maxBytes"}`` as soon as the declared ``Content-Length`` or the bytes
actually received pass the limit, and hands the application a body it has
already read (Django would have read it all anyway, so nothing is read twice).
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

CODE = "payload_too_large"


def too_large_body(limit: int, code: str = CODE) -> bytes:
    return json.dumps(
        {"error": f"Request body exceeds {limit} bytes.", "code": code, "maxBytes": limit}, separators=(",", ":")
    ).encode()


def declared_length(scope: Scope) -> int | None:
    """The ``Content-Length`` header as a number; ``-1`` when it is not one (refused like an oversized body)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) <= 18 else -1
    return None


class BodyLimit:
    """``BodyLimit(app, limit)``: ``limit`` is a number of bytes or a function returning one (read per request)."""

    def __init__(self, app: App, limit: int | Callable[[], int]) -> None:
        self.app = app
        self.limit = limit

    def _limit(self) -> int:
        return self.limit() if callable(self.limit) else self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit()
        declared = declared_length(scope)
        if declared is not None and not 0 <= declared <= limit:
            await self._refuse(send, limit)
            return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: nobody to answer
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                await self._refuse(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, limit: int, code: str = CODE) -> None:
        body = too_large_body(limit, code)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        # The rest of the body is not read: the connection closes after the answer.
        headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


class StreamingBodyLimit:
    """Like :class:`BodyLimit`, for large bodies (uploads): nothing is buffered here.

    The body goes to the application as it arrives, counted; once past the
    limit the application is told the client left (Django stops reading and
    drops what it spooled) and the client gets 413 with ``code``, unless the
    application had answered already.
    """

    def __init__(self, app: App, limit: Callable[[], int], code: str = CODE) -> None:
        self.app = app
        self.limit = limit
        self.code = code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        declared = declared_length(scope)
        if declared is not None and not 0 <= declared <= limit:
            await BodyLimit._refuse(send, limit, self.code)
            return
        received, over, started = 0, False, False

        async def counted() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def answer(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted, answer)
        if over and not started:
            await BodyLimit._refuse(send, limit, self.code)
