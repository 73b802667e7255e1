"""The JSON shapes of chat objects on the socket protocol (``docs/protocol.md``).

One function per shape, so every event that carries a message, a presence
or a typing indicator sends exactly the same fields.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from chat.models import Attachment, ChatMessage, ChatSession, ContentType, Presence


def now_ms() -> int:
    return int(time.time() * 1000)


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def message_shape(
    message: ChatMessage,
    session: ChatSession | None = None,
    *,
    workspace_slug: str | None = None,
    session_key: str | None = None,
) -> dict[str, Any]:
    """A message on the wire; pass the ids when known to avoid loading the session.

    A deleted message is a tombstone (:func:`tombstone`): its place in the
    session, never its content, which only moderators see (in the admin and
    the versions endpoint).
    """
    if workspace_slug is None or session_key is None:
        session = session or message.session
        workspace_slug, session_key = session.workspace.slug, session.key
    if message.deleted_at is not None:
        return tombstone(message, workspace_slug, session_key)
    return {
        **_place(message, workspace_slug, session_key),
        "content": message.content,
        "contentType": message.content_type,
        "html": rendered_html(message),
        "metadata": message.metadata,
        **reactions_fields(message),
        "deleted": False,
        # Set by whoever loaded the message with its attachments (``chat.services.attachments.attach_shapes``,
        # or the send that claimed them); a message nobody gave any has none, with no query on the hot path.
        "attachments": getattr(message, "attachment_shapes", []),
    }


def reactions_fields(message: ChatMessage) -> dict[str, Any]:
    """A message's reactions and their version, as ``chat.services.reactions.attach`` left them on it.

    A message nobody attached them to is a new one (just stored): no reactions, version 0.
    """
    aggregate = getattr(message, "reaction_aggregate", None)
    if aggregate is None:
        return {"reactions": [], "reactionsVersion": 0}
    return {"reactions": aggregate.reactions, "reactionsVersion": aggregate.version}


def reactions_updated_shape(
    message: ChatMessage,
    session_key: str,
    workspace_slug: str,
    *,
    actor: str,
    emoji: str,
    added: bool,
) -> dict[str, Any]:
    """``chat:reactions-updated``: the message's whole aggregate, its version, and the change that made it."""
    return {
        "sessionId": session_key,
        "workspaceId": workspace_slug,
        "messageId": message.key,
        "seq": message.seq,
        **reactions_fields(message),
        "userId": actor,
        "emoji": emoji,
        "added": added,
        "timestamp": now_ms(),
    }


def read_updated_shape(
    session_key: str, workspace_slug: str, user_name: str, seq: int, unread_count: int
) -> dict[str, Any]:
    """``chat:read-updated``: a member's read pointer moved (read receipts; their other devices' badges)."""
    return {
        "sessionId": session_key,
        "workspaceId": workspace_slug,
        "userId": user_name,
        "seq": seq,
        "unreadCount": unread_count,
        "timestamp": now_ms(),
    }


def tombstone(message: ChatMessage, workspace_slug: str, session_key: str) -> dict[str, Any]:
    """Where a deleted message was: who sent it and when, with empty content."""
    return {
        **_place(message, workspace_slug, session_key),
        "content": "",
        "contentType": ContentType.TEXT,
        "html": None,
        "metadata": {},
        # A deleted message takes no reactions and shows none; its reactions' version stays, so that an
        # older aggregate arriving late cannot bring them back.
        "reactions": [],
        "reactionsVersion": reactions_fields(message)["reactionsVersion"],
        "deleted": True,
        "attachments": [],
    }


def _place(message: ChatMessage, workspace_slug: str, session_key: str) -> dict[str, Any]:
    """What every message shape carries, deleted or not: where it is, who sent it, when, which version."""
    return {
        "id": message.key,
        "sessionId": session_key,
        "workspaceId": workspace_slug,
        "seq": message.seq,
        "senderType": message.sender_type,
        "userId": message.sender_name if message.sender_type == "user" else None,
        "userName": message.sender_name,
        "timestamp": to_ms(message.created_at),
        "version": message.version,
        "editedAt": to_ms(message.edited_at) if message.edited_at else None,
    }


def attachment_shape(attachment: Attachment, url: str | None) -> dict[str, Any]:
    """An attachment on the wire.  ``url``: a signed download link for one user (``None`` in broadcasts,
    which every member receives alike: ask ``GET .../attachments/<id>/`` for a link of your own)."""
    return {
        "id": attachment.public_id,
        "name": attachment.name,
        "contentType": attachment.content_type,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
        "url": url,
    }


def rendered_html(message: ChatMessage) -> str | None:
    """The safe HTML of a markdown message (made once, when it was stored); ``None`` for text, which has none."""
    return message.html if message.content_type == ContentType.MARKDOWN else None


def presence_shape(presence: Presence, session: ChatSession | None = None) -> dict[str, Any]:
    session = session or presence.session
    return {
        "sessionId": session.key,
        "workspaceId": session.workspace.slug,
        "userId": presence.user_name,
        "userName": presence.user_name,
        "socketId": presence.socket_id,
        "status": presence.status,
        "lastSeen": to_ms(presence.last_seen),
    }


def typing_shape(session_key: str, user_name: str, is_typing: bool) -> dict[str, Any]:
    return {
        "sessionId": session_key,
        "userId": user_name,
        "userName": user_name,
        "isTyping": is_typing,
        "timestamp": now_ms(),
    }


def user_left_shape(session_key: str, user_name: str, socket_id: str) -> dict[str, Any]:
    return {"sessionId": session_key, "userId": user_name, "socketId": socket_id, "timestamp": now_ms()}
