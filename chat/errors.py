"""Every error the server can answer with, each with a stable machine code.

This is the bottom layer: it imports nothing from the project, so the wire
codec, the transports, the protocol core and the chat application all raise
these same types.  How an error is shown on the wire (an Engine.IO HTTP
error, a Socket.IO ``CONNECT_ERROR``, a ``*-error`` event, a WebSocket close
code, a REST status) is decided in one table, :data:`WIRE_ERRORS`, so a code
means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ChatError(Exception):
    """Base of every error the server reports to a client.

    ``code`` is stable and machine-readable; ``message`` is a sentence for a
    person; ``details`` carries extra fields the client may use (ids,
    ``retryAfter``...).  Nothing in here may contain a secret or a message body.
    """

    code: str = "internal"
    default_message: str = "Internal server error."

    def __init__(self, message: str | None = None, *, code: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        self.details = details
        super().__init__(self.message)

    def as_payload(self) -> dict[str, Any]:
        """The body of a ``*-error`` event or an ack ``{ok: false, ...}``."""
        return {"error": self.message, "code": self.code, **self.details}


# --- wire protocol ---------------------------------------------------------


class ProtocolError(ChatError):
    """Bytes on the wire that do not form a valid Engine.IO or Socket.IO packet."""

    code = "invalid_packet"
    default_message = "Invalid packet."


class PayloadTooLarge(ProtocolError):
    code = "payload_too_large"
    default_message = "Payload exceeds the maximum size."


class EngineRequestError(ChatError):
    """An Engine.IO HTTP request the server refuses, with the spec's numeric code.

    The Engine.IO reference server answers these with a JSON body
    ``{"code": n, "message": "..."}``; clients and test suites rely on both.
    """

    code = "bad_request"
    engine_code = 3
    default_message = "Bad request"
    status = 400


class UnknownTransport(EngineRequestError):
    code, engine_code, default_message = "unknown_transport", 0, "Transport unknown"


class UnknownSession(EngineRequestError):
    code, engine_code, default_message = "unknown_session", 1, "Session ID unknown"


class BadHandshakeMethod(EngineRequestError):
    code, engine_code, default_message = "bad_handshake_method", 2, "Bad handshake method"


class BadRequest(EngineRequestError):
    code, engine_code, default_message = "bad_request", 3, "Bad request"


class Forbidden(EngineRequestError):
    code, engine_code, default_message, status = "forbidden", 4, "Forbidden", 403


class UnsupportedProtocolVersion(EngineRequestError):
    code, engine_code, default_message = "unsupported_protocol_version", 5, "Unsupported protocol version"


# --- Socket.IO connection --------------------------------------------------


class ConnectionRefused(ChatError):
    """Raised by a namespace's connect handler; sent as ``CONNECT_ERROR``."""

    code = "connection_refused"
    default_message = "Connection refused."


class InvalidNamespace(ConnectionRefused):
    code = "invalid_namespace"
    default_message = "Invalid namespace"


# --- application ------------------------------------------------------------


class InvalidPayload(ChatError):
    code = "invalid_payload"
    default_message = "The event payload is not valid."


class AckTimeout(ChatError):
    code = "ack_timeout"
    default_message = "The client did not acknowledge in time."


class Unauthenticated(ConnectionRefused):
    code = "unauthenticated"
    default_message = "Authentication required: pass a valid token in the auth payload."


class NotAMember(ChatError):
    code = "not_a_member"
    default_message = "You are not a member of this workspace."


class PermissionDenied(ChatError):
    code = "forbidden"
    default_message = "You do not have access to this session."


class SessionNotFound(ChatError):
    code = "session_not_found"
    default_message = "No such session."


class AgentNotFound(ChatError):
    code = "agent_not_found"
    default_message = "No such agent in this workspace."


class SessionClosed(ChatError):
    code = "session_closed"
    default_message = "This session is closed."


class NotJoined(ChatError):
    code = "not_joined"
    default_message = "Join the session first."


class MessageTooLong(ChatError):
    code = "message_too_long"
    default_message = "The message is too long."


class MetadataTooLarge(ChatError):
    code = "metadata_too_large"
    default_message = "The message metadata is too large or too deeply nested."


class StoreFailed(ChatError):
    """Storing failed; nothing was confirmed or broadcast, so the client may retry."""

    code = "internal"
    default_message = "The message could not be stored; please retry."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        super().__init__(message, retryable=True, **details)


@dataclass(frozen=True)
class WireError:
    """How one error code appears on each surface."""

    http_status: int
    websocket_close: int


#: One table for every surface.  Codes missing here use ``DEFAULT_WIRE_ERROR``.
WIRE_ERRORS: dict[str, WireError] = {
    "invalid_packet": WireError(400, 1002),
    "payload_too_large": WireError(413, 1009),
    "unknown_transport": WireError(400, 1002),
    "unknown_session": WireError(400, 1008),
    "bad_handshake_method": WireError(400, 1002),
    "bad_request": WireError(400, 1002),
    "forbidden": WireError(403, 1008),
    "unsupported_protocol_version": WireError(400, 1002),
    "connection_refused": WireError(403, 1008),
    "invalid_namespace": WireError(400, 1008),
    "invalid_payload": WireError(400, 1008),
    "unauthenticated": WireError(401, 1008),
    "not_a_member": WireError(404, 1008),
    "session_not_found": WireError(404, 1008),
    "agent_not_found": WireError(404, 1008),
    "session_closed": WireError(409, 1008),
    "not_joined": WireError(409, 1008),
    "message_too_long": WireError(400, 1009),
    "metadata_too_large": WireError(400, 1009),
    "rate_limited": WireError(429, 1008),
    "message_blocked": WireError(400, 1008),
    "spam_detected": WireError(429, 1008),
    "connection_limit": WireError(429, 1013),
    "muted": WireError(403, 1008),
    "banned": WireError(403, 1008),
    "member_not_found": WireError(404, 1008),
    "user_not_found": WireError(404, 1008),
    "message_not_found": WireError(404, 1008),
    "invalid_cursor": WireError(404, 1008),
    "session_exists": WireError(409, 1008),
    "member_exists": WireError(409, 1008),
    "agent_run_not_found": WireError(404, 1008),
    "agent_run_finished": WireError(409, 1008),
    "internal": WireError(500, 1011),
}
DEFAULT_WIRE_ERROR = WireError(400, 1008)


def wire_error(error: ChatError) -> WireError:
    return WIRE_ERRORS.get(error.code, DEFAULT_WIRE_ERROR)
