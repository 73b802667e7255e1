"""``chat:send-message`` and ``chat:request-history``."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from channels_socketio.protocol.namespace import Namespace
from channels_socketio.protocol.socket import Socket
from chat import event_names
from chat.actions.messages import Author, Draft, SessionRef, post_message
from chat.errors import InvalidPayload
from chat.events.access import current_joined
from chat.events.handler import chat_event
from chat.events.payloads import attachment_ids, optional_int, optional_str, required_client_id, required_object
from chat.models import ChatSession, ContentType
from chat.services import attachments, messages
from chat.shapes import message_shape, now_ms, to_ms


def _history(session_id: int, moderates: bool, user_id: int, **query: Any):
    page = messages.history(session_id, include_hidden=moderates, **query)
    session = ChatSession.objects.select_related("workspace").get(pk=session_id)
    attachments.attach_shapes(page.messages, user_id=user_id)
    return page, [message_shape(m, session) for m in page.messages]


def register(namespace: Namespace) -> None:
    @chat_event(namespace, event_names.SEND_MESSAGE, operation=None)
    async def send_message(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        message = required_object(payload, "message")
        entry = await current_joined(socket, message)
        key = required_client_id(message, "id")
        content = message.get("content")
        if not isinstance(content, str):
            raise InvalidPayload("message.content must be a string.")
        content_type = optional_str(message, "contentType", max_length=16)
        metadata = message.get("metadata")
        metadata = {} if metadata is None else metadata
        if not isinstance(metadata, dict):
            raise InvalidPayload("message.metadata must be a JSON object.")
        attached = attachment_ids(message, "attachments", limit=settings.CHAT.attachments_per_message)
        stored = await post_message(
            Author.member_of(socket.user, socket.scope, "socket"),
            SessionRef(entry.session_id, entry.session_key, entry.workspace_id, entry.workspace_slug),
            Draft(key, content, ContentType.TEXT if content_type is None else content_type, metadata, attached),
            exclude=[socket.id],
        )
        confirmation = {
            "messageId": key,
            "sessionId": entry.session_key,
            "seq": stored.message.seq,
            "timestamp": to_ms(stored.message.created_at),
            "duplicate": not stored.created,
        }
        await socket.emit(event_names.MESSAGE_SENT, confirmation)
        return confirmation

    @chat_event(namespace, event_names.REQUEST_HISTORY, operation="history")
    async def request_history(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        # Always read afresh: whether hidden messages are included follows the role now.
        entry = await current_joined(socket, payload, fresh=True)
        page, shapes = await database_sync_to_async(_history)(
            entry.session_id,
            entry.moderates,
            socket.user.pk,
            limit=optional_int(payload, "limit"),
            offset=optional_int(payload, "offset") or 0,
            after_seq=optional_int(payload, "afterSeq"),
        )
        response = {
            "sessionId": entry.session_key,
            "messages": shapes,
            "limit": page.limit,
            "offset": page.offset,
            "afterSeq": page.after_seq,
            "hasMore": page.has_more,
            "timestamp": now_ms(),
        }
        await socket.emit(event_names.HISTORY_RESPONSE, response)
        return response
