"""The Parlant-compatible endpoints, and :data:`ROUTES`, which maps paths to them.

Thin, as every surface: the caller is already admitted (:mod:`chat.parlant.gate`);
an endpoint calls the actions and services, reads the event log
(:mod:`chat.parlant.log`) and shapes the answer (:mod:`chat.parlant.shapes`).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import replace
from typing import Any, AsyncIterator

from channels.db import database_sync_to_async
from django.conf import settings

from chat.actions.messages import Author, Draft, SessionRef, post_message
from chat.errors import AgentNotFound, ChatError
from chat.ids import is_client_id
from chat.models import Agent, ChatSession, ContentType, Membership
from chat.parlant import log
from chat.parlant.requests import (
    Call,
    Handler,
    Json,
    Stream,
    body_str,
    json_object,
    one_of,
    query_bool,
    query_int,
    query_value,
    sse_frame,
)
from chat.parlant.shapes import ApiError, agent_shape, session_shape, unprocessable
from chat.parlant.watch import Watcher, wait
from chat.services import messages as message_service
from chat.services import moderation, screening
from chat.services import sessions as session_service
from chat.services.sessions import SessionExists

#: Event ids: message ids, and ``<reply id>.<status>`` for a run's statuses.
EVENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,160}")
#: A stream with nothing to send says so this often (an SSE comment), so proxies keep it open.
KEEPALIVE_S = 15.0
#: After a wake-up, wait this long for what else comes with it (one read for a burst).
DEBOUNCE_S = 0.02
#: A wake-up that found nothing new is read again this soon: a reply's chunks are announced to the
#: session before the runner saves them (``agent_stream_save_ms``, 250 ms), so the save comes just after.
RECHECK_S = 0.3


# --- handlers ---------------------------------------------------------------------------------------------


def _session(call: Call) -> ChatSession:
    key = call.params["session"]
    if not is_client_id(key):
        raise ApiError(404, "Session not found", "session_not_found")
    assert call.membership is not None
    return session_service.get_session(call.membership, key)


async def read_agent(watcher: Watcher, call: Call) -> Json:
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


async def create_session(watcher: Watcher, call: Call) -> Json:
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


async def read_session(watcher: Watcher, call: Call) -> Json:
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


async def list_events(watcher: Watcher, call: Call) -> Json | Stream:
    query = _list_query(call)
    wait_s = _wait_for_data(call)
    sse = query_bool(call, "sse", False)
    session = await database_sync_to_async(_session)(call)
    moderates = bool(call.membership and call.membership.moderates)
    if sse:
        return Stream(events_stream(watcher, session, query, wait_s, moderates))
    read = database_sync_to_async(_synced_read)
    if wait_s <= 0:
        return Json(200, await read(session, query, moderates, True))
    deadline = asyncio.get_running_loop().time() + wait_s
    recheck = False
    async with watcher.watch(session.workspace.slug, session.key) as woken:
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


async def create_event(watcher: Watcher, call: Call) -> Json:
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


async def read_event(watcher: Watcher, call: Call) -> Json | Stream:
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
        return Stream(event_updates(watcher, session, key, wait_s, moderates))
    # Parlant: the event as it is, or with wait_for_completion once its chunks end (or the wait is over).
    latest = None
    async for update in _updates(watcher, session, key, wait_s if completion else 0.0, moderates):
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
