"""Typing indicators: kept on the worker that holds the socket, ended when not renewed within
``CHAT_TYPING_TIMEOUT_S``, and on leave or disconnect."""

from __future__ import annotations

import asyncio

from channels_socketio.protocol.socket import Socket
from chat import event_names, notify
from chat.events.context import JoinedSession
from chat.shapes import typing_shape
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


def expire_typing(socket: Socket, entry: JoinedSession) -> None:
    entry.typing_timer = None
    metrics.purged("typing", 1)
    asyncio.get_running_loop().create_task(announce_typing(socket, entry, False))
