"""``chat:typing`` and ``chat:update-presence``.

Typing state lives on the worker that holds the socket: it ends when not
renewed within ``CHAT_TYPING_TIMEOUT_S``, and on leave or disconnect.
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
from chat.events.context import JoinedSession, find_joined
from chat.events.handler import chat_event
from chat.events.payloads import required_bool
from chat.services import presence
from chat.shapes import presence_shape, typing_shape
from monitoring import metrics


async def announce_typing(socket: Socket, entry: JoinedSession, is_typing: bool) -> None:
    await notify.to_session(
        entry.workspace_slug,
        entry.session_key,
        event_names.TYPING_INDICATOR,
        typing_shape(entry.session_key, socket.user.get_username(), is_typing),
        exclude=[socket.id],
    )


async def stop_typing(socket: Socket, entry: JoinedSession) -> None:
    if entry.typing_timer is not None:
        entry.typing_timer.cancel()
        entry.typing_timer = None
        await announce_typing(socket, entry, False)


def _expire_typing(socket: Socket, entry: JoinedSession) -> None:
    entry.typing_timer = None
    metrics.purged("typing", 1)
    asyncio.get_running_loop().create_task(announce_typing(socket, entry, False))


def register(namespace: Namespace) -> None:
    @chat_event(namespace, event_names.TYPING, operation="typing")
    async def typing(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        entry = find_joined(socket, payload)
        is_typing = required_bool(payload, "isTyping")
        if not is_typing:
            await stop_typing(socket, entry)
            return {"sessionId": entry.session_key, "isTyping": False}
        was_typing = entry.typing_timer is not None
        if was_typing:
            entry.typing_timer.cancel()
        loop = asyncio.get_running_loop()
        entry.typing_timer = loop.call_later(settings.CHAT.typing_timeout_s, _expire_typing, socket, entry)
        if not was_typing:
            await announce_typing(socket, entry, True)
        return {"sessionId": entry.session_key, "isTyping": True}

    @chat_event(namespace, event_names.UPDATE_PRESENCE, operation="presence")
    async def update_presence(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        entry = find_joined(socket, payload)
        status = payload.get("status")
        if not isinstance(status, str):
            raise InvalidPayload("status must be 'active', 'idle' or 'away'.")
        row = await database_sync_to_async(presence.set_status)(entry.session_id, socket.id, status)
        if row is None:
            raise NotJoined(sessionId=entry.session_key)
        shape = presence_shape(row)
        await notify.to_session(entry.workspace_slug, entry.session_key, event_names.PRESENCE_UPDATED, shape)
        return shape
