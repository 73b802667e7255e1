"""``chat:edit-message`` and ``chat:delete-message``: a member changes a message of a joined session."""

from __future__ import annotations

from typing import Any

from channels_socketio.protocol.namespace import Namespace
from channels_socketio.protocol.socket import Socket
from chat import event_names
from chat.actions.edits import Edit, delete_message, edit_message
from chat.actions.messages import Author, SessionRef
from chat.errors import InvalidPayload
from chat.events.access import current_joined
from chat.events.context import JoinedSession
from chat.events.handler import chat_event
from chat.events.payloads import optional_int, optional_str, required_client_id
from chat.services.edits import Change


def _where(entry: JoinedSession) -> SessionRef:
    return SessionRef(entry.session_id, entry.session_key, entry.workspace_id, entry.workspace_slug)


def _ack(entry: JoinedSession, change: Change) -> dict[str, Any]:
    message = change.message
    return {
        "sessionId": entry.session_key,
        "messageId": message.key,
        "seq": message.seq,
        "version": message.version,
        "duplicate": not change.changed,
    }


def _edit(payload: dict[str, Any]) -> Edit:
    version = optional_int(payload, "version")
    if version is None or version < 1:
        raise InvalidPayload("version (the version you edit, at least 1) is required.")
    content = payload.get("content")
    if not isinstance(content, str):
        raise InvalidPayload("content must be a string.")
    metadata = payload.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidPayload("metadata must be a JSON object.")
    return Edit(
        required_client_id(payload, "messageId"),
        version,
        content,
        optional_str(payload, "contentType", max_length=16),
        metadata,
    )


def register(namespace: Namespace) -> None:
    @chat_event(namespace, event_names.EDIT_MESSAGE, operation=None)
    async def edit(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        entry = await current_joined(socket, payload)
        change = await edit_message(
            Author.member_of(socket.user, socket.scope, "socket"),
            _where(entry),
            _edit(payload),
            moderates=entry.moderates,
        )
        return _ack(entry, change)

    @chat_event(namespace, event_names.DELETE_MESSAGE, operation=None)
    async def delete(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        entry = await current_joined(socket, payload)
        version = optional_int(payload, "version")
        if version is not None and version < 1:
            raise InvalidPayload("version must be at least 1.")
        change = await delete_message(
            Author.member_of(socket.user, socket.scope, "socket"),
            _where(entry),
            required_client_id(payload, "messageId"),
            moderates=entry.moderates,
            version=version,
        )
        return _ack(entry, change)
