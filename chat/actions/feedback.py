"""Rating an agent's reply: thumbs up or down with an optional comment, one rating per member and reply.

Layer: chat actions.  Callers: the socket's ``chat:rate-message`` (the
surface has checked that the member has access to the session: it joined it).

:func:`check_rating` refuses anything but an agent's reply in that session
that members can see (``message_not_found``: a user's message, a system
note, another session's or workspace's message, a deleted or hidden one),
a rating other than ``up``, ``down`` or ``None`` (clear), and a comment over
:data:`~chat.models.FEEDBACK_COMMENT_MAX` characters (``invalid_payload``).
:func:`rate_message` then stores, changes or removes the member's rating and
answers with the reply's aggregate.

Ratings are evaluation data, not conversation: nothing is broadcast to the
session (the rater's ack carries the aggregate; moderators read ratings in
the admin and the REST export, ``/api/v1/workspaces/<ws>/feedback/``).
Each given, changed or cleared rating counts in ``chat_agent_feedback``
(labels: the agent's key and ``up`` / ``down`` / ``cleared``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q

from chat.errors import InvalidPayload
from chat.models import FEEDBACK_COMMENT_MAX, ChatMessage, MessageFeedback, Rating, SenderType
from chat.services.sessions import MessageNotFound
from monitoring import metrics


@dataclass(frozen=True)
class Aggregate:
    up: int
    down: int
    #: The member's own rating (``None``: none) and comment.
    mine: str | None
    comment: str = ""


def check_rating(session_id: int, message_key: str, rating: str | None, comment: str) -> ChatMessage:
    if rating is not None and rating not in Rating.values:
        raise InvalidPayload("rating must be 'up', 'down' or null (to clear it).")
    if len(comment) > FEEDBACK_COMMENT_MAX:
        raise InvalidPayload(
            f"comment is limited to {FEEDBACK_COMMENT_MAX} characters.", maxLength=FEEDBACK_COMMENT_MAX
        )
    if "\x00" in comment:
        raise InvalidPayload("comment must be text without NUL characters.")
    reply = (
        ChatMessage.objects.select_related("agent")
        .filter(
            session_id=session_id, key=message_key, sender_type=SenderType.AGENT, deleted_at__isnull=True, hidden=False
        )
        .first()
    )
    if reply is None:
        raise MessageNotFound(messageId=message_key)
    return reply


def rate_message(
    user: AbstractBaseUser, session_id: int, message_key: str, rating: str | None, comment: str = ""
) -> Aggregate:
    """Store (or change, or with ``rating=None`` remove) ``user``'s rating of the reply; the reply's aggregate."""
    reply = check_rating(session_id, message_key, rating, comment)
    agent_key = (reply.agent.key if reply.agent else "") or str(reply.metadata.get("agentId", ""))
    with transaction.atomic():
        if rating is None:
            changed = MessageFeedback.objects.filter(message=reply, user=user).delete()[0] > 0
        else:
            row, created = MessageFeedback.objects.select_for_update().get_or_create(
                message=reply, user=user, defaults={"rating": rating, "comment": comment, "version": reply.version}
            )
            changed = created or (row.rating, row.comment, row.version) != (rating, comment, reply.version)
            if changed and not created:
                row.rating, row.comment, row.version = rating, comment, reply.version
                row.save(update_fields=["rating", "comment", "version", "updated_at"])
        if changed:
            transaction.on_commit(lambda: metrics.agent_feedback(agent_key, rating or "cleared"), robust=True)
        return aggregate(reply, user)


def aggregate(reply: ChatMessage, user: AbstractBaseUser) -> Aggregate:
    counts = MessageFeedback.objects.filter(message=reply).aggregate(
        up=Count("pk", filter=Q(rating=Rating.UP)), down=Count("pk", filter=Q(rating=Rating.DOWN))
    )
    mine = MessageFeedback.objects.filter(message=reply, user=user).values("rating", "comment").first()
    return Aggregate(counts["up"], counts["down"], mine["rating"] if mine else None, mine["comment"] if mine else "")
