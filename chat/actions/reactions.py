"""Adding and removing a reaction: the one path every surface takes.

Layer: chat actions (synchronous).  Callers: ``chat:add-reaction`` and
``chat:remove-reaction`` (the socket events, rate-limited as ``react``),
whose requests arriving together go in one batch (:mod:`chat.services.batches`,
:func:`change_reactions`): one transaction, their messages and mutes looked
up at once, one hop to announce them.

:func:`check_reaction` (writes nothing): the emoji is one emoji
(``invalid_emoji``, :mod:`chat.services.emoji`); the message is a visible
one of the session (``message_not_found``, also for another session's or
workspace's message: the session was found within the member's workspace;
hidden and deleted messages take no reactions, from moderators neither, so
no broadcast ever names a message members cannot see);
the session is open (``session_closed``); a muted member cannot add one
(``muted``).  Then the change (:mod:`chat.services.reactions`): idempotent
(adding twice stores once, removing an absent one succeeds), capped per
message (``reaction_emoji_limit``) and per member (``reaction_user_limit``).

An effective change is announced after commit to the session as
``chat:reactions-updated`` with the message's whole aggregate and its
``reactionsVersion``: a client keeps the aggregate with the highest version,
so repeated or reordered events converge.  A change that changes nothing is
not announced; its caller still gets the current aggregate.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from chat import event_names, notify
from chat.actions.messages import SessionRef
from chat.errors import ChatError, InvalidEmoji, SessionClosed
from chat.models import ChatMessage, SessionStatus
from chat.services import reactions
from chat.services.announce import after_commit
from chat.services.batches import run_one
from chat.services.emoji import is_emoji
from chat.services.moderation import check_user_can_send, muted_members
from chat.services.sessions import MessageNotFound
from chat.shapes import reactions_updated_shape


@dataclass(frozen=True)
class ReactionRequest:
    """One ``chat:add-reaction`` (``adding``) or ``chat:remove-reaction``, as the surface read it."""

    user: AbstractBaseUser
    where: SessionRef
    message_key: str
    emoji: object
    adding: bool


def check_reaction(request: ReactionRequest, messages: dict[tuple[int, str], ChatMessage], muted: set) -> ChatMessage:
    """The message to react to, or the error that refuses the reaction (``messages``, ``muted``: looked up)."""
    where, message_key = request.where, request.message_key
    if not is_emoji(request.emoji):
        raise InvalidEmoji(messageId=message_key)
    message = messages.get((where.session_id, message_key))
    if message is None:
        raise MessageNotFound(messageId=message_key)
    if message.session.status != SessionStatus.OPEN:
        raise SessionClosed(sessionId=where.session_key)
    if request.adding and (request.user.pk, where.workspace_id) in muted:
        check_user_can_send(request.user.pk, where.workspace_id)  # raises Muted, with until when
    return message


def change_reactions(requests: list[ReactionRequest]) -> list[ChatMessage | ChatError]:
    """Each request's message with its aggregate after it (``reaction_aggregate``), or its error.

    One transaction for all: the messages and mutes looked up at once, the
    changes stored (:func:`chat.services.reactions.apply`), and every
    effective change announced after commit, in order.
    """
    outcomes: list[ChatMessage | ChatError | None] = [None] * len(requests)
    checked: list[tuple[int, ReactionRequest, ChatMessage]] = []
    with transaction.atomic():
        messages = _visible_messages(requests)
        muted = muted_members({(r.user.pk, r.where.workspace_id) for r in requests if r.adding})
        for index, request in enumerate(requests):
            try:
                checked.append((index, request, check_reaction(request, messages, muted)))
            except ChatError as error:
                outcomes[index] = error
        changes = [reactions.Change(message, r.user, str(r.emoji), r.adding) for _, r, message in checked]
        announcements = []
        for (index, request, message), outcome in zip(checked, reactions.apply(changes)):
            if isinstance(outcome, ChatError):
                outcomes[index] = outcome
                continue
            answered = copy.copy(message)  # each request sees the aggregate its own change produced
            answered.reaction_aggregate = outcome
            outcomes[index] = answered
            if outcome.changed:
                where = request.where
                shape = reactions_updated_shape(
                    answered,
                    where.session_key,
                    where.workspace_slug,
                    actor=request.user.get_username(),
                    emoji=str(request.emoji),
                    added=request.adding,
                )
                announcements.append((where.workspace_slug, where.session_key, shape))
        if announcements:
            after_commit(_announce, announcements)
    return [outcome for outcome in outcomes if outcome is not None]


def add_reaction(user: AbstractBaseUser, where: SessionRef, message_key: str, emoji: object) -> ChatMessage:
    """Add the member's reaction; the message with its aggregate attached (``reaction_aggregate``)."""
    return run_one(change_reactions, ReactionRequest(user, where, message_key, emoji, adding=True))


def remove_reaction(user: AbstractBaseUser, where: SessionRef, message_key: str, emoji: object) -> ChatMessage:
    return run_one(change_reactions, ReactionRequest(user, where, message_key, emoji, adding=False))


def _visible_messages(requests: list[ReactionRequest]) -> dict[tuple[int, str], ChatMessage]:
    """The requests' messages that take reactions (visible, of the session named), by ``(session_id, key)``."""
    wanted = {(r.where.session_id, r.message_key) for r in requests}
    if not wanted:
        return {}
    found = ChatMessage.objects.filter(
        session_id__in={session_id for session_id, _ in wanted},
        key__in={key for _, key in wanted},
        hidden=False,
        deleted_at__isnull=True,
    ).select_related("session")
    return {(m.session_id, m.key): m for m in found if (m.session_id, m.key) in wanted}


async def _announce(announcements: list[tuple[str, str, dict]]) -> None:
    for workspace_slug, session_key, shape in announcements:
        await notify.to_session(workspace_slug, session_key, event_names.REACTIONS_UPDATED, shape)
