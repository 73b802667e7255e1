"""Where chat events are announced to sockets: room names and the broadcast calls.

The workspace is the first argument of everything here, so no event can be
addressed without saying whose it is, and room names are built only from
server-side ids, never from client text.  Callers announce only what has
already been committed.
"""

from __future__ import annotations

from typing import Any, Iterable

from channels_socketio.protocol.emitter import Emitter, socket_room

emitter = Emitter()


def session_room(workspace_slug: str, session_key: str) -> str:
    return f"chat:workspace:{workspace_slug}:session:{session_key}"


def workspace_room(workspace_slug: str) -> str:
    return f"chat:workspace:{workspace_slug}"


def workspace_user_room(workspace_slug: str, user_id: int) -> str:
    """Every socket of one user in one workspace: a ban disconnects this room, an access change notifies it."""
    return f"chat:workspace:{workspace_slug}:user:{user_id}"


async def to_session(
    workspace_slug: str,
    session_key: str,
    event: str,
    payload: dict[str, Any],
    *,
    exclude: Iterable[str] = (),
    seq: int | None = None,
) -> None:
    """Send ``event`` to every socket that joined the session, on every worker.

    ``seq``: a stored message's number, so that every member gets the
    session's messages in order whichever worker stored them.
    """
    await emitter.emit(event, payload, room=session_room(workspace_slug, session_key), exclude=exclude, seq=seq)


async def to_socket(socket_id: str, event: str, payload: dict[str, Any]) -> None:
    """Send ``event`` to one socket, on whichever worker it is."""
    await emitter.emit_to_socket(socket_id, event, payload)


async def to_workspace(workspace_slug: str, event: str, payload: dict[str, Any]) -> None:
    await emitter.emit(event, payload, room=workspace_room(workspace_slug))


async def to_user(
    workspace_slug: str, user_id: int, event: str, payload: dict[str, Any], *, exclude: Iterable[str] = ()
) -> None:
    """Send ``event`` to every socket of one user in one workspace (their other devices), on every worker."""
    await emitter.emit(event, payload, room=workspace_user_room(workspace_slug, user_id), exclude=exclude)


async def disconnect_session_sockets(workspace_slug: str, session_key: str) -> None:
    await emitter.disconnect_room(session_room(workspace_slug, session_key))


#: The kind of notice :func:`access_changed` sends (handled by ``chat.events.access``).
ACCESS_CHANGED = "access_changed"


async def access_changed(workspace_slug: str, user_id: int) -> None:
    """Every socket of the user in the workspace, on every worker, re-reads its access there and acts on it."""
    await emitter.notice_room(
        workspace_user_room(workspace_slug, user_id), {"kind": ACCESS_CHANGED, "workspaceId": workspace_slug}
    )


async def socket_access_changed(socket_id: str, workspace_slug: str) -> None:
    """One socket, wherever it is, re-reads its access in the workspace (the sweep's :func:`access_changed`)."""
    await emitter.notice_room(socket_room(socket_id), {"kind": ACCESS_CHANGED, "workspaceId": workspace_slug})
