"""The application protocol test suites expect, used instead of the chat (``CHAT_CONFORMANCE=1``).

Layer: application (an alternative to the chat).

What third-party Socket.IO suites (such as the socket.io-protocol test
suite) rely on, on ``/`` and ``/custom``:

- on connect the server emits ``auth`` with the handshake's auth payload;
- ``message`` is echoed back as ``message-back`` with the same arguments;
- ``message-with-ack`` is acknowledged with the same arguments.

A few more events exercise server-side features in our own integration
tests; a suite that does not send them never sees them:

- ``call-me`` (event, *args): the server emits ``event`` with an ack and
  acknowledges with what the client answered (server-to-client acks);
- ``disconnect-me``: the server disconnects the socket;
- ``join`` (room) / ``leave`` (room) / ``to-room`` (room, *args): rooms, the
  last emitting ``room-message`` to the room except the sender.

Beside it, :class:`EchoEngineHandler` serves a bare Engine.IO endpoint that
echoes every message unchanged.
"""

from __future__ import annotations

from typing import Any

from channels_socketio.errors import AckTimeout, InvalidPayload
from channels_socketio.protocol.namespace import Namespace
from channels_socketio.protocol.socket import Socket
from channels_socketio.transport.session import EngineSession

NAMESPACES = ("/", "/custom")


def conformance_namespace(name: str) -> Namespace:
    namespace = Namespace(name)

    @namespace.on_connect
    async def connect(socket: Socket, auth: dict[str, Any] | None) -> None:
        await socket.emit("auth", auth if auth is not None else {})

    @namespace.on("message")
    async def message(socket: Socket, *args: Any) -> None:
        await socket.emit("message-back", *args)

    @namespace.on("message-with-ack")
    async def message_with_ack(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @namespace.on("call-me")
    async def call_me(socket: Socket, event: Any, *args: Any) -> tuple[Any, ...]:
        if not isinstance(event, str):
            raise InvalidPayload("The first argument names the event to call back.")
        try:
            return tuple(await socket.call(event, *args, timeout=5))
        except AckTimeout:
            return ("timeout",)

    @namespace.on("disconnect-me")
    async def disconnect_me(socket: Socket, *args: Any) -> None:
        await socket.disconnect()

    @namespace.on("join")
    async def join(socket: Socket, room: Any) -> str:
        await socket.join(_room(room))
        return "joined"

    @namespace.on("leave")
    async def leave(socket: Socket, room: Any) -> str:
        await socket.leave(_room(room))
        return "left"

    @namespace.on("to-room")
    async def to_room(socket: Socket, room: Any, *args: Any) -> str:
        await socket.to(_room(room)).emit("room-message", *args)
        return "sent"

    return namespace


def _room(room: Any) -> str:
    if not isinstance(room, str) or not 0 < len(room) <= 128:
        raise InvalidPayload("A room is a string of 1 to 128 characters.")
    return f"conformance:{room}"


class EchoEngineHandler:
    """Engine.IO with no Socket.IO layer: every message comes straight back."""

    async def on_open(self, session: EngineSession) -> None:
        pass

    async def on_message(self, session: EngineSession, data: str | bytes) -> None:
        await session.send(data)

    async def on_close(self, session: EngineSession, reason: str) -> None:
        pass
