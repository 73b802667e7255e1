"""Storing reactions and their per-message aggregate.

Layer: chat services (rows only; :mod:`chat.actions.reactions` checks,
calls these and announces).

Every change of one message's reactions runs in a transaction holding that
message's :class:`~chat.models.MessageReactions` row locked (a batch of
changes, :func:`apply`, holds its messages' rows), so changes of one message
are serialised on every database: the caps are checked against
what is really stored, and each effective change gets the next ``version``
with the aggregate it produced.  The aggregate is updated from the stored
one (an emoji keeps its place while it has reactions; a new one goes last),
and read again from the rows only when a user leaves an emoji whose list of
users is capped.  A change that changes nothing (adding a
reaction that exists, removing one that does not) writes nothing and keeps
the version: clients already have that aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q

from chat.errors import ChatError, ReactionEmojiLimit, ReactionUserLimit
from chat.models import ChatMessage, MessageReactions, Reaction
from chat.services.batches import run_one


@dataclass(frozen=True)
class Aggregate:
    """A message's reactions as every client is sent them, and their version (0: never reacted to)."""

    version: int
    reactions: list[dict[str, Any]]
    #: False when the change asked for was already the state (nothing written, nothing to announce).
    changed: bool = True


def summarise(rows: Iterable[tuple[str, str]], users_shown: int) -> list[dict[str, Any]]:
    """``(emoji, username)`` pairs in the order they were added -> ``[{emoji, count, users}]``, first use first."""
    summary: dict[str, dict[str, Any]] = {}
    for emoji, username in rows:
        entry = summary.setdefault(emoji, {"emoji": emoji, "count": 0, "users": []})
        entry["count"] += 1
        if len(entry["users"]) < users_shown:
            entry["users"].append(username)
    return list(summary.values())


def _locked(message_ids: Iterable[int]) -> dict[int, MessageReactions]:
    """The messages' aggregate rows, locked until the transaction ends (created on a first reaction).

    Locked in ``message_id`` order, so two workers' batches never wait on each other in a circle.
    """
    ids = sorted(set(message_ids))
    locked = MessageReactions.objects.select_for_update().order_by("message_id")
    totals = {row.message_id: row for row in locked.filter(message_id__in=ids)}
    missing = [message_id for message_id in ids if message_id not in totals]
    if missing:  # a concurrent first reaction may create a row first: either row serves
        MessageReactions.objects.bulk_create(
            [MessageReactions(message_id=message_id) for message_id in missing], ignore_conflicts=True
        )
        totals.update({row.message_id: row for row in locked.filter(message_id__in=missing)})
    return totals


class _Rows:
    """The batch's reaction rows to create and delete, written together (:meth:`flush`): two queries at most.

    ``known``: the stored rows' ids by ``(message_id, user_id, emoji)``, so deletes go by primary key.
    """

    def __init__(self, known: dict[tuple[int, int, str], int]) -> None:
        self._known = known
        self._pending: dict[tuple[int, int, str], bool] = {}  # True: create, False: delete

    def record(self, message_id: int, user_id: int, emoji: str, *, create: bool) -> None:
        key = (message_id, user_id, emoji)
        if key in self._pending:  # the same row again in this batch: write the first change, in order
            self.flush()
        self._pending[key] = create

    def flush(self) -> None:
        deletes = [key for key, create in self._pending.items() if not create]
        creates = [Reaction(message_id=m, user_id=u, emoji=e) for (m, u, e), create in self._pending.items() if create]
        self._pending.clear()
        if deletes:
            known = {key for key in deletes if key in self._known}
            query = Q(pk__in=[self._known.pop(key) for key in known])
            for message_id, user_id, emoji in (key for key in deletes if key not in known):
                query |= Q(message_id=message_id, user_id=user_id, emoji=emoji)
            Reaction.objects.filter(query).delete()
        if creates:
            Reaction.objects.bulk_create(creates)  # unique, and we hold their messages' locks
            self._known.update({(row.message_id, row.user_id, row.emoji): row.pk for row in creates if row.pk})


def _summary_after(
    totals: MessageReactions, emoji: str, username: str, added: bool, rows: _Rows
) -> list[dict[str, Any]]:
    """The aggregate after one change: from the stored one, or read again when it cannot tell (a capped list)."""
    shown = settings.CHAT.reaction_users_shown
    summary = [{**entry, "users": list(entry["users"])} for entry in totals.summary]
    entry = next((e for e in summary if e["emoji"] == emoji), None)
    if added and entry is None:
        summary.append({"emoji": emoji, "count": 1, "users": [username]})
    elif added:
        entry["count"] += 1
        if len(entry["users"]) < shown:
            entry["users"].append(username)
    elif entry is not None and entry["count"] == len(entry["users"]) and username in entry["users"]:
        entry["count"] -= 1
        entry["users"].remove(username)
        if not entry["count"]:
            summary.remove(entry)
    else:  # a removal from an emoji whose list is capped: who moves into the list is in the rows only
        rows.flush()
        stored = Reaction.objects.filter(message_id=totals.message_id).order_by("pk")
        summary = summarise(stored.values_list("emoji", "user__username"), shown)
    return summary


@dataclass(frozen=True)
class Change:
    """One member adding (``added``) or removing one emoji on one message."""

    message: ChatMessage
    user: AbstractBaseUser
    emoji: str
    added: bool


def apply(changes: list[Change]) -> list[Aggregate | ChatError]:
    """Each change's aggregate after it, in order (one transaction), or the cap's error that refused it."""
    with transaction.atomic(savepoint=False):  # inside the action's transaction: no savepoint to pay for
        totals = _locked(change.message.pk for change in changes)
        mine: dict[tuple[int, int], list[str]] = {}
        known: dict[tuple[int, int, str], int] = {}
        stored = Reaction.objects.filter(
            message_id__in=totals, user_id__in={change.user.pk for change in changes}
        ).order_by("pk")
        for pk, message_id, user_id, emoji in stored.values_list("pk", "message_id", "user_id", "emoji"):
            mine.setdefault((message_id, user_id), []).append(emoji)
            known[(message_id, user_id, emoji)] = pk
        outcomes: list[Aggregate | ChatError] = []
        changed: set[int] = set()
        rows = _Rows(known)
        for change in changes:
            message_id = change.message.pk
            try:
                outcome = _apply(change, totals[message_id], mine.setdefault((message_id, change.user.pk), []), rows)
            except ChatError as error:
                outcomes.append(error)
                continue
            outcomes.append(outcome)
            if outcome.changed:
                changed.add(message_id)
        rows.flush()
        if changed:  # the rows exist and are locked: an upsert updates them, and costs less than bulk_update
            MessageReactions.objects.bulk_create(
                [totals[message_id] for message_id in changed],
                update_conflicts=True,
                unique_fields=["message"],
                update_fields=["summary", "version"],
            )
    return outcomes


def _apply(change: Change, totals: MessageReactions, mine: list[str], rows: _Rows) -> Aggregate:
    """One change against the locked row and the member's emoji on the message (both kept up to date)."""
    message, user, emoji = change.message, change.user, change.emoji
    if change.added:
        if emoji in mine:
            return Aggregate(totals.version, totals.summary, changed=False)
        if len(mine) >= settings.CHAT.reaction_per_user_per_message:
            raise ReactionUserLimit(limit=settings.CHAT.reaction_per_user_per_message)
        emojis = {entry["emoji"] for entry in totals.summary}
        if emoji not in emojis and len(emojis) >= settings.CHAT.reaction_emoji_per_message:
            raise ReactionEmojiLimit(limit=settings.CHAT.reaction_emoji_per_message)
        rows.record(message.pk, user.pk, emoji, create=True)
        mine.append(emoji)
    else:
        if emoji not in mine:
            return Aggregate(totals.version, totals.summary, changed=False)
        rows.record(message.pk, user.pk, emoji, create=False)
        mine.remove(emoji)
    totals.summary = _summary_after(totals, emoji, user.get_username(), change.added, rows)
    totals.version += 1
    return Aggregate(totals.version, totals.summary)


def add(message: ChatMessage, user: AbstractBaseUser, emoji: str) -> Aggregate:
    """Add ``user``'s ``emoji`` to ``message`` (once); raises the caps' errors."""
    return run_one(apply, Change(message, user, emoji, added=True))


def remove(message: ChatMessage, user: AbstractBaseUser, emoji: str) -> Aggregate:
    """Remove ``user``'s ``emoji`` from ``message``; removing one that is not there changes nothing."""
    return run_one(apply, Change(message, user, emoji, added=False))


def attach(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Give each message its stored aggregate (one query), for :func:`chat.shapes.message_shape`."""
    totals = {
        row.message_id: row
        for row in MessageReactions.objects.filter(message_id__in=[message.pk for message in messages])
    }
    for message in messages:
        row = totals.get(message.pk)
        message.reaction_aggregate = Aggregate(row.version, row.summary) if row else Aggregate(0, [])
    return messages
