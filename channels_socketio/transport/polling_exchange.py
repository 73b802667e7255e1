"""One long-polling request served against its session, wherever the HTTP request arrived.

Layer: transport.  Spec: "HTTP long-polling" in the Engine.IO v4 protocol.

A GET takes what the session has queued (waiting for it if need be), a POST
feeds the session the packets of its body.  The polling consumer calls
:func:`serve_polling` for a session of this worker; the relay calls it for a
request another worker forwarded (:mod:`channels_socketio.transport.relay`).
Failures become the Engine.IO error body in :func:`error_response`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from channels_socketio import observer
from channels_socketio.errors import EngineRequestError, PayloadTooLarge, ProtocolError, SocketIOError
from channels_socketio.transport.session import CloseReason, EngineSession
from channels_socketio.wire.engine_packets import decode_payload, encode_payload

logger = logging.getLogger(__name__)

TEXT = b"text/plain; charset=UTF-8"
JSON = b"application/json"


@dataclass(frozen=True)
class PollingResponse:
    status: int
    body: bytes
    content_type: bytes = TEXT


async def serve_polling(session: EngineSession, method: str, body: bytes, too_large: bool) -> PollingResponse:
    """Serve a GET or POST for a session, wherever the HTTP request arrived."""
    if method == "GET":
        packets = await session.poll()
        return PollingResponse(200, encode_payload(packets).encode())
    if too_large:
        await session.close(CloseReason.TRANSPORT_ERROR)
        raise PayloadTooLarge(f"Payload exceeds maxPayload ({session.options.max_payload} bytes).")
    try:
        # A client sends in one POST everything it buffered meanwhile: the body's size (maxPayload)
        # and its packet count (max_packets_per_post) bound the work one request causes.
        text = body.decode("utf-8")
        await session.post(decode_payload(text, max_packets=session.options.max_packets_per_post))
    except UnicodeDecodeError:
        await session.close(CloseReason.PARSE_ERROR, drain=False)
        raise ProtocolError("Payload is not valid UTF-8.") from None
    except ProtocolError:
        # A payload that does not decode ends the session: this POST and the next request get 400.
        await session.close(CloseReason.PARSE_ERROR, drain=False)
        raise
    return PollingResponse(200, b"ok")


def error_response(error: Exception) -> PollingResponse:
    """The Engine.IO error body ``{"code", "message"}``, with our code and reason as context."""
    observer.current.connection_error(error.code if isinstance(error, SocketIOError) else "internal")
    if isinstance(error, EngineRequestError):
        status, engine_code, message = error.status, error.engine_code, error.default_message
    elif isinstance(error, PayloadTooLarge):
        status, engine_code, message = 413, 3, "Bad request"
    elif isinstance(error, ProtocolError):
        status, engine_code, message = 400, 3, "Bad request"
    else:
        logger.error("polling request failed", exc_info=error)
        status, engine_code, message, error = 500, 3, "Bad request", SocketIOError()
    assert isinstance(error, SocketIOError)
    body = {"code": engine_code, "message": message, "context": {"code": error.code, "reason": error.message}}
    return PollingResponse(status, json.dumps(body).encode(), JSON)
