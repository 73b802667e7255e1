"""Changing a stored message: who may, until when, and the versioned write.

Layer: chat services (storage).  The action that checks, screens and
announces is :mod:`chat.actions.edits`.

Rules:

- the author edits their own message (a member's: ``sender_type`` user);
  the author or a moderator of the workspace deletes one;
- the author only within the workspace's ``edit_window_s`` after sending
  (0: never); moderators delete at any time;
- edits need an open session and an author who is not muted (like sending);
- a deleted message stays deleted: editing it is ``message_deleted``,
  deleting it again changes nothing.

Every change keeps what it replaced as a :class:`~chat.models.MessageVersion`
row and bumps the message's ``version``, in one transaction that holds the
message's row lock (PostgreSQL) and writes only if the version is still the
one read (a compare-and-set, which also serialises SQLite's writers); the
unique ``(message, version)`` of the kept rows refuses a second writer of
the same version either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from chat.errors import EditWindowClosed, MessageDeleted, NotAuthor, SessionClosed, TooManyEdits, VersionConflict
from chat.models import ChatMessage, MessageVersion, SenderType, SessionStatus, VersionReason
from chat.services import versions
from chat.services.moderation import audit, check_user_can_send
from chat.services.sessions import MessageNotFound

#: The most versions edits can give one message (each keeps one row): a cap on what one author can store.
#: Deleting is always possible (one more row).
MAX_VERSIONS = 50


@dataclass(frozen=True)
class Change:
    message: ChatMessage
    #: False when nothing new was stored: a repeat of the change already made (or an edit to the same text).
    changed: bool


@dataclass(frozen=True)
class NewContent:
    content: str
    content_type: str
    metadata: dict
    html: str


def find_message(session_id: int, key: str, *, include_hidden: bool) -> ChatMessage:
    """The message ``key`` of the session; hidden ones only for moderators (others: ``message_not_found``)."""
    rows = ChatMessage.objects.filter(session_id=session_id, key=key).select_related("session__workspace")
    if not include_hidden:
        rows = rows.filter(hidden=False)
    message = rows.first()
    if message is None:
        raise MessageNotFound()
    return message


def is_author(message: ChatMessage, user_id: int) -> bool:
    return message.sender_type == SenderType.USER and message.user_id is not None and message.user_id == user_id


def check_window(message: ChatMessage, now: datetime) -> None:
    window = message.session.workspace.edit_window_s
    if window <= 0 or now - message.created_at > timedelta(seconds=window):
        raise EditWindowClosed(editWindowSeconds=window)


def check_may_edit(message: ChatMessage, user_id: int, now: datetime) -> None:
    if not is_author(message, user_id):
        raise NotAuthor()
    if message.deleted_at is not None:
        raise MessageDeleted()
    check_window(message, now)


def check_may_delete(message: ChatMessage, user_id: int, moderates: bool, now: datetime) -> None:
    if moderates:
        return
    if not is_author(message, user_id):
        raise NotAuthor("Only the author or a moderator can delete this message.")
    check_window(message, now)


def _same(message: ChatMessage, new: NewContent) -> bool:
    return (message.content, message.content_type, message.metadata) == (new.content, new.content_type, new.metadata)


def _locked(pk: int) -> ChatMessage:
    return ChatMessage.objects.select_for_update().select_related("session__workspace").get(pk=pk)


def _keep_and_bump(locked: ChatMessage, actor: AbstractBaseUser, reason: str, **fields: object) -> None:
    """Keep the current version as a row, then write ``fields`` and the next version if it is still current."""
    try:
        with transaction.atomic():
            versions.keep_current(locked, reason, actor.pk)
    except IntegrityError:
        raise VersionConflict(currentVersion=locked.version + 1) from None
    written = ChatMessage.objects.filter(pk=locked.pk, version=locked.version).update(
        version=locked.version + 1, **fields
    )
    if written != 1:
        raise VersionConflict(currentVersion=locked.version + 1)
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.version += 1


def apply_edit(pk: int, editor: AbstractBaseUser, expected_version: int, new: NewContent) -> Change:
    """Replace the content of message ``pk`` if it is still at ``expected_version``.

    A repeat of the edit that made the current version (same editor, same
    content, from the version before) changes nothing and is not an error;
    any other stale version is ``version_conflict`` with ``currentVersion``.
    """
    now = timezone.now()
    with transaction.atomic():
        locked = _locked(pk)
        check_may_edit(locked, editor.pk, now)
        if locked.session.status != SessionStatus.OPEN:
            raise SessionClosed()
        check_user_can_send(editor.pk, locked.session.workspace_id)
        if locked.version != expected_version:
            if locked.version == expected_version + 1 and _same(locked, new) and _edited_by(locked, editor):
                return Change(locked, changed=False)
            raise VersionConflict(currentVersion=locked.version)
        if _same(locked, new):
            return Change(locked, changed=False)
        if locked.version >= MAX_VERSIONS:
            raise TooManyEdits(maxVersions=MAX_VERSIONS)
        _keep_and_bump(
            locked,
            editor,
            VersionReason.EDIT,
            content=new.content,
            content_type=new.content_type,
            metadata=new.metadata,
            html=new.html,
            edited_at=now,
        )
    return Change(locked, changed=True)


def _edited_by(message: ChatMessage, editor: AbstractBaseUser) -> bool:
    """Whether the change that made the message's current version was ``editor``'s edit."""
    return MessageVersion.objects.filter(
        message=message, version=message.version - 1, reason=VersionReason.EDIT, changed_by=editor
    ).exists()


def apply_delete(pk: int, actor: AbstractBaseUser, moderates: bool, expected_version: int | None) -> Change:
    """Delete message ``pk`` (its content stays, for moderators); deleting it again changes nothing."""
    now = timezone.now()
    with transaction.atomic():
        locked = _locked(pk)
        if locked.deleted_at is not None:
            return Change(locked, changed=False)
        check_may_delete(locked, actor.pk, moderates, now)
        if expected_version is not None and locked.version != expected_version:
            raise VersionConflict(currentVersion=locked.version)
        _keep_and_bump(locked, actor, VersionReason.DELETE, deleted_at=now)
        if not is_author(locked, actor.pk):
            session = locked.session
            audit(
                actor,
                locked,
                f"Deleted message {locked.key} (#{locked.seq}) in {session.workspace.slug}/{session.key}.",
            )
    return Change(locked, changed=True)


def versions_of(message: ChatMessage, user_id: int, moderates: bool) -> list[MessageVersion]:
    """The versions a change replaced, oldest first: for the author and moderators only (``not_author``).

    An agent's reply has no author: its earlier versions (regenerations) are for every member who can
    read the session, unless it was deleted.
    """
    regenerated = message.sender_type == SenderType.AGENT and message.deleted_at is None
    if not (moderates or regenerated or is_author(message, user_id)):
        raise NotAuthor("Only the author and moderators can see a message's versions.")
    return list(MessageVersion.objects.filter(message=message).select_related("changed_by").order_by("version"))
