"""The errors the Socket.IO server reports, each with a stable machine code.

Layer: the engine's bottom: it imports nothing, so the wire codec, the
transports and the protocol core all raise these same types.  An application
on top subclasses :class:`SocketIOError` for its own codes (the chat does)
and extends :data:`WIRE_ERRORS` with them, so a code means the same thing on
every surface: an Engine.IO HTTP error, a Socket.IO ``CONNECT_ERROR``, an
ack ``{ok: false}``, a WebSocket close code, a REST status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class SocketIOError(Exception):
    """Base of every error reported to a client.

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
        """The body of an error event or an ack ``{ok: false, ...}``."""
        return {"error": self.message, "code": self.code, **self.details}


# --- wire protocol ---------------------------------------------------------


class ProtocolError(SocketIOError):
    """Bytes on the wire that do not form a valid Engine.IO or Socket.IO packet."""

    code = "invalid_packet"
    default_message = "Invalid packet."


class PayloadTooLarge(ProtocolError):
    code = "payload_too_large"
    default_message = "Payload exceeds the maximum size."


class TooManyPackets(ProtocolError):
    """A polling request carrying more packets than ``EngineOptions.max_packets_per_post``."""

    code = "too_many_packets"
    default_message = "Too many packets in one payload."


class EngineRequestError(SocketIOError):
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


class TooManySessions(EngineRequestError):
    """The address already has ``EngineOptions.max_pending_sessions_per_address`` sessions not yet established."""

    code, engine_code, default_message, status = "too_many_sessions", 3, "Too many connections from this address", 429


class UnsupportedProtocolVersion(EngineRequestError):
    code, engine_code, default_message = "unsupported_protocol_version", 5, "Unsupported protocol version"


# --- Socket.IO connection and events ---------------------------------------


class ConnectionRefused(SocketIOError):
    """Raised by a namespace's connect handler; sent as ``CONNECT_ERROR``."""

    code = "connection_refused"
    default_message = "Connection refused."


class InvalidNamespace(ConnectionRefused):
    code = "invalid_namespace"
    default_message = "Invalid namespace"


class InvalidPayload(SocketIOError):
    code = "invalid_payload"
    default_message = "The event payload is not valid."


class TooManyPendingEvents(SocketIOError):
    """The socket already has ``SocketOptions.max_pending_events`` events waiting to be handled."""

    code = "too_many_pending_events"
    default_message = "Too many events waiting to be handled; wait for their acknowledgements."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        super().__init__(message, retryable=True, **details)


class AckTimeout(SocketIOError):
    code = "ack_timeout"
    default_message = "The client did not acknowledge in time."


@dataclass(frozen=True)
class WireError:
    """How one error code appears on each surface."""

    http_status: int
    websocket_close: int


#: The engine's codes; an application's table extends this one.
WIRE_ERRORS: dict[str, WireError] = {
    "invalid_packet": WireError(400, 1002),
    "payload_too_large": WireError(413, 1009),
    "too_many_packets": WireError(400, 1008),
    "unknown_transport": WireError(400, 1002),
    "unknown_session": WireError(400, 1008),
    "bad_handshake_method": WireError(400, 1002),
    "bad_request": WireError(400, 1002),
    "forbidden": WireError(403, 1008),
    "unsupported_protocol_version": WireError(400, 1002),
    "too_many_sessions": WireError(429, 1008),
    "connection_refused": WireError(403, 1008),
    "invalid_namespace": WireError(400, 1008),
    "invalid_payload": WireError(400, 1008),
    "too_many_pending_events": WireError(429, 1008),
    "internal": WireError(500, 1011),
}
DEFAULT_WIRE_ERROR = WireError(400, 1008)


def wire_error(error: SocketIOError, table: dict[str, WireError] = WIRE_ERRORS) -> WireError:
    return table.get(error.code, DEFAULT_WIRE_ERROR)
