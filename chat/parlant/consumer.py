"""The Parlant-compatible HTTP API: an ASGI consumer at ``/parlant/<workspace>/[t/<token>/]``.

Layer: the Parlant-compatible API (a surface, like ``chat/api/`` and the
socket events).  This module routes a request, answers CORS, passes the
caller through :mod:`chat.parlant.gate` and sends what the endpoint
(:mod:`chat.parlant.endpoints`) answers, as JSON or SSE.

Why an ASGI consumer rather than Django views: long-polls and SSE streams
wait up to a minute; here they wait on the event loop, never pinning a
thread, and the client going away (``http.disconnect``) cancels the wait.
The path can hold a token, so nothing here ever logs a path (and Django's
request logging, which would, never sees these requests).

Routes -- Parlant's paths, after the prefix (``docs/parlant-compat.md``)::

    GET  agents/{agent_id}                      read an agent
    POST sessions                               create a session
    GET  sessions/{session_id}                  read a session
    GET  sessions/{session_id}/events           list events (long-poll, or SSE with sse=true)
    POST sessions/{session_id}/events           post a message event
    GET  sessions/{session_id}/events/{event_id}  read an event (wait, or SSE until a streaming reply ends)

Every request, in order: CORS (an ``Origin`` not in ``CHAT_ALLOWED_ORIGINS``
is refused), the route, the caller (:mod:`chat.parlant.auth`; failed
authentications count against the address, which is refused before its
token is looked at once over the rate), the REST API's rate (``CHAT_API_RATE_LIMIT``, shared with ``/api/v1/``), the
caller's membership of the workspace (another workspace, or a session the
caller may not see, is a 404).  Posting a message then passes exactly the
socket send's checks: the ``send`` rate limit, content limits, screening
under the workspace's content policy (``chat.services.screening.screen_content``,
with strikes and security events), the mute; the text is stored as sent.
Creating a session counts against ``join``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import ExitStack
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings

from channels_socketio.transport.http_request import BoundedHttpConsumer
from chat.errors import ChatError
from chat.parlant.endpoints import ROUTES
from chat.parlant.gate import OpenRequests, admit, identify, record
from chat.parlant.requests import (
    Call,
    Handler,
    Json,
    Stream,
    dumps,
    header,
)
from chat.parlant.shapes import ApiError, not_found
from chat.parlant.watch import Watcher
from security.models import SecurityEventType

PREFIX = re.compile(r"^/parlant/(?P<workspace>[^/]*)(?:/t/(?P<token>[^/]*))?(?P<rest>/.*)?$")
#: Headers a browser may send in a CORS request (parlant-client's own ``X-Fern-*`` among them).
ALLOWED_HEADERS = "content-type, authorization, last-event-id, x-fern-language, x-fern-runtime, x-fern-runtime-version"
JSON_TYPE = b"application/json"
SSE_TYPE = b"text/event-stream; charset=utf-8"

#: Security events for failures that are attempts, once per client and kind per window (as for sockets).
SECURITY_EVENT_OF_CODE = {
    "unauthenticated": SecurityEventType.AUTHENTICATION_FAILED,
    "not_a_member": SecurityEventType.UNAUTHORIZED_ACCESS_ATTEMPT,
    "forbidden": SecurityEventType.UNAUTHORIZED_ACCESS_ATTEMPT,
    "session_not_found": SecurityEventType.SESSION_VALIDATION_FAILED,
}

logger = logging.getLogger(__name__)


# --- the consumer -----------------------------------------------------------------------------------------


class ParlantConsumer(BoundedHttpConsumer):
    def __init__(self, watcher: Watcher, open_requests: OpenRequests) -> None:
        super().__init__()
        self.watcher = watcher
        self.open_requests = open_requests

    def max_body(self) -> int:
        # The REST API's bound: bodies over it are counted, never kept or parsed.
        return settings.CHAT.api_body_max_bytes

    def cancel_on_disconnect(self) -> bool:
        # A waiting GET (long-poll, stream) stops; a POST finishes: what it stores must be stored whole.
        return self.scope["method"] != "POST"

    # --- one request ---

    async def respond(self, body: bytes) -> None:
        method = self.scope["method"]
        origin = header(self.scope, b"origin")
        cors = self._cors(origin)
        route = ""
        call: Call | None = None
        with ExitStack() as held:  # what the request holds open, released however it ends
            try:
                if origin is not None and not cors:
                    raise ApiError(403, "Origin not allowed.", "forbidden")
                if method == "OPTIONS":
                    await self._send_json(Json(204, None, self._preflight()), cors)
                    return
                call, handler, route, token = self._route(method, body)
                if self.too_large:
                    raise ApiError(413, f"Request body exceeds {self.max_body()} bytes.", "payload_too_large")
                call.user = await database_sync_to_async(identify)(call, token or self._bearer())
                call.membership = await database_sync_to_async(admit)(call)
                held.enter_context(self.open_requests.hold(call.user.pk))
                answer = await handler(self.watcher, call)
            except asyncio.CancelledError:
                raise
            except ApiError as error:
                answer = self._error(error)
            except ChatError as error:
                self._record_failure(error, route, call.user if call is not None else None)
                answer = self._error(ApiError.of(error))
            except Exception:
                logger.exception("parlant %s request failed", route or "unrouted")
                answer = Json(500, {"detail": "Internal Server Error", "code": "internal"})
            if isinstance(answer, Stream):
                await self._send_stream(answer, cors)
            else:
                await self._send_json(answer, cors)

    def _route(self, method: str, body: bytes) -> tuple[Call, Handler, str, str | None]:
        match = PREFIX.match(self.scope["path"])
        if match is None:
            raise not_found()
        rest = match.group("rest") or "/"
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        for name, pattern, methods in ROUTES:
            found = pattern.fullmatch(rest)
            if found is None:
                continue
            handler = methods.get(method)
            if handler is None:
                raise ApiError(405, "Method Not Allowed", "method_not_allowed")
            call = Call(self.scope, method, match.group("workspace"), rest, found.groupdict(), query, body)
            return call, handler, name, match.group("token")
        raise not_found()

    def _bearer(self) -> str | None:
        value = header(self.scope, b"authorization") or ""
        scheme, _, token = value.partition(" ")
        return token.strip() or None if scheme == "Bearer" else None

    def _record_failure(self, error: ChatError, route: str, user: Any) -> None:
        kind = SECURITY_EVENT_OF_CODE.get(error.code)
        if kind is not None:
            reason = error.details.get("reason", "") if error.code == "unauthenticated" else ""
            record(self.scope, kind, user=user, code=error.code, reason=reason, operation=route)

    # --- CORS and sending ---

    def _cors(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        if origin is None or not settings.CHAT.origin_allowed(origin):
            return []
        return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]

    def _preflight(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", b"600"),
        ]

    @staticmethod
    def _error(error: ApiError) -> Json:
        headers = []
        if error.status == 429:
            retry_ms = error.details.get("retryAfter")
            seconds = max(1, -(-int(retry_ms) // 1000)) if isinstance(retry_ms, int) else 1
            headers.append((b"retry-after", str(seconds).encode()))
        return Json(error.status, error.body(), headers)

    async def _send_json(self, answer: Json, cors: list[tuple[bytes, bytes]]) -> None:
        headers = [
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
            *cors,
            *answer.headers,
        ]
        body = b""
        if answer.status != 204:
            headers.insert(0, (b"content-type", JSON_TYPE))
            body = dumps(answer.body)
        await self.send_response(answer.status, body, headers=headers)

    async def _send_stream(self, answer: Stream, cors: list[tuple[bytes, bytes]]) -> None:
        headers = [
            (b"content-type", SSE_TYPE),
            (b"cache-control", b"no-cache"),
            (b"x-content-type-options", b"nosniff"),
            (b"x-accel-buffering", b"no"),  # nginx: pass each frame on at once
            *cors,
        ]
        await self.send_headers(status=200, headers=headers)
        # Daphne (twisted) holds the headers until body bytes come; an empty chunk sends them now, so the
        # client sees the stream open even when the first event is a while away.
        await self.send_body(b"", more_body=True)
        try:
            async for frame in answer.frames:
                await self.send_body(frame, more_body=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("parlant event stream failed")
        await self.send_body(b"", more_body=False)
