"""The errors the security layer raises, each with a stable code.

They are the engine's :class:`~channels_socketio.errors.SocketIOError`, the
base the chat's errors share, so the chat reports them like its own;
``chat.errors.WIRE_ERRORS`` maps their codes to HTTP statuses and WebSocket
close codes like every other error.  None of
them ever carries the offending content: only a short, stable ``reason``.
"""

from __future__ import annotations

from typing import Any

from channels_socketio.errors import ConnectionRefused, SocketIOError


class MessageBlocked(SocketIOError):
    """The content looks like an injection attempt (``reason``: what kind, never the content)."""

    code = "message_blocked"
    default_message = "This message was blocked because it contains content that is not allowed."

    def __init__(self, reason: str, message: str | None = None, **details: Any) -> None:
        self.reason = reason
        super().__init__(message, reason=reason, **details)


class SpamDetected(SocketIOError):
    """The content or the sending pattern looks like spam (``reason``: which rule)."""

    code = "spam_detected"
    default_message = "This message looks like spam and was not sent."

    def __init__(self, reason: str, message: str | None = None, **details: Any) -> None:
        self.reason = reason
        super().__init__(message, reason=reason, **details)


class RateLimited(SocketIOError):
    """Too many requests; ``retryAfter`` (milliseconds) tells the client when to try again."""

    code = "rate_limited"
    default_message = "Too many requests; slow down and retry later."

    def __init__(self, retry_after_ms: int, message: str | None = None, **details: Any) -> None:
        self.retry_after_ms = max(0, int(retry_after_ms))
        super().__init__(message, retryAfter=self.retry_after_ms, **details)


class ConnectionLimitExceeded(ConnectionRefused):
    """The user already has the maximum number of simultaneous connections (``limit``)."""

    code = "connection_limit"
    default_message = "Too many simultaneous connections for this account; close one and retry."

    def __init__(self, limit: int, message: str | None = None, **details: Any) -> None:
        self.limit = limit
        super().__init__(message, limit=limit, **details)


class TooManyFailedConnects(ConnectionRefused):
    """This address failed to authenticate too often recently; ``retryAfter`` (ms) says when to try again."""

    code = "too_many_failed_connects"
    default_message = "Too many failed connection attempts from this address; retry later."

    def __init__(self, retry_after_ms: int, message: str | None = None, **details: Any) -> None:
        self.retry_after_ms = max(0, int(retry_after_ms))
        super().__init__(message, retryAfter=self.retry_after_ms, **details)
