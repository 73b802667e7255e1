"""Engine.IO HTTP long-polling as a Channels HTTP consumer.

Layer: transport.  Spec: "HTTP long-polling" in the Engine.IO v4 protocol.

A GET without ``sid`` is the handshake; a GET with one waits for packets; a
POST delivers packets.  The request runs in its own task so that the
client going away (``http.disconnect``) cancels a waiting GET before it
takes packets it could no longer deliver.  A request for a session another
worker owns is relayed there (:mod:`channels_socketio.transport.relay`).
"""

from __future__ import annotations

import asyncio

from channels_socketio.errors import BadRequest, Forbidden
from channels_socketio.transport.http_request import BoundedHttpConsumer
from channels_socketio.transport.polling_exchange import PollingResponse, error_response, serve_polling
from channels_socketio.transport.scope import header, query_params, request_origin
from channels_socketio.transport.server import EngineServer
from channels_socketio.wire.engine_packets import open_packet


class PollingConsumer(BoundedHttpConsumer):
    def __init__(self, engine: EngineServer) -> None:
        super().__init__()
        self.engine = engine

    def max_body(self) -> int:
        return self.engine.options.max_payload

    def cancel_on_disconnect(self) -> bool:
        # A GET still waiting is cancelled before it takes packets it could
        # not deliver.  A POST is not: the packets it carries (a close, a
        # disconnect) must be handled even if the client is gone.
        return self.scope["method"] == "GET"

    async def respond(self, body: bytes) -> None:
        method = self.scope["method"]
        origin = header(self.scope, b"origin")
        cors = self._cors_headers(origin)
        try:
            if method == "OPTIONS":
                response = self._preflight(origin, cors)
            elif method not in ("GET", "POST"):
                raise BadRequest("Method not allowed.")
            else:
                target = self.engine.verify(self.scope, method)
                if target is None:
                    response = await self._handshake()
                elif isinstance(target, str):
                    sid = self._sid()
                    response = await self.engine.relay.forward(target, sid, method, body, self.too_large)
                else:
                    response = await serve_polling(target, method, body, self.too_large)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            response = error_response(error)
        await self._send(response, cors)

    async def _handshake(self) -> PollingResponse:
        session = await self.engine.create_session(self.scope, "polling")
        await session.open()
        # The open packet is the whole first response; anything the layer
        # above queued on open waits for the next GET.
        return PollingResponse(200, open_packet(self.engine.options.handshake(session.sid, ["websocket"])).encode())

    def _preflight(self, origin: str | None, cors: list[tuple[bytes, bytes]]) -> PollingResponse:
        if origin is not None and not cors:
            raise Forbidden()
        return PollingResponse(204, b"")

    def _sid(self) -> str:
        return query_params(self.scope)["sid"]

    def _cors_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        if origin is None or not self.engine.origin_allowed(origin, request_origin(self.scope)):
            return []
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-credentials", b"true"),
            (b"vary", b"Origin"),
        ]

    async def _send(self, response: PollingResponse, cors: list[tuple[bytes, bytes]]) -> None:
        headers = [
            (b"content-type", response.content_type),
            (b"x-content-type-options", b"nosniff"),
            (b"cache-control", b"no-store"),
            *cors,
        ]
        if response.status == 204:
            requested = header(self.scope, b"access-control-request-headers") or "content-type"
            headers += [
                (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                (b"access-control-allow-headers", requested.encode("latin-1")),
                (b"access-control-max-age", b"600"),
            ]
        await self.send_response(response.status, response.body, headers=headers)
