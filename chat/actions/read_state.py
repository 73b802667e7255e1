"""Marking a session read: a member's read pointer moves forward, and the session hears of it.

Layer: chat actions (synchronous).  Callers: ``chat:mark-read`` (rate-limited
as ``read``), whose marks arriving together go in one batch
(:mod:`chat.services.batches`): one transaction, one upsert of all their
pointers, one hop to announce them.

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
from chat.errors import ChatError, InvalidPayload
from chat.models import ChatSession
from chat.services import read_state
from chat.services.announce import after_commit
from chat.services.batches import run_one
from chat.shapes import read_updated_shape


@dataclass(frozen=True)
class ReadPointer:
    seq: int
    unread_count: int
    moved: bool


@dataclass(frozen=True)
class ReadMark:
    """One ``chat:mark-read``: who, where, up to which ``seq``; ``exclude``: the marking socket."""

    user: AbstractBaseUser
    where: SessionRef
    seq: int
    exclude: tuple[str, ...] = ()


def mark_read(user: AbstractBaseUser, where: SessionRef, seq: int, *, exclude: Iterable[str] = ()) -> ReadPointer:
    """Move the member's pointer to ``seq``; ``exclude``: the marking socket (it hears it in the session)."""
    return run_one(mark_read_many, ReadMark(user, where, seq, tuple(exclude)))


def mark_read_many(marks: list[ReadMark]) -> list[ReadPointer | ChatError]:
    """Each mark's pointer after all of them (one transaction), or its error; announced after commit.

    Marks of one member in one session (two devices at once) move the pointer
    to the highest of them and are announced once.
    """
    outcomes: list[ReadPointer | ChatError | None] = [None] * len(marks)
    targets: dict[tuple[int, int], int] = {}
    with transaction.atomic():
        sessions = ChatSession.objects.filter(pk__in={mark.where.session_id for mark in marks})
        last_seq = dict(sessions.values_list("pk", "last_seq"))
        for index, mark in enumerate(marks):
            if mark.seq < 0:
                outcomes[index] = InvalidPayload("seq must not be negative.", sessionId=mark.where.session_key)
                continue
            pair = (mark.where.session_id, mark.user.pk)
            targets[pair] = max(targets.get(pair, 0), min(mark.seq, last_seq.get(pair[0], 0)))
        pointers = read_state.advance_many(targets)
        behind = {pair: seq for pair, (seq, _) in pointers.items() if seq < last_seq.get(pair[0], 0)}
        unread = {pair: 0 for pair in pointers} | read_state.unread_counts(behind, last_seq)
        announcements: dict[tuple[int, int], tuple[ReadMark, set[str]]] = {}
        for index, mark in enumerate(marks):
            if outcomes[index] is not None:
                continue
            pair = (mark.where.session_id, mark.user.pk)
            seq, moved = pointers[pair]
            outcomes[index] = ReadPointer(seq, unread[pair], moved)
            if moved:
                announcements.setdefault(pair, (mark, set()))[1].update(mark.exclude)
        if announcements:
            after_commit(
                _announce,
                [
                    (mark.where, mark.user.pk, _shape(mark, pointers[pair][0], unread[pair]), tuple(exclude))
                    for pair, (mark, exclude) in announcements.items()
                ],
            )
    return [outcome for outcome in outcomes if outcome is not None]


def _shape(mark: ReadMark, seq: int, unread: int) -> dict:
    where = mark.where
    return read_updated_shape(where.session_key, where.workspace_slug, mark.user.get_username(), seq, unread)


async def _announce(moves: list[tuple[SessionRef, int, dict, tuple[str, ...]]]) -> None:
    for where, user_id, shape, exclude in moves:
        await notify.to_session(where.workspace_slug, where.session_key, event_names.READ_UPDATED, shape)
        await notify.to_user(where.workspace_slug, user_id, event_names.READ_UPDATED, shape, exclude=exclude)
