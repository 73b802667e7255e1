"""Access re-checked on live sockets: at once when it changes, and before an event when stale.

An access change (:mod:`chat.actions.access`: unshare, removal, role change)
sends a notice to the user's sockets in the workspace, on every worker
(:func:`chat.notify.access_changed`).  Each socket then reads its standing
in every session it joined there (:func:`chat.services.access.standing_in`)
and acts on it:

- banned: ``chat:banned``, then disconnected;
- no longer allowed in (removed, unshared, demoted out of a session it was
  in as a moderator): leaves it and gets ``chat:session-left`` with code
  ``access_revoked``;
- still in: its moderator view follows its role (hidden messages in history,
  cancelling others' agent replies).

A lost notice cannot keep access: every event on a joined session re-reads
it first when it was last read over ``CHAT_ACCESS_RECHECK_S`` ago (half to
all of it, spread over the sockets), and an event past half that age starts
the re-read in the background, so a socket in use finds it fresh and its
events never wait for it; a
history request always re-reads first, and each worker's housekeeping sends the
notice again to its sockets still in a session they lost
(:func:`chat.services.access.revoked_sockets`, every third of
``CHAT_PRESENCE_TTL_S``), so a socket that sends nothing stops receiving too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from django.conf import settings

from channels_socketio.protocol.namespace import Namespace
from channels_socketio.protocol.socket import Socket
from chat import event_names, notify
from chat.errors import AccessRevoked
from chat.events.context import JoinedSession, find_joined, joined
from chat.events.sessions import leave_joined
from chat.services import access
from chat.services.access import Standing
from chat.services.moderation import Banned
from chat.shapes import now_ms

logger = logging.getLogger(__name__)

async def recheck(socket: Socket, workspace_slug: str | None = None) -> None:
    """Read the socket's standing in the sessions it joined (in one workspace, or all) and act on it."""
    entries = [entry for entry in joined(socket).values() if workspace_slug in (None, entry.workspace_slug)]
    if not entries:
        return
    standing = await access.standing_reads.submit((socket.user.pk, [entry.session_id for entry in entries]))
    for entry in entries:
        if not socket.connected:
            return
        await _apply(socket, entry, standing[entry.session_id])


async def _apply(socket: Socket, entry: JoinedSession, standing: Standing) -> None:
    if standing is Standing.BANNED:
        await socket.emit(event_names.BANNED, {"workspaceId": entry.workspace_slug, "timestamp": now_ms()})
        await socket.disconnect()
    elif standing is Standing.REVOKED:
        await leave_joined(socket, entry)
        await socket.emit(
            event_names.SESSION_LEFT,
            {
                "sessionId": entry.session_key,
                "workspaceId": entry.workspace_slug,
                "code": AccessRevoked.code,
                "message": AccessRevoked.default_message,
                "timestamp": now_ms(),
            },
        )
    else:
        entry.moderates = standing is Standing.MODERATOR
        entry.checked_at = time.monotonic()


async def current_joined(socket: Socket, payload: dict[str, Any], *, fresh: bool = False) -> JoinedSession:
    """The joined session a payload names (:func:`find_joined`), its access re-read if stale (or ``fresh``).

    Raises ``banned`` or ``access_revoked`` when the socket lost it (and has been told so).
    """
    entry = find_joined(socket, payload)
    age, limit = time.monotonic() - entry.checked_at, settings.CHAT.access_recheck_s * _spread(entry)
    if not fresh and limit / 2 <= age < limit and not entry.refreshing:
        _refresh_soon(socket, entry)
    if fresh or age >= limit:
        await recheck(socket, entry.workspace_slug)
        if not socket.connected:
            raise Banned("You are banned from this workspace.", sessionId=entry.session_key)
        if joined(socket).get((entry.workspace_slug, entry.session_key)) is not entry:
            raise AccessRevoked(sessionId=entry.session_key)
    return entry


#: Re-reads under way in the background (referenced until done).
_refreshing: set[asyncio.Task[None]] = set()


def _refresh_soon(socket: Socket, entry: JoinedSession) -> None:
    entry.refreshing = True
    task = asyncio.get_running_loop().create_task(_refresh(socket, entry), name="access-refresh")
    _refreshing.add(task)
    task.add_done_callback(_refreshing.discard)


async def _refresh(socket: Socket, entry: JoinedSession) -> None:
    try:
        await recheck(socket, entry.workspace_slug)
    except Exception as error:  # the next event past the limit re-reads it, and waits for it
        logger.warning("re-reading a socket's access failed (%s)", type(error).__name__)
    finally:
        entry.refreshing = False


def _spread(entry: JoinedSession) -> float:
    """Between 0.5 and 1, fixed for each joined session: sockets that joined together (a reconnect
    storm, a bench) re-read their access at different moments, not all in the same event-loop turn."""
    return 0.5 + (id(entry) % 1024) / 2048


def register(namespace: Namespace) -> None:
    @namespace.on_notice
    async def access_changed(socket: Socket, data: Any) -> None:
        if isinstance(data, dict) and data.get("kind") == notify.ACCESS_CHANGED:
            workspace = data.get("workspaceId")
            await recheck(socket, workspace if isinstance(workspace, str) else None)
