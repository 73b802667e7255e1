"""What a socket has joined, kept on the socket for the life of the connection."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from channels_socketio.protocol.socket import Socket
from chat.errors import InvalidPayload, NotJoined
from chat.events.payloads import optional_str, required_client_id


@dataclass
class JoinedSession:
    session_id: int
    session_key: str
    workspace_id: int
    workspace_slug: str
    moderates: bool
    #: When its access was last read (``time.monotonic()``): :mod:`chat.events.access` re-reads it when stale.
    checked_at: float
    #: A re-read started ahead of time is under way (:func:`chat.events.access.current_joined`).
    refreshing: bool = False
    typing_timer: asyncio.TimerHandle | None = field(default=None, repr=False)


def joined(socket: Socket) -> dict[tuple[str, str], JoinedSession]:
    return socket.data.setdefault("joined", {})


def find_joined(socket: Socket, payload: dict[str, Any]) -> JoinedSession:
    """The joined session a payload names by ``sessionId`` (and ``workspaceId`` if ambiguous)."""
    session_key = required_client_id(payload, "sessionId")
    workspace = optional_str(payload, "workspaceId", max_length=64)
    matches = [
        entry
        for (slug, key), entry in joined(socket).items()
        if key == session_key and (workspace is None or slug == workspace)
    ]
    if not matches:
        raise NotJoined(sessionId=session_key)
    if len(matches) > 1:
        raise InvalidPayload("Joined in several workspaces: say which with workspaceId.", sessionId=session_key)
    return matches[0]
