"""Editing and deleting a stored message: the one path every surface takes.

Layer: chat actions.  Callers: the socket's ``chat:edit-message`` and
``chat:delete-message``, the REST API's ``PATCH`` and ``DELETE`` of a message.

:func:`edit_message`, in this order: the message (hidden ones exist only
for moderators; another session's or workspace's is ``message_not_found``),
the member's ``send`` rate limit (an edit costs what a send does), who may
and until when (:mod:`chat.services.edits`: before screening, so a refused
edit never counts as suspicious content), then everything a new message
goes through (:func:`chat.actions.messages.check_message`: length, form,
screening, rendering), then the versioned write under the row's lock.
:func:`delete_message` is the same without content.

Once committed, the change goes to every member of the session:
``chat:message-updated`` with the whole message, ``chat:message-deleted``
with its tombstone's ids; both carry ``seq`` and the new ``version``, and a
client keeps whichever version of a message is highest, so late, repeated
or reordered events converge.  A repeat (``changed`` False) is announced
again: the worker that committed the change may have died before
announcing it, and clients ignore a version they already have.  Changes to
a hidden message are not announced: members do not have it.

Agents are not re-triggered by an edit (``docs/protocol.md``): an agent's
reply answers the message as it was sent; the session's next message gives
it the edited text as context.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.db import DatabaseError
from django.utils import timezone

from chat import event_names, notify
from chat.actions.messages import Author, Draft, SessionRef, check_message, limit_sends
from chat.errors import StoreFailed
from chat.models import ChatMessage
from chat.services import attachments, edits
from chat.services.edits import Change, NewContent
from chat.shapes import message_shape, now_ms

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Edit:
    """What the member sent: the message's id, the version they edit from, and the new content.

    ``content_type`` and ``metadata``: ``None`` keeps the message's own.
    """

    key: str
    version: int
    content: str
    content_type: str | None = None
    metadata: dict[str, Any] | None = None


_find = database_sync_to_async(edits.find_message)


async def _write(func: Any, *args: Any) -> Change:
    """Run the versioned write; a database failure rolled it back: ``internal``, retryable, nothing announced."""
    try:
        return await database_sync_to_async(func)(*args)
    except DatabaseError:
        logger.exception("storing a message change failed")
        raise StoreFailed("The change could not be stored; please retry.") from None


async def edit_message(author: Author, where: SessionRef, edit: Edit, *, moderates: bool) -> Change:
    """Check, store a new version, announce; the changed message (``changed`` False for a repeat)."""
    message = await _find(where.session_id, edit.key, include_hidden=moderates)
    await limit_sends(author)
    edits.check_may_edit(message, author.member.pk, timezone.now())
    draft = Draft(
        edit.key,
        edit.content,
        message.content_type if edit.content_type is None else edit.content_type,
        message.metadata if edit.metadata is None else edit.metadata,
    )
    html = await check_message(author, where, draft)
    new = NewContent(draft.content, draft.content_type, draft.metadata, html)
    change = await _write(edits.apply_edit, message.pk, author.member, edit.version, new)
    # An edit changes the text, not the files: the broadcast carries them as they are (no one's links).
    await database_sync_to_async(attachments.attach_shapes)([change.message], user_id=None)
    if not change.message.hidden and (change.changed or change.message.version > edit.version):
        await announce_updated(where, change.message)
    return change


async def delete_message(
    author: Author, where: SessionRef, key: str, *, moderates: bool, version: int | None = None
) -> Change:
    """Check, delete (keeping the content as a version), announce; ``changed`` False if it was deleted before."""
    message = await _find(where.session_id, key, include_hidden=moderates)
    await limit_sends(author)
    if message.deleted_at is None:
        edits.check_may_delete(message, author.member.pk, moderates, timezone.now())
    change = await _write(edits.apply_delete, message.pk, author.member, moderates, version)
    if not change.message.hidden:
        await announce_deleted(where, change.message)
    return change


async def announce_updated(where: SessionRef, message: ChatMessage) -> None:
    shape = message_shape(message, workspace_slug=where.workspace_slug, session_key=where.session_key)
    await _announce(where, event_names.MESSAGE_UPDATED, updated_payload(shape))


async def announce_deleted(where: SessionRef, message: ChatMessage) -> None:
    await _announce(
        where, event_names.MESSAGE_DELETED, deleted_payload(where.workspace_slug, where.session_key, message)
    )


async def _announce(where: SessionRef, event: str, payload: dict[str, Any]) -> None:
    """The change is committed whatever happens here: a failed broadcast is logged, never the caller's error
    (clients that missed it get the message as it is from history; a repeat of the change announces it again)."""
    try:
        await notify.to_session(where.workspace_slug, where.session_key, event, payload)
    except Exception:
        logger.exception("announcing %s failed", event)


def updated_payload(shape: dict[str, Any]) -> dict[str, Any]:
    """``chat:message-updated``: the ids, ``seq`` and ``version`` up front, and the whole message."""
    return {
        "sessionId": shape["sessionId"],
        "workspaceId": shape["workspaceId"],
        "messageId": shape["id"],
        "seq": shape["seq"],
        "version": shape["version"],
        "message": shape,
    }


def deleted_payload(workspace_slug: str, session_key: str, message: ChatMessage) -> dict[str, Any]:
    return {
        "sessionId": session_key,
        "workspaceId": workspace_slug,
        "messageId": message.key,
        "seq": message.seq,
        "version": message.version,
        "timestamp": now_ms(),
    }
