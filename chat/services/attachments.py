"""Attachments: storing an upload, claiming uploads for a message, their shapes, and removing them.

Layer: chat services.  Files go through Django's storage API (the
``attachments`` storage of ``settings.STORAGES``: a local directory by
default, any ``django-storages`` backend by ``CHAT_ATTACHMENTS_STORAGE``),
under a name made of the workspace and a random id: the client's filename is
never part of a path.

An upload is refused, and nothing is stored, when its display name has
control characters (``attachment_name_invalid``), when it is over the
workspace's size (``attachment_too_large``), when its sniffed type is
scriptable or not on the workspace's list (``attachment_type_not_allowed``),
or when its uploader already holds ``CHAT_ATTACHMENTS_PENDING_MAX`` uploads
no message references (``attachments_pending_limit``).  A message claims
uploads of its own author in its own session that no message has claimed
yet (:func:`store_with_attachments`), in the transaction that stores it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import unicodedata
from datetime import timedelta
from typing import Iterable

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import Storage, storages
from django.db import transaction
from django.utils import timezone

from chat.errors import (
    AttachmentInUse,
    AttachmentNameInvalid,
    AttachmentNotFound,
    AttachmentsPendingLimit,
    AttachmentTooLarge,
    AttachmentTypeNotAllowed,
    ChatError,
    InvalidPayload,
    TooManyAttachments,
)
from chat.models import Attachment, ChatMessage, ChatSession, Membership, Workspace
from chat.services import access, attachment_links, sniff
from chat.services.messages import NewMessage, StoredMessage, store_messages
from chat.shapes import attachment_shape

logger = logging.getLogger(__name__)

NAME_MAX_LENGTH = 255
_CHUNK = 64 * 1024


def storage() -> Storage:
    return storages["attachments"]


def max_bytes(workspace: Workspace) -> int:
    """The workspace's largest upload, never above the server's ceiling."""
    chosen = workspace.attachment_max_bytes or settings.CHAT.attachment_max_bytes
    return min(chosen, settings.CHAT.attachment_max_bytes_ceiling)


def allowed_types(workspace: Workspace) -> frozenset[str]:
    listed = [item.strip().lower() for item in workspace.attachment_types.split(",") if item.strip()]
    return frozenset(listed or settings.CHAT.attachment_types) - sniff.SCRIPTABLE


#: Characters that reorder what follows them: ``evil\u202egnp.exe`` shows as ``evilexe.png``.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def display_name(raw: str) -> str:
    """The name shown for an upload: its last path segment, NFC; control and bidi characters are refused."""
    if any(char in BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") for char in raw):
        raise AttachmentNameInvalid()
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1].strip())
    if len(name) > NAME_MAX_LENGTH:
        raise AttachmentNameInvalid()
    return name if name not in ("", ".", "..") else "attachment"


def check_pending(user_id: int) -> None:
    if Attachment.objects.filter(uploaded_by_id=user_id, message__isnull=True).count() >= (
        limit := settings.CHAT.attachments_pending_max
    ):
        raise AttachmentsPendingLimit(limit=limit)


def _inspect(upload: File) -> tuple[sniff.Sniffed, str]:
    """The sniffed type and the sha256 of an upload, read once, a chunk at a time."""
    digest = hashlib.sha256()
    upload.seek(0)
    head = upload.read(sniff.HEAD_BYTES)
    found = sniff.sniff(head)
    digest.update(head)
    text = sniff.TextCheck() if found.content_type == sniff.TEXT else None
    if text is not None:
        text.feed(head)
    while chunk := upload.read(_CHUNK):
        digest.update(chunk)
        if text is not None:
            text.feed(chunk)
    if text is not None and not text.feed(b"", final=True):
        found = sniff.Sniffed(sniff.OCTET_STREAM)
    upload.seek(0)
    return found, digest.hexdigest()


def store_upload(membership: Membership, session: ChatSession, upload: File, name: str) -> Attachment:
    """Check and store one upload of the member in the session; raise the refusal's :class:`ChatError`."""
    shown = display_name(name)
    limit = max_bytes(membership.workspace)
    if upload.size is None or upload.size > limit:
        raise AttachmentTooLarge(maxBytes=limit)
    if upload.size == 0:
        raise InvalidPayload("The file is empty.")
    check_pending(membership.user_id)
    found, sha256 = _inspect(upload)
    if found.content_type not in allowed_types(membership.workspace):
        raise AttachmentTypeNotAllowed(contentType=found.content_type)
    public_id = secrets.token_hex(16)
    stored_name = storage().save(f"{session.workspace_id}/{public_id}", upload)
    try:
        return Attachment.objects.create(
            workspace_id=session.workspace_id,
            session=session,
            uploaded_by_id=membership.user_id,
            public_id=public_id,
            storage_name=stored_name,
            name=shown,
            content_type=found.content_type,
            size=upload.size,
            sha256=sha256,
            width=found.width,
            height=found.height,
        )
    except Exception:
        storage().delete(stored_name)
        raise


def check_count(public_ids: Iterable[str]) -> list[str]:
    """The ids a message names, each once, in order; at most ``CHAT_ATTACHMENTS_PER_MESSAGE``."""
    ids = list(dict.fromkeys(public_ids))
    if len(ids) > (limit := settings.CHAT.attachments_per_message):
        raise TooManyAttachments(limit=limit)
    return ids


def store_with_attachments(new: NewMessage, user_id: int, public_ids: list[str]) -> StoredMessage:
    """Store a message and claim its attachments in one transaction (nothing stored if any is refused).

    Each must be an upload of ``user_id`` in the message's session
    (``attachment_not_found`` otherwise, whoever's it is) that no message has
    claimed (``attachment_in_use``).  A message id sent before answers the
    original, as every send does.
    """
    with transaction.atomic():
        existing = ChatMessage.objects.filter(session_id=new.session_id, key=new.key).first()
        if existing is not None:
            attach_shapes([existing], user_id=None)
            return StoredMessage(existing, created=False)
        rows = Attachment.objects.select_for_update().filter(
            public_id__in=public_ids, session_id=new.session_id, uploaded_by_id=user_id
        )
        found = {row.public_id: row for row in rows}
        for public_id in public_ids:
            if public_id not in found:
                raise AttachmentNotFound(attachmentId=public_id)
            if found[public_id].message_id is not None:
                raise AttachmentInUse(attachmentId=public_id)
        [result] = store_messages([new])
        if isinstance(result, ChatError):
            raise result
        if result.created:
            Attachment.objects.filter(pk__in=[row.pk for row in found.values()]).update(message=result.message)
            result.message.attachment_shapes = [attachment_shape(found[public_id], None) for public_id in public_ids]
        return result


def attach_shapes(messages: list[ChatMessage], *, user_id: int | None) -> None:
    """Give each message its ``attachment_shapes`` (one query), with links for ``user_id`` (``None``: no links).

    Deleted messages show none (their files are on their way out).
    """
    ids = [message.pk for message in messages if getattr(message, "deleted_at", None) is None]
    by_message: dict[int, list[Attachment]] = {}
    if ids:
        for row in Attachment.objects.filter(message_id__in=ids).order_by("id"):
            by_message.setdefault(row.message_id, []).append(row)
    for message in messages:
        message.attachment_shapes = [shape_for(row, user_id) for row in by_message.get(message.pk, [])]


def shape_for(row: Attachment, user_id: int | None) -> dict:
    return attachment_shape(row, None if user_id is None else attachment_links.download_url(row.public_id, user_id))


# --- who may see one -----------------------------------------------------------------


def may_see(membership: Membership, row: Attachment) -> bool:
    """A pending upload only its uploader; a sent one whoever may see its message (moderators: hidden and
    deleted ones too).  The session's access is the caller's to check."""
    if row.message_id is None:
        return row.uploaded_by_id == membership.user_id
    message = row.message
    return membership.moderates or not (message.hidden or message.deleted_at is not None)


def visible_in(membership: Membership, session: ChatSession, public_id: str) -> Attachment:
    """An attachment of a session the member may see (the caller found the session within their access)."""
    row = Attachment.objects.select_related("message").filter(session=session, public_id=public_id).first()
    if row is None or not may_see(membership, row):
        raise AttachmentNotFound()
    return row


def downloadable(public_id: str, user_id: int) -> Attachment:
    """The attachment a signed link names, if its user may still see it now; :class:`AttachmentNotFound`
    otherwise (gone, another workspace, access lost), which says nothing of which."""
    row = (
        Attachment.objects.select_related("message", "session__workspace").filter(public_id=public_id).first()
    )
    membership = None
    if row is not None:
        membership = (
            Membership.objects.select_related("workspace")
            .filter(user_id=user_id, user__is_active=True, workspace_id=row.workspace_id)
            .first()
        )
    if row is None or membership is None or not access.can_access(membership, row.session) or not may_see(
        membership, row
    ):
        raise AttachmentNotFound()
    return row


# --- removal --------------------------------------------------------------------------


def delete_attachments(rows: Iterable[Attachment]) -> int:
    """Remove attachments: each file from storage, then its row.  A file already gone is not an error."""
    count = 0
    for row in rows:
        try:
            storage().delete(row.storage_name)
        except Exception as error:  # the row goes anyway; the file is logged for an operator
            logger.warning("attachment file %s could not be deleted (%s)", row.storage_name, type(error).__name__)
        row.delete()
        count += 1
    return count


def delete_attachments_of(message: ChatMessage) -> int:
    """Remove a message's attachments now (moderation, or its deletion once the edit window is over)."""
    return delete_attachments(list(Attachment.objects.filter(message=message)))


#: Rows removed per housekeeping round, so that one round stays short.
PURGE_BATCH = 200


def purge(now: object = None) -> int:
    """Housekeeping: uploads no message claimed within their time, and the attachments of messages deleted
    longer ago than their workspace's edit window (``Workspace.edit_window_s``)."""
    now = now or timezone.now()
    unreferenced = Attachment.objects.filter(
        message__isnull=True, created_at__lt=now - timedelta(seconds=settings.CHAT.attachment_unreferenced_ttl_s)
    )
    deleted = Attachment.objects.filter(message__deleted_at__lt=now).select_related(
        "message", "message__session__workspace"
    )
    expired = [
        attachment
        for attachment in deleted[:PURGE_BATCH]
        if attachment.message.deleted_at + timedelta(seconds=attachment.message.session.workspace.edit_window_s) < now
    ]
    return delete_attachments(list(unreferenced[:PURGE_BATCH])) + delete_attachments(expired)
