"""Replacing a stored message's content with a new version, keeping the one it replaces.

Layer: chat services (rows only; callers announce after commit).  Used by
regenerated agent replies (``chat.agents.runs``); an edit is the same
change with ``reason="edit"``.  The message keeps its id and ``seq``; its
``version`` grows by one and the replaced content, type, HTML and metadata
become a :class:`~chat.models.MessageVersion` row with that old number.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from chat.models import ChatMessage, MessageVersion
from security.render import html_for


def keep_current(message: ChatMessage, reason: str, changed_by_id: int | None) -> MessageVersion:
    """The message's current content becomes a version row with its current number (the caller bumps it)."""
    return MessageVersion.objects.create(
        message=message,
        version=message.version,
        content=message.content,
        content_type=message.content_type,
        html=message.html,
        metadata=message.metadata,
        reason=reason,
        changed_by_id=changed_by_id,
    )


def replace_content(
    message_id: int,
    content: str,
    content_type: str,
    metadata: dict[str, Any],
    *,
    reason: str,
    changed_by: AbstractBaseUser | int | None = None,
) -> ChatMessage | None:
    """The message with its new version (``None`` if it is gone or deleted); call within or as a transaction."""
    with transaction.atomic():
        message = ChatMessage.objects.select_for_update().filter(pk=message_id, deleted_at__isnull=True).first()
        if message is None:
            return None
        changed_by_id = changed_by if isinstance(changed_by, int) or changed_by is None else changed_by.pk
        keep_current(message, reason, changed_by_id)
        message.content = content
        message.content_type = content_type
        message.html = html_for(content, content_type)
        message.metadata = metadata
        message.version += 1
        message.save(update_fields=["content", "content_type", "html", "metadata", "version"])
        return message
