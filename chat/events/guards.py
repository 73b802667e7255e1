"""The security checks every socket event passes: limits, content screening, security events.

Layer: chat surfaces (the socket events), calling ``chat.services.screening``
(shared with the REST and Parlant-compatible APIs) and ``security/``.

One connection tracker per worker process (its Redis client belongs to its
event loop), built on first use; the limiter, repeat tracker and the
once-per-window event log are :mod:`chat.services.screening`'s.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings

from channels_socketio.protocol.socket import Socket
from chat.errors import ChatError
from chat.services import screening
from chat.services.screening import limiter, record_client, repeats  # noqa: F401 (the socket events' names for them)
from security.connect_attempts import FailedConnects
from security.connections import ConnectionTracker, connections_from_settings
from security.errors import RateLimited
from security.models import SecurityEventType

#: Error codes of handler failures that are security events, and which.
SECURITY_EVENT_OF_CODE = {
    "not_a_member": SecurityEventType.UNAUTHORIZED_ACCESS_ATTEMPT,
    "forbidden": SecurityEventType.UNAUTHORIZED_ACCESS_ATTEMPT,
    "not_joined": SecurityEventType.SESSION_VALIDATION_FAILED,
    "session_not_found": SecurityEventType.SESSION_VALIDATION_FAILED,
}


@cache
def connections() -> ConnectionTracker:
    tracker = connections_from_settings()
    tracker.start_heartbeat()
    return tracker


@cache
def failed_connects() -> FailedConnects:
    """Failed CONNECTs per address, counted on the limiter's backend."""
    return FailedConnects(limiter(), settings.CHAT.connect_failure_limit)


def record(socket: Socket, kind: str, *, workspace: Any = None, session_key: str = "", **detail: Any) -> None:
    """Record a security event about this socket's user, once per kind and window."""
    record_client(socket.scope, kind, user=socket.user, workspace=workspace, session_key=session_key, **detail)


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


async def screen(socket: Socket, content: str, *, workspace_id: int, session_key: str) -> None:
    """Screen a socket send's content (:func:`chat.services.screening.screen_content`)."""
    await screening.screen_content(
        socket.scope, socket.user, content, workspace_id=workspace_id, session_key=session_key, surface="socket"
    )


def failed(socket: Socket, error: ChatError, payload: Any) -> None:
    """A handler failed: record it when the failure is a security event."""
    kind = SECURITY_EVENT_OF_CODE.get(error.code)
    if kind is None or socket.user is None:
        return
    session_key = payload.get("sessionId") if isinstance(payload, dict) else None
    session_key = session_key[:128] if isinstance(session_key, str) else ""
    record(socket, kind, session_key=session_key, code=error.code)
