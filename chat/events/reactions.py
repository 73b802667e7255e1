"""``chat:add-reaction`` and ``chat:remove-reaction`` (thin: parse, call :mod:`chat.actions.reactions`)."""

from __future__ import annotations

from typing import Any

from channels_socketio.protocol.namespace import Namespace
from channels_socketio.protocol.socket import Socket
from chat import event_names
from chat.actions.messages import SessionRef
from chat.actions.reactions import ReactionRequest, change_reactions
from chat.errors import InvalidEmoji
from chat.events.access import current_joined
from chat.events.handler import chat_event
from chat.events.payloads import required_client_id
from chat.models import ChatMessage
from chat.services.batches import DatabaseBatches
from chat.shapes import reactions_fields

#: Longer than any emoji (``chat.services.emoji.MAX_CODE_POINTS``); refused before anything else reads it.
EMOJI_MAX_CHARS = 64


#: This worker's reaction changes, many per transaction under load.
changes: DatabaseBatches[ReactionRequest, ChatMessage] = DatabaseBatches("reaction-changes", change_reactions)


def register(namespace: Namespace) -> None:
    for event, adding in ((event_names.ADD_REACTION, True), (event_names.REMOVE_REACTION, False)):
        _register(namespace, event, adding)


def _register(namespace: Namespace, event: str, adding: bool) -> None:
    @chat_event(namespace, event, operation="react")
    async def react(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        entry = await current_joined(socket, payload)
        message_key = required_client_id(payload, "messageId")
        emoji = payload.get("emoji")
        if not isinstance(emoji, str) or len(emoji) > EMOJI_MAX_CHARS:
            raise InvalidEmoji(messageId=message_key)
        where = SessionRef(entry.session_id, entry.session_key, entry.workspace_id, entry.workspace_slug)
        message = await changes.submit(ReactionRequest(socket.user, where, message_key, emoji, adding))
        return {"sessionId": entry.session_key, "messageId": message_key, "emoji": emoji, **reactions_fields(message)}
