"""``chat:join-session`` and ``chat:leave-session``; leaving also happens on disconnect."""

from __future__ import annotations

import functools
import time
from typing import Any

from channels.db import database_sync_to_async

from channels_socketio.protocol.namespace import Namespace
from channels_socketio.protocol.socket import Socket
from chat import event_names, notify
from chat.agents import runner
from chat.errors import AccessRevoked
from chat.events.context import JoinedSession, find_joined, joined
from chat.events.handler import chat_event
from chat.events.payloads import optional_client_id, required_client_id, required_slug
from chat.events.typing_state import stop_typing
from chat.services import access, attachments, messages, moderation, presence, read_state
from chat.services.access import Standing
from chat.shapes import message_shape, now_ms, presence_shape, user_left_shape
from monitoring import metrics


def _join(user: Any, workspace_slug: str, session_key: str, agent_key: str | None, socket_id: str):
    moderation.check_not_banned(user, workspace_slug)
    membership = access.membership_for(user, workspace_slug)
    session, _created = access.open_session(membership, session_key, agent_key)
    row = presence.enter(session, socket_id, user)
    session.workspace = membership.workspace
    session.last_read_seq = read_state.pointer(session.pk, user.pk)
    session.unread_count = read_state.unread_count(session.pk, user.pk, session.last_read_seq)
    return JoinedSession(
        session_id=session.pk,
        session_key=session.key,
        workspace_id=membership.workspace_id,
        workspace_slug=workspace_slug,
        moderates=membership.moderates,
        checked_at=time.monotonic(),
    ), session, presence_shape(row, session)


def _missed_rows(session_id: int, first: int, last: int | None) -> list[Any]:
    rows = messages.visible_between(session_id, first, last)
    attachments.attach_shapes(rows, user_id=None)  # as broadcast: no one's links
    return rows


async def _missed(session_id: int, first: int, last: int | None) -> list[tuple[int, str, list[Any]]]:
    """A session's messages that this worker's members missed, as ``chat:message-received`` events."""
    rows = await database_sync_to_async(_missed_rows)(session_id, first, last)
    return [(row.seq, event_names.MESSAGE_RECEIVED, [message_shape(row, row.session)]) for row in rows]


async def leave_joined(socket: Socket, entry: JoinedSession) -> None:
    """Leave one session: rooms, presence, typing, and tell the others."""
    joined(socket).pop((entry.workspace_slug, entry.session_key), None)
    metrics.session_left(socket.id, entry.workspace_slug, entry.session_key)
    await stop_typing(socket, entry)
    await socket.leave(notify.session_room(entry.workspace_slug, entry.session_key))
    if not any(slug == entry.workspace_slug for slug, _ in joined(socket)):
        await socket.leave(notify.workspace_room(entry.workspace_slug))
        await socket.leave(notify.workspace_user_room(entry.workspace_slug, socket.user.pk))
    if await database_sync_to_async(presence.leave)(entry.session_id, socket.id):
        await notify.to_session(
            entry.workspace_slug,
            entry.session_key,
            event_names.USER_LEFT,
            user_left_shape(entry.session_key, socket.user.get_username(), socket.id),
        )


async def _still_allowed(socket: Socket, entry: JoinedSession) -> None:
    """Read access again now that the socket is in the user's room: a change committed while it joined
    either shows here or sends its notice to that room (:mod:`chat.events.access`), never neither."""
    standing = (await access.standing_reads.submit((socket.user.pk, [entry.session_id])))[entry.session_id]
    if standing in (Standing.BANNED, Standing.REVOKED):
        await leave_joined(socket, entry)
        raise moderation.Banned("You are banned from this workspace.") if standing is Standing.BANNED else AccessRevoked()
    entry.moderates = standing is Standing.MODERATOR
    entry.checked_at = time.monotonic()


def register(namespace: Namespace) -> None:
    @chat_event(namespace, event_names.JOIN_SESSION, operation="join")
    async def join_session(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        session_key = required_client_id(payload, "sessionId")
        workspace_slug = required_slug(payload, "workspaceId")
        agent_key = optional_client_id(payload, "agentId")
        # Joining again is answered like the first time (fresh lastSeq and
        # presence) but tells nobody else: nobody new arrived.
        rejoin = (workspace_slug, session_key) in joined(socket)
        entry, session, presence_payload = await database_sync_to_async(_join)(
            socket.user, workspace_slug, session_key, agent_key, socket.id
        )
        if rejoin:
            entry = joined(socket)[(workspace_slug, session_key)]
        else:
            joined(socket)[(workspace_slug, session_key)] = entry
            metrics.session_joined(socket.id, workspace_slug, session_key)
        room = notify.session_room(workspace_slug, session_key)
        # The joiner's lastSeq is where its live stream starts on this worker (which may be
        # ahead of the row read above): history up to it, every later message live.
        last_seq = await socket.join_ordered(room, session.last_seq + 1, functools.partial(_missed, session.pk))
        await socket.join(notify.workspace_room(workspace_slug))
        await socket.join(notify.workspace_user_room(workspace_slug, socket.user.pk))
        await _still_allowed(socket, entry)
        success = {
            "sessionId": session_key,
            "agentId": session.agent.key if session.agent_id else None,
            "workspaceId": workspace_slug,
            "roomId": f"chat:session:{session_key}",
            "workspaceRoomId": f"chat:workspace:{workspace_slug}",
            "status": session.status,
            "lastSeq": last_seq,
            "lastReadSeq": session.last_read_seq,
            "unreadCount": session.unread_count,
            "timestamp": now_ms(),
            "presence": presence_payload,
        }
        await socket.emit(event_names.JOIN_SESSION_SUCCESS, success)
        if not rejoin:
            await notify.to_session(
                workspace_slug, session_key, event_names.USER_JOINED, presence_payload, exclude=[socket.id]
            )
        # After joining the room: a reply streaming now reaches this socket as its text so far, then live.
        await runner.catch_up(entry.session_id, socket.id)
        return success

    @chat_event(namespace, event_names.LEAVE_SESSION, operation="join")
    async def leave_session(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        entry = find_joined(socket, payload)
        await leave_joined(socket, entry)
        return {"sessionId": entry.session_key, "workspaceId": entry.workspace_slug}
