"""Read pointers: how far each member has read each session, and what is unread.

Layer: chat services (rows only; :mod:`chat.actions.read_state` moves a
pointer and announces it).

A member's unread messages in a session are the visible ones (not hidden,
not deleted) after their pointer that someone else sent: your own messages
are never unread.  A member who never marked a session read has read
nothing (pointer 0).
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from chat.models import ChatMessage, ChatSession, ReadState


def _visible(messages: QuerySet[ChatMessage]) -> QuerySet[ChatMessage]:
    return messages.filter(hidden=False, deleted_at__isnull=True)


def _unread(messages: QuerySet[ChatMessage], user_id: int) -> QuerySet[ChatMessage]:
    return _visible(messages).exclude(user_id=user_id)


def pointer(session_id: int, user_id: int) -> int:
    found = ReadState.objects.filter(session_id=session_id, user_id=user_id).values_list("last_read_seq", flat=True)
    return found.first() or 0


def unread_count(session_id: int, user_id: int, last_read_seq: int) -> int:
    return _unread(ChatMessage.objects.filter(session_id=session_id, seq__gt=last_read_seq), user_id).count()


#: A pointer at most this far behind its session's newest message is counted from the rows after it;
#: one further behind (a member back after a long time) by the database, on its own.
NEAR = 200


def unread_counts(pointers: dict[tuple[int, int], int], last_seq: dict[int, int]) -> dict[tuple[int, int], int]:
    """Each ``(session_id, user_id)``'s :func:`unread_count` after its pointer.

    The pointers near their session's newest message (the usual case: a member
    reading along) take one query for all: the few visible rows after the
    lowest of them per session, counted here.
    """
    near = {pair: seq for pair, seq in pointers.items() if last_seq.get(pair[0], 0) - seq <= NEAR}
    counts = {pair: unread_count(*pair, seq) for pair, seq in pointers.items() if pair not in near}
    if near:
        since: dict[int, int] = {}
        for (session_id, _), seq in near.items():
            since[session_id] = min(since.get(session_id, seq), seq)
        after = ChatMessage.objects.filter(
            reduce(or_, (Q(session_id=session_id, seq__gt=seq) for session_id, seq in since.items()))
        )
        rows: dict[int, list[tuple[int, int | None]]] = {}
        for session_id, seq, sender_id in _visible(after).values_list("session_id", "seq", "user_id"):
            rows.setdefault(session_id, []).append((seq, sender_id))
        for (session_id, user_id), seq in near.items():
            others = rows.get(session_id, ())
            counts[(session_id, user_id)] = sum(1 for at, sender_id in others if at > seq and sender_id != user_id)
    return counts


def advance_many(targets: dict[tuple[int, int], int]) -> dict[tuple[int, int], tuple[int, bool]]:
    """Move each ``(session_id, user_id)`` pointer forward to its ``seq`` (never back), in one statement.

    Each pointer now, and whether it moved.  An upsert whose update only applies
    when the stored pointer is lower: concurrent marks of one member (their
    other devices, other workers) leave the highest, on SQLite and PostgreSQL.
    """
    wanted = {pair: seq for pair, seq in targets.items() if seq > 0}
    moved: set[tuple[int, int]] = set()
    if wanted:
        table = connection.ops.quote_name(ReadState._meta.db_table)
        rows = ", ".join(["(%s, %s, %s, %s)"] * len(wanted))
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        params = [value for (session_id, user_id), seq in wanted.items() for value in (session_id, user_id, seq, now)]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (session_id, user_id, last_read_seq, updated_at) VALUES {rows} "
                "ON CONFLICT (session_id, user_id) DO UPDATE "
                "SET last_read_seq = excluded.last_read_seq, updated_at = excluded.updated_at "
                f"WHERE {table}.last_read_seq < excluded.last_read_seq "
                "RETURNING session_id, user_id",
                params,
            )
            moved = {(session_id, user_id) for session_id, user_id in cursor.fetchall()}
    now_at = {pair: (wanted[pair], True) for pair in moved}
    unmoved = [pair for pair in targets if pair not in moved]
    if unmoved:
        stored = ReadState.objects.filter(
            reduce(or_, (Q(session_id=session_id, user_id=user_id) for session_id, user_id in unmoved))
        ).values_list("session_id", "user_id", "last_read_seq")
        current = {(session_id, user_id): seq for session_id, user_id, seq in stored}
        now_at.update({pair: (current.get(pair, 0), False) for pair in unmoved})
    return now_at


def with_unread(sessions: QuerySet[ChatSession], user_id: int) -> QuerySet[ChatSession]:
    """Annotate each session with the member's ``last_read_seq`` and ``unread_count`` (two subqueries)."""
    last_read = ReadState.objects.filter(session=OuterRef("pk"), user_id=user_id).values("last_read_seq")[:1]
    sessions = sessions.annotate(last_read_seq=Coalesce(Subquery(last_read), Value(0)))
    unread = (
        _unread(ChatMessage.objects.filter(session=OuterRef("pk"), seq__gt=OuterRef("last_read_seq")), user_id)
        .order_by()
        .values("session")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return sessions.annotate(unread_count=Coalesce(Subquery(unread, output_field=IntegerField()), Value(0)))
