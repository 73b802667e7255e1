"""Storing reactions and their per-message aggregate.

Layer: chat services (rows only; :mod:`chat.actions.reactions` checks,
calls these and announces).

Every change of one message's reactions runs in a transaction holding that
message's :class:`~chat.models.MessageReactions` row locked, so changes of
one message are serialised on every database: the caps are checked against
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

from chat.errors import ReactionEmojiLimit, ReactionUserLimit
from chat.models import ChatMessage, MessageReactions, Reaction


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


def _locked(message: ChatMessage) -> MessageReactions:
    """The message's aggregate row, locked until the transaction ends (created on the first reaction)."""
    locked = MessageReactions.objects.select_for_update()
    totals = locked.filter(message=message).first()
    if totals is None:
        MessageReactions.objects.get_or_create(message=message)  # a concurrent first reaction may win: either row
        totals = locked.get(message=message)
    return totals


def _summary_after(totals: MessageReactions, emoji: str, username: str, added: bool) -> list[dict[str, Any]]:
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
        rows = Reaction.objects.filter(message_id=totals.message_id).order_by("pk")
        summary = summarise(rows.values_list("emoji", "user__username"), shown)
    return summary


def _save(totals: MessageReactions, emoji: str, user: AbstractBaseUser, *, added: bool) -> Aggregate:
    totals.summary = _summary_after(totals, emoji, user.get_username(), added)
    totals.version += 1
    totals.save(update_fields=["summary", "version"])
    return Aggregate(totals.version, totals.summary)


def add(message: ChatMessage, user: AbstractBaseUser, emoji: str) -> Aggregate:
    """Add ``user``'s ``emoji`` to ``message`` (once); raises the caps' errors."""
    with transaction.atomic():
        totals = _locked(message)
        mine = list(Reaction.objects.filter(message=message, user=user).values_list("emoji", flat=True))
        if emoji in mine:
            return Aggregate(totals.version, totals.summary, changed=False)
        if len(mine) >= settings.CHAT.reaction_per_user_per_message:
            raise ReactionUserLimit(limit=settings.CHAT.reaction_per_user_per_message)
        emojis = {entry["emoji"] for entry in totals.summary}
        if emoji not in emojis and len(emojis) >= settings.CHAT.reaction_emoji_per_message:
            raise ReactionEmojiLimit(limit=settings.CHAT.reaction_emoji_per_message)
        Reaction.objects.create(message=message, user=user, emoji=emoji)  # unique, and we hold the message's lock
        return _save(totals, emoji, user, added=True)


def remove(message: ChatMessage, user: AbstractBaseUser, emoji: str) -> Aggregate:
    """Remove ``user``'s ``emoji`` from ``message``; removing one that is not there changes nothing."""
    with transaction.atomic():
        totals = _locked(message)
        deleted, _ = Reaction.objects.filter(message=message, user=user, emoji=emoji).delete()
        if not deleted:
            return Aggregate(totals.version, totals.summary, changed=False)
        return _save(totals, emoji, user, added=False)


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
