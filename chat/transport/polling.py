"""Engine.IO HTTP long-polling as a Channels HTTP consumer.

Layer: transport.  Spec: "HTTP long-polling" in the Engine.IO v4 protocol.

A GET without ``sid`` is the handshake; a GET with one waits for packets; a
POST delivers packets.  The request runs in its own task so that the
client going away (``http.disconnect``) cancels a waiting GET before it
takes packets it could no longer deliver.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer

from chat.errors import BadRequest, ChatError, EngineRequestError, Forbidden, PayloadTooLarge, ProtocolError
from chat.transport.server import EngineServer, header
from chat.transport.session import CloseReason
from chat.wire.engine_packets import Packet, decode_payload, encode_payload, open_packet

logger = logging.getLogger(__name__)

TEXT = b"text/plain; charset=UTF-8"


class PollingConsumer(AsyncHttpConsumer):
    # Sockets get broadcasts through the process-wide fan-out, not through a
    # channel of their own, so the consumer does not create one.
    channel_layer_alias = None

    def __init__(self, engine: EngineServer) -> None:
        super().__init__()
        self.engine = engine
        self._received = 0
        self._too_large = False
        self._request: asyncio.Task[None] | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Only the two ASGI message types exist here; no name-based lookup,
        # and no per-message database housekeeping on the hot path.
        if message["type"] == "http.request":
            await self.http_request(message)
        elif message["type"] == "http.disconnect":
            await self.http_disconnect(message)

    async def http_request(self, message: dict[str, Any]) -> None:
        chunk = message.get("body", b"")
        self._received += len(chunk)
        if self._received > self.engine.options.max_payload:
            self._too_large = True
            self.body.clear()
        elif not self._too_large:
            self.body.append(chunk)
        if not message.get("more_body", False) and self._request is None:
            self._request = asyncio.create_task(self._respond(b"".join(self.body)))

    async def http_disconnect(self, message: dict[str, Any]) -> None:
        if self._request is not None and not self._request.done():
            self._request.cancel()
        raise StopConsumer()

    # --- the request ------------------------------------------------------------

    async def _respond(self, body: bytes) -> None:
        method = self.scope["method"]
        origin = header(self.scope, b"origin")
        cors = self._cors_headers(origin)
        try:
            if method == "OPTIONS":
                await self._preflight(origin, cors)
                return
            if method not in ("GET", "POST"):
                raise BadRequest("Method not allowed.")
            session = self.engine.verify(self.scope, method)
            if session is None:
                await self._handshake(cors)
            elif method == "GET":
                packets = await session.poll()
                await self._send(200, encode_payload(packets).encode(), cors)
            else:
                await self._post(session, body, cors)
        except EngineRequestError as error:
            await self._send_error(error.status, error.engine_code, error.default_message, error, cors)
        except PayloadTooLarge as error:
            await self._send_error(413, 3, "Bad request", error, cors)
        except ProtocolError as error:
            await self._send_error(400, 3, "Bad request", error, cors)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("polling request failed")
            await self._send_error(500, 3, "Bad request", ChatError(), cors)

    async def _handshake(self, cors: list[tuple[bytes, bytes]]) -> None:
        session = self.engine.create_session(self.scope, "polling")
        handshake = self.engine.options.handshake(session.sid, ["websocket"])
        await session.open()
        # The open packet is the whole first response; anything the layer
        # above queued on open waits for the next GET.
        await self._send(200, open_packet(handshake).encode(), cors)

    async def _post(self, session: Any, body: bytes, cors: list[tuple[bytes, bytes]]) -> None:
        if self._too_large:
            await session.close(CloseReason.TRANSPORT_ERROR)
            raise PayloadTooLarge(f"Payload exceeds maxPayload ({self.engine.options.max_payload} bytes).")
        try:
            text = body.decode("utf-8")
            packets: list[Packet] = decode_payload(text)
            await session.post(packets)
        except UnicodeDecodeError:
            await session.close(CloseReason.PARSE_ERROR)
            raise ProtocolError("Payload is not valid UTF-8.") from None
        except ProtocolError:
            await session.close(CloseReason.PARSE_ERROR)
            raise
        await self._send(200, b"ok", cors)

    async def _preflight(self, origin: str | None, cors: list[tuple[bytes, bytes]]) -> None:
        if origin is not None and not cors:
            raise Forbidden()
        requested = header(self.scope, b"access-control-request-headers") or "content-type"
        headers = cors + [
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-allow-headers", requested.encode("latin-1")),
            (b"access-control-max-age", b"600"),
        ]
        await self.send_response(204, b"", headers=headers)

    # --- responses --------------------------------------------------------------

    def _cors_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        if origin is None or not self.engine.origin_allowed(origin):
            return []
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-credentials", b"true"),
            (b"vary", b"Origin"),
        ]

    async def _send(self, status: int, body: bytes, cors: list[tuple[bytes, bytes]]) -> None:
        headers = [(b"content-type", TEXT), (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]
        await self.send_response(status, body, headers=headers + cors)

    async def _send_error(
        self, status: int, engine_code: int, message: str, error: ChatError, cors: list[tuple[bytes, bytes]]
    ) -> None:
        body = {"code": engine_code, "message": message, "context": {"code": error.code, "reason": error.message}}
        headers = [(b"content-type", b"application/json"), (b"x-content-type-options", b"nosniff")]
        await self.send_response(status, json.dumps(body).encode(), headers=headers + cors)
