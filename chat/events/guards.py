"""The security checks every socket event passes: limits, content screening, security events.

Layer: chat application, calling the services of ``security/``.

One limiter, repeat tracker and connection tracker per worker process (their
Redis clients belong to its event loop), built on first use.  Security
events for attacker-triggerable failures are recorded once per user,
operation and window, so a flood cannot flood the log or the table.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from channels_socketio.protocol.socket import Socket
from chat.errors import ChatError
from security import events
from security.connections import ConnectionTracker, connections_from_settings
from security.content import RepeatTracker, check_content, repeat_tracker_from_settings, sanitize
from security.errors import MessageBlocked, RateLimited, SpamDetected
from security.models import SecurityEventType
from security.ratelimit import RateLimiter, limiter_from_settings

#: Error codes of handler failures that are security events, and which.
SECURITY_EVENT_OF_CODE = {
    "not_a_member": SecurityEventType.UNAUTHORIZED_ACCESS_ATTEMPT,
    "forbidden": SecurityEventType.UNAUTHORIZED_ACCESS_ATTEMPT,
    "not_joined": SecurityEventType.SESSION_VALIDATION_FAILED,
    "session_not_found": SecurityEventType.SESSION_VALIDATION_FAILED,
}
#: At most one event per user and kind within this many seconds.
EVENT_DEDUP_S = 60.0
_DEDUP_MAX_KEYS = 50_000


@cache
def limiter() -> RateLimiter:
    return limiter_from_settings()


@cache
def repeats() -> RepeatTracker:
    return repeat_tracker_from_settings(limiter().backend)


@cache
def connections() -> ConnectionTracker:
    tracker = connections_from_settings()
    tracker.start_heartbeat()
    return tracker


_last_recorded: dict[tuple[Any, str], float] = {}


def record(socket: Socket, kind: str, *, workspace: Any = None, session_key: str = "", **detail: Any) -> None:
    """Record a security event about this socket's user, once per kind and window."""
    record_client(socket.scope, kind, user=socket.user, workspace=workspace, session_key=session_key, **detail)


def record_client(
    scope: dict[str, Any], kind: str, *, user: Any = None, workspace: Any = None, session_key: str = "", **detail: Any
) -> None:
    """Record a security event about the client of ``scope``, once per kind and window.

    Attempts repeat at the attacker's pace: the window keeps the log (and
    the database) from growing with them.  Never pass a token or content.
    """
    who = getattr(user, "pk", None) or events.client_ip(scope)
    reasons = ":".join(str(detail.get(name, "")) for name in ("operation", "reason", "code"))
    key = (who, f"{kind}:{reasons}")
    now = time.monotonic()
    if now - _last_recorded.get(key, -EVENT_DEDUP_S) < EVENT_DEDUP_S:
        return
    if len(_last_recorded) >= _DEDUP_MAX_KEYS:
        _last_recorded.clear()
    _last_recorded[key] = now
    events.record(kind, user=user, workspace=workspace, session_key=session_key, scope=scope, detail=detail)


async def admit(socket: Socket) -> None:
    """Take one of the user's connection slots (raises ``ConnectionLimitExceeded``)."""
    await connections().acquire_or_raise(socket.user.pk, socket.id)


async def release(socket: Socket) -> None:
    await connections().release(socket.user.pk, socket.id)


async def limit(socket: Socket, operation: str) -> None:
    """Count one ``operation`` for the socket's user; raise ``RateLimited`` when over."""
    try:
        await limiter().check(operation, socket.user.pk)
    except RateLimited:
        record(socket, SecurityEventType.RATE_LIMIT_EXCEEDED, operation=operation)
        raise


async def screen(socket: Socket, content: str, content_type: str, *, workspace_id: int, session_key: str) -> str:
    """Refuse hostile or spammy content; return the sanitised content to store."""
    try:
        check_content(content)
        await repeats().check(socket.user.pk, content)
    except (MessageBlocked, SpamDetected) as error:
        await limiter().strike(socket.user.pk)
        blocked = isinstance(error, MessageBlocked)
        kind = SecurityEventType.MESSAGE_BLOCKED if blocked else SecurityEventType.SUSPICIOUS_ACTIVITY
        record(socket, kind, workspace=workspace_id, session_key=session_key, **error.details)
        raise
    return sanitize(content, content_type)


def failed(socket: Socket, error: ChatError, payload: Any) -> None:
    """A handler failed: record it when the failure is a security event."""
    kind = SECURITY_EVENT_OF_CODE.get(error.code)
    if kind is None or socket.user is None:
        return
    session_key = payload.get("sessionId") if isinstance(payload, dict) else None
    session_key = session_key[:128] if isinstance(session_key, str) else ""
    record(socket, kind, session_key=session_key, code=error.code)
