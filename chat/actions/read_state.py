"""Marking a session read: a member's read pointer moves forward, and the session hears of it.

Layer: chat actions (synchronous).  Callers: ``chat:mark-read`` (rate-limited
as ``read``).

The pointer never moves back: marking read up to a ``seq`` at or below it
changes nothing (and announces nothing).  A ``seq`` beyond the session's
newest message is clamped to it (a client may have counted a message it
sent but whose ``seq`` it has not learned yet); a negative one is
``invalid_payload``.

A move is announced after commit as ``chat:read-updated`` (who, up to which
``seq``, and their unread count now) to the session (read receipts) and to
the member's own sockets in the workspace, so their other devices' unread
badges follow.  The socket that marked read gets it once (it is left out of
the second audience); another socket of the member in the session may get it
twice: applying it is idempotent (pointers only move forward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from chat import event_names, notify
from chat.actions.messages import SessionRef
from chat.errors import InvalidPayload
from chat.models import ChatSession
from chat.services import read_state
from chat.services.announce import after_commit
from chat.shapes import read_updated_shape


@dataclass(frozen=True)
class ReadPointer:
    seq: int
    unread_count: int
    moved: bool


def mark_read(user: AbstractBaseUser, where: SessionRef, seq: int, *, exclude: Iterable[str] = ()) -> ReadPointer:
    """Move the member's pointer to ``seq``; ``exclude``: the marking socket (it hears it in the session)."""
    if seq < 0:
        raise InvalidPayload("seq must not be negative.", sessionId=where.session_key)
    with transaction.atomic():
        session = ChatSession.objects.get(pk=where.session_id)
        now, moved = read_state.advance(session, user.pk, min(seq, session.last_seq))
        unread = read_state.unread_count(session.pk, user.pk, now)
        if moved:
            shape = read_updated_shape(where.session_key, where.workspace_slug, user.get_username(), now, unread)
            after_commit(_announce, where, user.pk, shape, tuple(exclude))
    return ReadPointer(now, unread, moved)


async def _announce(where: SessionRef, user_id: int, shape: dict, exclude: tuple[str, ...]) -> None:
    await notify.to_session(where.workspace_slug, where.session_key, event_names.READ_UPDATED, shape)
    await notify.to_user(where.workspace_slug, user_id, event_names.READ_UPDATED, shape, exclude=exclude)
