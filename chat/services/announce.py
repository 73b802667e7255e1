"""Announcing committed changes to sockets, from synchronous code (REST views, the admin).

Layer: chat application, the sync side of :mod:`chat.notify`.

Every function here only *schedules* its announcement with
``transaction.on_commit``: nothing reaches a socket before the change is
committed, and nothing at all if it rolls back.  Outside a transaction the
announcement goes out at once.  A failing announcement (the channel layer is
down, say) is logged and never turns a committed change into an error
response (``robust=True``).

Callers: ``chat.api`` views and ``chat.admin`` actions, after calling the
service that made the change.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Iterable

from asgiref.sync import async_to_sync
from django.db import transaction

from channels_socketio.protocol.emitter import socket_room
from chat import event_names, notify
from chat.models import ChatMessage, ChatSession
from chat.services import attachments
from chat.shapes import message_shape, now_ms

logger = logging.getLogger(__name__)

#: Events this module sends, beyond the socket protocol's own (see docs/api.md, "Live effects").


def after_commit(func: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> None:
    """Run the coroutine function ``func(*args, **kwargs)`` once the current transaction commits."""

    def run() -> None:
        async_to_sync(func)(*args, **kwargs)

    transaction.on_commit(run, robust=True)


# --- messages -------------------------------------------------------------------


def message_hidden(message: ChatMessage, session: ChatSession) -> None:
    payload = {"sessionId": session.key, "messageId": message.key, "workspaceId": session.workspace.slug}
    after_commit(notify.to_session, session.workspace.slug, session.key, event_names.MESSAGE_HIDDEN, payload)


def message_unhidden(message: ChatMessage, session: ChatSession) -> None:
    """Clients that dropped the message get it back whole (its attachments without anyone's links)."""
    attachments.attach_shapes([message], user_id=None)
    payload = {
        "sessionId": session.key,
        "messageId": message.key,
        "workspaceId": session.workspace.slug,
        "message": message_shape(message, session),
    }
    after_commit(notify.to_session, session.workspace.slug, session.key, event_names.MESSAGE_UNHIDDEN, payload)


# --- sessions -------------------------------------------------------------------


def session_closed(session: ChatSession, closed_by: str) -> None:
    payload = {
        "sessionId": session.key,
        "workspaceId": session.workspace.slug,
        "closedBy": closed_by,
        "timestamp": now_ms(),
    }
    after_commit(notify.to_session, session.workspace.slug, session.key, event_names.SESSION_CLOSED, payload)


def session_updated(session: ChatSession) -> None:
    payload = {
        "sessionId": session.key,
        "workspaceId": session.workspace.slug,
        "title": session.title,
        "agentId": session.agent.key if session.agent_id else None,
        "status": session.status,
        "timestamp": now_ms(),
    }
    after_commit(notify.to_session, session.workspace.slug, session.key, event_names.SESSION_UPDATED, payload)


# --- users ----------------------------------------------------------------------


async def _remove_sockets(workspace_slug: str, user_id: int, socket_ids: list[str], event: str | None) -> None:
    payload = {"workspaceId": workspace_slug, "timestamp": now_ms()}
    for socket_id in socket_ids:
        if event is not None:
            await notify.emitter.emit_to_socket(socket_id, event, payload)
        await notify.emitter.disconnect_room(socket_room(socket_id))
    await notify.emitter.disconnect_room(notify.workspace_user_room(workspace_slug, user_id))


def user_removed(workspace_slug: str, user_id: int, socket_ids: Iterable[str], *, banned: bool) -> None:
    """Disconnect every socket the user has in the workspace (a ban, or a removed membership)."""
    after_commit(
        _remove_sockets, workspace_slug, user_id, sorted(set(socket_ids)), event_names.BANNED if banned else None
    )
