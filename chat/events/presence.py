"""``chat:typing`` and ``chat:update-presence``.

Typing state lives on the worker that holds the socket (:mod:`chat.events.typing_state`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from channels_socketio.protocol.namespace import Namespace
from channels_socketio.protocol.socket import Socket
from chat import event_names, notify
from chat.errors import InvalidPayload, NotJoined
from chat.events.access import current_joined
from chat.events.handler import chat_event
from chat.events.payloads import required_bool
from chat.events.typing_state import announce_typing, expire_typing, stop_typing
from chat.services import presence
from chat.shapes import presence_shape


def register(namespace: Namespace) -> None:
    @chat_event(namespace, event_names.TYPING, operation="typing")
    async def typing(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        entry = await current_joined(socket, payload)
        is_typing = required_bool(payload, "isTyping")
        if not is_typing:
            await stop_typing(socket, entry)
            return {"sessionId": entry.session_key, "isTyping": False}
        was_typing = entry.typing_timer is not None
        if was_typing:
            entry.typing_timer.cancel()
        loop = asyncio.get_running_loop()
        entry.typing_timer = loop.call_later(settings.CHAT.typing_timeout_s, expire_typing, socket, entry)
        if not was_typing:
            await announce_typing(socket, entry, True)
        return {"sessionId": entry.session_key, "isTyping": True}

    @chat_event(namespace, event_names.UPDATE_PRESENCE, operation="presence")
    async def update_presence(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        entry = await current_joined(socket, payload)
        status = payload.get("status")
        if not isinstance(status, str):
            raise InvalidPayload("status must be 'active', 'idle' or 'away'.")
        row = await database_sync_to_async(presence.set_status)(entry.session_id, socket.id, status)
        if row is None:
            raise NotJoined(sessionId=entry.session_key)
        shape = presence_shape(row)
        await notify.to_session(entry.workspace_slug, entry.session_key, event_names.PRESENCE_UPDATED, shape)
        return shape
