"""Connect (authenticate, take a connection slot) and disconnect (leave every joined session)."""

from __future__ import annotations

from typing import Any

from channels_socketio.protocol.namespace import Namespace
from channels_socketio.protocol.socket import Socket
from channels_socketio.transport.session import CloseReason
from chat.auth import authenticate
from chat.errors import Unauthenticated
from chat.events import guards
from chat.events.context import joined
from chat.events.housekeeping import housekeeping
from chat.events.sessions import leave_joined
from security.errors import ConnectionLimitExceeded, TooManyFailedConnects
from security.events import client_ip
from security.models import SecurityEventType


def register(namespace: Namespace) -> None:
    @namespace.on_connect
    async def connect(socket: Socket, auth: dict[str, Any] | None) -> None:
        address = client_ip(socket.scope)
        try:
            await guards.failed_connects().check(address)
        except TooManyFailedConnects:
            guards.record(socket, SecurityEventType.AUTHENTICATION_FAILED, reason="too_many_failed_connects")
            raise
        try:
            socket.user = await authenticate(auth, socket.scope)
        except Unauthenticated as error:
            await guards.failed_connects().failed(address)
            guards.record(socket, SecurityEventType.AUTHENTICATION_FAILED, reason=error.details.get("reason", ""))
            raise
        try:
            await guards.admit(socket)
        except ConnectionLimitExceeded:
            guards.record(socket, SecurityEventType.CONNECTION_LIMIT_EXCEEDED)
            raise
        housekeeping.start()

    @namespace.on_disconnect
    async def disconnect(socket: Socket, reason: str) -> None:
        if reason == CloseReason.SLOW_CLIENT:
            # It left too much unread and was cut off so that it could not slow anyone else.
            guards.record(socket, SecurityEventType.SLOW_CLIENT_DISCONNECTED, transport=socket.transport)
        try:
            for entry in list(joined(socket).values()):
                await leave_joined(socket, entry)
        finally:
            await guards.release(socket)
