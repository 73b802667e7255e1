"""The Parlant-compatible HTTP API: an ASGI consumer at ``/parlant/<workspace>/[t/<token>/]``.

Layer: the Parlant-compatible API (a surface, like ``chat/api/`` and the
socket events).  Views are thin: check the caller, call the domain services
(:mod:`chat.services`), the message writer and agent runner the socket
events use, and the event log (:mod:`chat.parlant.log`); shape the answer
(:mod:`chat.parlant.shapes`).

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
is refused), the route, the caller (:mod:`chat.parlant.auth`), the REST
API's rate (``CHAT_API_RATE_LIMIT``, shared with ``/api/v1/``), the
caller's membership of the workspace (another workspace, or a session the
caller may not see, is a 404).  Posting a message then passes exactly the
socket send's checks: the ``send`` rate limit, content limits, screening
under the workspace's content policy (``chat.services.screening.screen_content``,
with strikes and security events), the mute; the text is stored as sent.
Creating a session counts against ``join``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from channels_socketio.transport.http_request import BoundedHttpConsumer
from chat.actions.messages import Author, Draft, SessionRef, post_message
from chat.errors import AgentNotFound, ChatError, NotAMember
from chat.ids import is_client_id, is_slug
from chat.models import Agent, ChatSession, ContentType, Membership
from chat.parlant import log
from chat.parlant.auth import authenticate
from chat.parlant.shapes import ApiError, agent_shape, invalid, not_found, session_shape, unprocessable
from chat.parlant.watch import Watcher, wait
from chat.services import access, api_rate, moderation, screening
from chat.services import messages as message_service
from chat.services import sessions as session_service
from chat.services.sessions import SessionExists
from security import events as security_events
from security.errors import RateLimited
from security.models import SecurityEventType

logger = logging.getLogger(__name__)

PREFIX = re.compile(r"^/parlant/(?P<workspace>[^/]*)(?:/t/(?P<token>[^/]*))?(?P<rest>/.*)?$")
#: Event ids: message ids, and ``<reply id>.<status>`` for a run's statuses.
EVENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,160}")

#: A stream with nothing to send says so this often (an SSE comment), so proxies keep it open.
KEEPALIVE_S = 15.0
#: After a wake-up, wait this long for what else comes with it (one read for a burst).
DEBOUNCE_S = 0.02
#: A wake-up that found nothing new is read again this soon: a reply's chunks are announced to the
#: session before the runner saves them (``agent_stream_save_s``, 0.25 s), so the save comes just after.
RECHECK_S = 0.3
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


# --- requests and answers ---------------------------------------------------------------------


@dataclass
class Call:
    """One request, once its route and caller are known."""

    scope: dict[str, Any]
    method: str
    workspace: str
    #: The path without the prefix and token (safe to show).
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: bytes
    user: Any = None
    membership: Membership | None = None

    def header(self, name: bytes) -> str | None:
        return header(self.scope, name)


@dataclass
class Json:
    status: int
    body: Any
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class Stream:
    """A ``text/event-stream`` answer: ``frames`` yields the bytes to send, as they come."""

    frames: AsyncIterator[bytes]


Handler = Callable[["ParlantConsumer", Call], Awaitable["Json | Stream"]]


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def sse_frame(event: dict[str, Any]) -> bytes:
    """Parlant's frame, ``data: <event JSON>``, preceded by ``id: <offset>`` (so ``Last-Event-ID`` resumes)."""
    return b"id: %d\ndata: %s\n\n" % (event["offset"], dumps(event))


# --- query and body parsing, with FastAPI's 422 bodies -------------------------------------------------

_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}


def query_value(call: Call, name: str) -> str | None:
    values = call.query.get(name)
    return values[-1] if values else None


def query_int(call: Call, name: str, default: int | None) -> int | None:
    raw = query_value(call, name)
    if raw is None:
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise invalid(
            ["query", name], "Input should be a valid integer, unable to parse string as an integer", "int_parsing", raw
        ) from None


def query_bool(call: Call, name: str, default: bool) -> bool:
    raw = query_value(call, name)
    if raw is None:
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise invalid(["query", name], "Input should be a valid boolean, unable to interpret input", "bool_parsing", raw)


def one_of(loc: list[Any], value: Any, allowed: tuple[str, ...]) -> str:
    if isinstance(value, str) and value in allowed:
        return value
    expected = ", ".join(f"'{a}'" for a in allowed[:-1]) + f" or '{allowed[-1]}'"
    raise invalid(loc, f"Input should be {expected}", "enum", value)


def json_object(call: Call) -> dict[str, Any]:
    try:
        body = json.loads(call.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise invalid(["body", 0], "JSON decode error", "json_invalid", {}) from None
    if not isinstance(body, dict):
        raise invalid(
            ["body"],
            "Input should be a valid dictionary or object to extract fields from",
            "model_attributes_type",
            body,
        )
    return body


def body_str(body: dict[str, Any], name: str, *, required: bool, max_length: int | None = None) -> str | None:
    if name not in body or body[name] is None:
        if required:
            raise invalid(["body", name], "Field required", "missing", body)
        return None
    value = body[name]
    if not isinstance(value, str):
        raise invalid(["body", name], "Input should be a valid string", "string_type", value)
    if max_length is not None and len(value) > max_length:
        raise invalid(["body", name], f"String should have at most {max_length} characters", "string_too_long", value)
    return value


# --- security helpers -------------------------------------------------------------------------------------


def record(scope: dict[str, Any], kind: str, *, user: Any = None, workspace: Any = None, **detail: Any) -> None:
    """A security event about this client, deduplicated as the socket path's are (never the token or the content)."""
    screening.record_client(scope, kind, user=user, workspace=workspace, surface="parlant", **detail)


def api_caller(call: Call, user: Any) -> api_rate.ApiCaller:
    return api_rate.ApiCaller(
        user=user,
        ip=security_events.client_ip(call.scope) or "",
        user_agent=security_events.user_agent(call.scope),
        surface="parlant",
        path=f"/parlant/{call.workspace}{call.path}",  # never the token
    )


def identify(call: Call, token: str | None) -> Any:
    """The caller's user (sync).  Failed authentications count against the address's
    anonymous rate, and an address over it is refused before its token is looked at."""
    anonymous = api_caller(call, AnonymousUser())
    retry_after_s = api_rate.hit(anonymous, count=False)
    if retry_after_s is not None:
        raise RateLimited(retry_after_s * 1000)
    try:
        return authenticate(token)
    except ChatError:
        api_rate.hit(anonymous)
        raise


def admit(call: Call) -> Membership:
    """The authenticated caller's membership (sync), after the HTTP APIs' rate."""
    user, workspace = call.user, call.workspace
    retry_after_s = api_rate.hit(api_caller(call, user))
    if retry_after_s is not None:
        raise RateLimited(retry_after_s * 1000)
    if not is_slug(workspace):
        raise NotAMember()
    membership = access.membership_for(user, workspace)
    membership.user = user
    return membership


# --- the consumer -----------------------------------------------------------------------------------------


class ParlantConsumer(BoundedHttpConsumer):
    def __init__(self, watcher: Watcher) -> None:
        super().__init__()
        self.watcher = watcher

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
            answer = await handler(self, call)
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


# --- handlers ---------------------------------------------------------------------------------------------


def _session(call: Call) -> ChatSession:
    key = call.params["session"]
    if not is_client_id(key):
        raise ApiError(404, "Session not found", "session_not_found")
    assert call.membership is not None
    return session_service.get_session(call.membership, key)


async def read_agent(self: ParlantConsumer, call: Call) -> Json:
    key = call.params["agent"]

    def load() -> Agent | None:
        if not is_client_id(key):
            return None
        assert call.membership is not None
        return Agent.objects.filter(workspace_id=call.membership.workspace_id, key=key).first()

    agent = await database_sync_to_async(load)()
    if agent is None:
        raise ApiError.of(AgentNotFound("Agent not found"))
    return Json(200, agent_shape(agent))


async def create_session(self: ParlantConsumer, call: Call) -> Json:
    body = json_object(call)
    agent_key = body_str(body, "agent_id", required=True)
    title = body_str(body, "title", required=False, max_length=200)
    body_str(body, "customer_id", required=False)  # checked, not used: the session's customer is the caller
    query_bool(call, "allow_greeting", False)  # checked, not used: our agents answer messages, they do not greet
    await screening.limiter().check("join", call.user.pk)

    def create() -> dict[str, Any]:
        assert call.membership is not None and agent_key is not None
        for _ in range(3):
            try:
                session = session_service.create_session(
                    call.membership, secrets.token_urlsafe(16), title=title or "", agent_key=agent_key
                )
            except SessionExists:
                continue  # 128 random bits: not in practice
            session.created_by = call.user
            return session_shape(session)
        raise ChatError()

    return Json(201, await database_sync_to_async(create)())


async def read_session(self: ParlantConsumer, call: Call) -> Json:
    return Json(200, await database_sync_to_async(lambda: session_shape(_session(call)))())


def _list_query(call: Call) -> log.Query:
    kinds = tuple(k for k in (query_value(call, "kinds") or "").split(",") if k)
    for kind in kinds:
        one_of(["query", "kinds"], kind, log.KINDS)
    source = query_value(call, "source")
    if source is not None:
        one_of(["query", "source"], source, log.SOURCES)
    min_offset = max(0, query_int(call, "min_offset", 0) or 0)
    resume = call.header(b"last-event-id")
    if resume is not None and resume.strip().isdigit():
        min_offset = max(min_offset, int(resume.strip()) + 1)  # an EventSource reconnecting
    correlation = query_value(call, "trace_id") or query_value(call, "correlation_id")
    return log.Query(min_offset, kinds, source, correlation)


def _wait_for_data(call: Call) -> float:
    """Parlant's ``wait_for_data`` (default 60 s), capped at ``CHAT_PARLANT_MAX_WAIT_S``."""
    requested = query_int(call, "wait_for_data", 60) or 0
    return float(max(0, min(requested, settings.CHAT.parlant_max_wait_s)))


def _synced_read(session: ChatSession, query: log.Query, moderates: bool, complete_only: bool) -> list[dict[str, Any]]:
    log.sync(session)
    return log.read(session, query, moderates=moderates, complete_only=complete_only)


def _synced_read_one(session: ChatSession, key: str, moderates: bool) -> dict[str, Any] | None:
    log.sync(session)
    return log.read_one(session, key, moderates=moderates)


async def list_events(self: ParlantConsumer, call: Call) -> Json | Stream:
    query = _list_query(call)
    wait_s = _wait_for_data(call)
    sse = query_bool(call, "sse", False)
    session = await database_sync_to_async(_session)(call)
    moderates = bool(call.membership and call.membership.moderates)
    if sse:
        return Stream(events_stream(self.watcher, session, query, wait_s, moderates))
    read = database_sync_to_async(_synced_read)
    if wait_s <= 0:
        return Json(200, await read(session, query, moderates, True))
    deadline = asyncio.get_running_loop().time() + wait_s
    recheck = False
    async with self.watcher.watch(session.workspace.slug, session.key) as woken:
        while True:
            woken.clear()
            events = await read(session, query, moderates, True)
            if events:
                return Json(200, events)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                # Parlant's answer when nothing arrived in time.
                raise ApiError(504, "Request timed out", "request_timeout")
            recheck = await wait(woken, min(remaining, RECHECK_S) if recheck else remaining)
            if recheck:
                await asyncio.sleep(DEBOUNCE_S)


async def events_stream(
    watcher: Watcher, session: ChatSession, query: log.Query, wait_s: float, moderates: bool
) -> AsyncIterator[bytes]:
    """SSE: every event from ``query.min_offset`` on as it is logged; closes after ``wait_s`` without one."""
    loop = asyncio.get_running_loop()
    read = database_sync_to_async(_synced_read)
    current = query
    idle_since = last_sent = loop.time()
    recheck = False
    async with watcher.watch(session.workspace.slug, session.key) as woken:
        while True:
            woken.clear()
            events = await read(session, current, moderates, False)
            for event in events:
                yield sse_frame(event)
                current = replace(current, min_offset=event["offset"] + 1)
            now = loop.time()
            if events:
                idle_since = last_sent = now
                continue
            remaining = wait_s - (now - idle_since)
            if remaining <= 0:
                return
            timeout = min(remaining, KEEPALIVE_S - (now - last_sent), RECHECK_S if recheck else KEEPALIVE_S)
            recheck = await wait(woken, timeout)
            if recheck:
                await asyncio.sleep(DEBOUNCE_S)
            elif loop.time() - last_sent >= KEEPALIVE_S:
                yield b": keep-alive\n\n"
                last_sent = loop.time()


async def create_event(self: ParlantConsumer, call: Call) -> Json:
    body = json_object(call)
    kind = one_of(["body", "kind"], body.get("kind"), log.KINDS)
    source = one_of(["body", "source"], body.get("source"), log.SOURCES)
    text = body_str(body, "message", required=False)
    if query_value(call, "moderation") is not None:
        # Checked, not used: every message is screened as a socket send is.
        one_of(["query", "moderation"], query_value(call, "moderation"), ("auto", "paranoid", "none"))
    if kind != "message":
        raise unprocessable("Only message events can be added here.")
    if source not in (log.CUSTOMER, log.HUMAN_AGENT, log.ON_BEHALF):
        raise unprocessable(
            'Only "customer", "human_agent", and "human_agent_on_behalf_of_ai_agent" sources are supported '
            "for direct posting."
        )
    if not text:
        raise unprocessable("Missing 'message' field for event")
    user, membership = call.user, call.membership
    assert membership is not None
    session = await database_sync_to_async(_session)(call)
    sender, metadata = await database_sync_to_async(_sender)(source, session, membership, user)
    # The socket send's path: limits, checks, screening, storing and announcing (chat.actions.messages).
    key = f"p-{secrets.token_urlsafe(16)}"
    await post_message(
        Author(sender, user, call.scope, "parlant"),
        SessionRef(session.pk, session.key, session.workspace_id, session.workspace.slug),
        Draft(key, text, ContentType.TEXT, metadata),
    )
    event = await database_sync_to_async(_synced_read_one)(session, key, True)
    if event is None:  # pragma: no cover - it was just stored and logged
        raise ChatError()
    return Json(201, event)


def _sender(
    source: str, session: ChatSession, membership: Membership, user: Any
) -> tuple[message_service.Sender, dict[str, Any]]:
    """Who a posted message is from, by its Parlant source; refuses what the caller may not post as."""
    moderation.check_can_send(membership)
    if source == log.CUSTOMER:
        return message_service.Sender.for_user(user), {}
    if source == log.HUMAN_AGENT:
        if not membership.moderates:
            raise ApiError(403, "Only moderators and admins post as human agents.", "forbidden")
        return message_service.Sender.for_user(user), {}
    # On the agent's behalf: moderators, or the session's creator for its opening message
    # (parlant-chat-react posts its agentOpeningMessage so when it creates a session).
    opening = session.created_by_id == user.pk and session.last_seq == 0
    if not (membership.moderates or opening):
        raise ApiError(
            403,
            "Only moderators and admins, or a new session's creator for its first message, post for the agent.",
            "forbidden",
        )
    if session.agent is None:
        raise unprocessable("This session has no agent.")
    metadata = {log.ON_BEHALF_METADATA: log.ON_BEHALF, "postedBy": user.get_username()}
    return message_service.Sender.for_agent(session.agent), metadata


async def read_event(self: ParlantConsumer, call: Call) -> Json | Stream:
    key = call.params["event"]
    wait_s = _wait_for_data(call)
    sse = query_bool(call, "sse", False)
    completion = query_bool(call, "wait_for_completion", False)
    if not EVENT_ID.fullmatch(key):
        raise ApiError(404, "Event not found", "event_not_found")
    session = await database_sync_to_async(_session)(call)
    moderates = bool(call.membership and call.membership.moderates)
    read_one = database_sync_to_async(_synced_read_one)
    if await read_one(session, key, moderates) is None:
        raise ApiError(404, "Event not found", "event_not_found")
    if sse:
        return Stream(event_updates(self.watcher, session, key, wait_s, moderates))
    # Parlant: the event as it is, or with wait_for_completion once its chunks end (or the wait is over).
    latest = None
    async for update in _updates(self.watcher, session, key, wait_s if completion else 0.0, moderates):
        latest = update
    if latest is None:
        raise ApiError(404, "Event not found", "event_not_found")
    return Json(200, latest)


def _chunk_count(event: dict[str, Any]) -> int:
    chunks = event["data"].get("chunks") if isinstance(event["data"], dict) else None
    return len(chunks) if isinstance(chunks, list) else -1


async def _updates(
    watcher: Watcher, session: ChatSession, key: str, wait_s: float, moderates: bool
) -> AsyncIterator[dict[str, Any]]:
    """The event now, then each time a streaming reply gets new chunks, until it ends (or ``wait_s`` idle)."""
    loop = asyncio.get_running_loop()
    read_one = database_sync_to_async(_synced_read_one)
    seen = None
    idle_since = loop.time()
    recheck = False
    async with watcher.watch(session.workspace.slug, session.key) as woken:
        while True:
            woken.clear()
            event = await read_one(session, key, moderates)
            if event is None:
                return  # hidden meanwhile
            count = _chunk_count(event)
            if count != seen:
                yield event
                seen, idle_since = count, loop.time()
            if not log.streaming(event):
                return
            remaining = wait_s - (loop.time() - idle_since)
            if remaining <= 0:
                return
            recheck = await wait(woken, min(remaining, RECHECK_S if recheck else KEEPALIVE_S))
            if recheck:
                await asyncio.sleep(DEBOUNCE_S)


async def event_updates(
    watcher: Watcher, session: ChatSession, key: str, wait_s: float, moderates: bool
) -> AsyncIterator[bytes]:
    """SSE of one event: sent again whenever a streaming reply grows; closes once its chunks end."""
    async for event in _updates(watcher, session, key, wait_s, moderates):
        yield sse_frame(event)


#: (name, path pattern after the prefix, method -> handler).  Fixed functions: nothing is looked up by a client's name.
ROUTES: list[tuple[str, re.Pattern[str], dict[str, Handler]]] = [
    ("read_agent", re.compile(r"/agents/(?P<agent>[^/]+)/?"), {"GET": read_agent}),
    ("sessions", re.compile(r"/sessions/?"), {"POST": create_session}),
    ("read_session", re.compile(r"/sessions/(?P<session>[^/]+)/?"), {"GET": read_session}),
    ("events", re.compile(r"/sessions/(?P<session>[^/]+)/events/?"), {"GET": list_events, "POST": create_event}),
    ("read_event", re.compile(r"/sessions/(?P<session>[^/]+)/events/(?P<event>[^/]+)/?"), {"GET": read_event}),
]
