"""Engine.IO over WebSocket as a Channels WebSocket consumer.

Layer: transport.  Spec: "WebSocket" and "Upgrade" in the Engine.IO v4 protocol.

A WebSocket either starts a session of its own (``transport=websocket``
without ``sid``) or upgrades an existing polling session: the client sends
the probe ``2probe``, we answer ``3probe`` and make the pending GET return,
the client sends ``5`` and from then on the session is carried here.

A request the checks refuse (:meth:`EngineServer.verify`) is refused before
the handshake.  A second WebSocket for a session that already has one (or
is being upgraded) passes them, so it completes its handshake and is then
closed, as the reference server does: standard clients treat an HTTP
refusal of a WebSocket as an unhandled error, a close as a close.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from channels_socketio import observer
from channels_socketio.errors import EngineRequestError, PayloadTooLarge, ProtocolError, wire_error
from channels_socketio.transport.server import EngineServer
from channels_socketio.transport.session import CloseReason, EngineSession
from channels_socketio.transport.uvicorn_websocket import CLOSE_NOW, SEND_TEXT_NOW
from channels_socketio.wire.engine_packets import decode_frame, open_packet

logger = logging.getLogger(__name__)

#: How long a client may take between the probe and the upgrade packet.
UPGRADE_TIMEOUT_S = 10.0
#: The close code of a second WebSocket for one session (policy violation).
BAD_UPGRADE_CLOSE = 1008


class WebSocketConsumer(AsyncWebsocketConsumer):
    # Sockets get broadcasts through the process-wide fan-out, not through a
    # channel of their own, so the consumer does not create one.
    channel_layer_alias = None

    def __init__(self, engine: EngineServer) -> None:
        super().__init__()
        self.engine = engine
        self.session: EngineSession | None = None
        self._upgrading: EngineSession | None = None
        self._upgrade_timer: asyncio.TimerHandle | None = None
        #: The server's way to write a text frame at once (see channels_socketio.transport.uvicorn_websocket).
        self._send_text_now: Callable[[str], bool] | None = None
        #: The server's way to close at once, even while the client is not reading.
        self._close_now: Callable[[int, str], bool] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Channels' loop wraps every receive in a task and an asyncio.wait so
        # that it can serve a layer channel as well; with none, a frame is
        # one await (a few percent of the server's time under load).
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        extensions = scope.get("extensions", {})
        self._send_text_now = extensions.get(SEND_TEXT_NOW, {}).get("send")
        self._close_now = extensions.get(CLOSE_NOW, {}).get("close")
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        # The three ASGI message types, dispatched explicitly: no name-based
        # lookup and no per-frame database housekeeping on the hot path.
        kind = message["type"]
        if kind == "websocket.receive":
            await self.websocket_receive(message)
        elif kind == "websocket.connect":
            await self.websocket_connect(message)
        elif kind == "websocket.disconnect":
            await self.websocket_disconnect(message)

    async def connect(self) -> None:
        try:
            session = self.engine.verify(self.scope, "GET")
        except EngineRequestError as error:
            logger.info("websocket refused: %s", error.code)
            observer.current.connection_error(error.code)
            await self.close()
            return
        if session is None:
            await self.accept()
            self.session = await self.engine.create_session(self.scope, "websocket")
            self.session.attach_websocket(self._write, self._close, self._write_now)
            handshake = self.engine.options.handshake(self.session.sid, [])
            await self._write(open_packet(handshake))
            await self.session.open()
        elif session.upgrading or session.transport != "polling":
            observer.current.connection_error("bad_upgrade")
            await self.accept()
            await self.close(code=BAD_UPGRADE_CLOSE, reason="The session already has a WebSocket.")
        else:
            await self.accept()
            self._upgrading = session
            loop = asyncio.get_running_loop()
            self._upgrade_timer = loop.call_later(UPGRADE_TIMEOUT_S, self._upgrade_timed_out)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame: str | bytes = text_data if text_data is not None else (bytes_data or b"")
        try:
            if len(frame) > self.engine.options.max_payload:
                raise PayloadTooLarge(f"Frame exceeds maxPayload ({self.engine.options.max_payload} bytes).")
            if self._upgrading is not None:
                await self._receive_during_upgrade(frame)
            elif self.session is not None:
                await self.session.receive(decode_frame(frame))
        except ProtocolError as error:
            logger.info("websocket protocol error: %s", error.code)
            observer.current.connection_error(error.code)
            await self._fail(error)

    async def disconnect(self, code: int) -> None:
        if self._upgrade_timer is not None:
            self._upgrade_timer.cancel()
        if self._upgrading is not None:
            self._upgrading.abort_upgrade()
            self._upgrading = None
        if self.session is not None and self.session.transport == "websocket":
            await self.session.close(CloseReason.TRANSPORT_CLOSE)

    # --- upgrade ------------------------------------------------------------------

    async def _receive_during_upgrade(self, frame: str | bytes) -> None:
        session = self._upgrading
        assert session is not None
        if frame == "2probe":
            await self._write("3probe")
            session.begin_upgrade()
        elif frame == "5" and session.upgrading:
            if self._upgrade_timer is not None:
                self._upgrade_timer.cancel()
            self._upgrading = None
            self.session = session
            await session.complete_upgrade(self._write, self._close, self._write_now)
        else:
            raise ProtocolError("Expected the upgrade probe or the upgrade packet.")

    def _upgrade_timed_out(self) -> None:
        if self._upgrading is not None:
            observer.current.connection_error("upgrade_timeout")
            self._upgrading.abort_upgrade()
            self._upgrading = None
            asyncio.get_running_loop().create_task(self.close(code=1002))

    # --- frames ---------------------------------------------------------------------

    async def _write(self, frame: str | bytes) -> None:
        if frame == b"":
            # daphne drops a websocket.send whose bytes are empty (it tests
            # them for truth), so an empty binary message -- an empty
            # Socket.IO attachment, say -- would vanish and leave the client
            # waiting for it.  Send it base64-encoded as long-polling does:
            # "b" with no data, which the reference parsers (engine.io-parser,
            # python-engineio) decode as a binary message on any transport.
            await self.base_send({"type": "websocket.send", "text": "b"})
        elif isinstance(frame, bytes):
            await self.base_send({"type": "websocket.send", "bytes": frame})
        elif not self._write_now(frame):
            await self.base_send({"type": "websocket.send", "text": frame})

    def _write_now(self, text: str) -> bool:
        """Write a text frame at once where the server offers it (``channels_socketio.send_text_now``)."""
        return self._send_text_now is not None and self._send_text_now(text)

    async def _close(self, code: int, reason: str) -> None:
        reason = reason[:120]
        if self._close_now is not None and self._close_now(code, reason):
            return
        await self.close(code=code, reason=reason or None)

    async def _fail(self, error: ProtocolError) -> None:
        code = wire_error(error).websocket_close
        if self.session is not None and not self.session.closed:
            await self.session.close(CloseReason.PARSE_ERROR, ws_code=code, detail=error.message)
        else:
            await self.close(code=code, reason=error.message[:120])
