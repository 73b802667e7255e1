"""Read pointers: how far each member has read each session, and what is unread.

Layer: chat services (rows only; :mod:`chat.actions.read_state` moves a
pointer and announces it).

A member's unread messages in a session are the visible ones (not hidden,
not deleted) after their pointer that someone else sent: your own messages
are never unread.  A member who never marked a session read has read
nothing (pointer 0).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from chat.models import ChatMessage, ChatSession, ReadState


def _unread(messages: QuerySet[ChatMessage], user_id: int) -> QuerySet[ChatMessage]:
    return messages.filter(hidden=False, deleted_at__isnull=True).exclude(user_id=user_id)


def pointer(session_id: int, user_id: int) -> int:
    found = ReadState.objects.filter(session_id=session_id, user_id=user_id).values_list("last_read_seq", flat=True)
    return found.first() or 0


def unread_count(session_id: int, user_id: int, last_read_seq: int) -> int:
    return _unread(ChatMessage.objects.filter(session_id=session_id, seq__gt=last_read_seq), user_id).count()


def advance(session: ChatSession, user_id: int, seq: int) -> tuple[int, bool]:
    """Move the member's pointer forward to ``seq`` (never back); the pointer now, and whether it moved."""
    with transaction.atomic():
        moved = ReadState.objects.filter(session=session, user_id=user_id, last_read_seq__lt=seq).update(
            last_read_seq=seq
        )
        if moved:
            return seq, True
        current = pointer(session.pk, user_id)
        if current or seq <= 0 or ReadState.objects.filter(session=session, user_id=user_id).exists():
            return current, False
        try:
            with transaction.atomic():
                ReadState.objects.create(session=session, user_id=user_id, last_read_seq=seq)
        except IntegrityError:  # created meanwhile by another of the member's devices: move it forward
            moved = ReadState.objects.filter(session=session, user_id=user_id, last_read_seq__lt=seq).update(
                last_read_seq=seq
            )
            return (seq, True) if moved else (pointer(session.pk, user_id), False)
        return seq, True


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
