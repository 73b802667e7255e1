"""``chat:rate-message``: a member rates an agent's reply (thumbs up or down, an optional comment).

Payload ``{sessionId, messageId, rating: "up" | "down" | null, comment?, workspaceId?}``;
``rating: null`` clears the member's rating.  The socket must have joined
the session.  The ack is ``{ok: true, sessionId, messageId, rating,
comment, feedback: {up, down}}`` (``rating``/``comment``: the member's own,
as stored).  Nothing is broadcast (:mod:`chat.actions.feedback`).  Errors:
``not_joined``, ``message_not_found`` (not an agent reply of that session
that members can see), ``invalid_payload`` (a bad rating, a comment over
2,000 characters), ``rate_limited`` (counted with ``send``).
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from channels_socketio.protocol.namespace import Namespace
from channels_socketio.protocol.socket import Socket
from chat import event_names
from chat.actions import feedback
from chat.errors import InvalidPayload
from chat.events.access import current_joined
from chat.events.handler import chat_event
from chat.events.payloads import optional_str, required_client_id
from chat.models import FEEDBACK_COMMENT_MAX


def register(namespace: Namespace) -> None:
    @chat_event(namespace, event_names.RATE_MESSAGE, operation="send")
    async def rate_message(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        entry = await current_joined(socket, payload)
        message_key = required_client_id(payload, "messageId")
        if "rating" not in payload:
            raise InvalidPayload("rating must be 'up', 'down' or null (to clear it).")
        rating = optional_str(payload, "rating", max_length=4)
        comment = optional_str(payload, "comment", max_length=FEEDBACK_COMMENT_MAX) or ""
        result = await database_sync_to_async(feedback.rate_message)(
            socket.user, entry.session_id, message_key, rating, comment
        )
        return {
            "sessionId": entry.session_key,
            "messageId": message_key,
            "rating": result.mine,
            "comment": result.comment,
            "feedback": {"up": result.up, "down": result.down},
        }
