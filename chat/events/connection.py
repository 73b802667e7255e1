"""Connect (authenticate) and disconnect (leave every joined session)."""

from __future__ import annotations

from typing import Any

from chat.events.context import joined
from chat.events.housekeeping import housekeeping
from chat.events.sessions import leave_joined
from chat.protocol.namespace import Namespace
from chat.protocol.socket import Socket
from security.auth import authenticate


def register(namespace: Namespace) -> None:
    @namespace.on_connect
    async def connect(socket: Socket, auth: dict[str, Any] | None) -> None:
        socket.user = await authenticate(auth, socket.scope)
        housekeeping.start()

    @namespace.on_disconnect
    async def disconnect(socket: Socket, reason: str) -> None:
        for entry in list(joined(socket).values()):
            await leave_joined(socket, entry)
