"""Adding and removing a reaction: the one path every surface takes.

Layer: chat actions (synchronous; socket handlers call them through
``database_sync_to_async``).  Callers: ``chat:add-reaction`` and
``chat:remove-reaction`` (the socket events, rate-limited as ``react``).

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

from typing import Callable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from chat import event_names, notify
from chat.actions.messages import SessionRef
from chat.errors import InvalidEmoji, SessionClosed
from chat.models import ChatMessage, SessionStatus
from chat.services import reactions
from chat.services.announce import after_commit
from chat.services.emoji import is_emoji
from chat.services.moderation import check_user_can_send
from chat.services.sessions import MessageNotFound
from chat.shapes import reactions_updated_shape


def check_reaction(
    user: AbstractBaseUser, where: SessionRef, message_key: str, emoji: object, *, adding: bool
) -> ChatMessage:
    """The message to react to, or the error that refuses the reaction."""
    if not is_emoji(emoji):
        raise InvalidEmoji(messageId=message_key)
    messages = ChatMessage.objects.filter(
        session_id=where.session_id, key=message_key, hidden=False, deleted_at__isnull=True
    )
    message = messages.select_related("session").first()
    if message is None:
        raise MessageNotFound(messageId=message_key)
    if message.session.status != SessionStatus.OPEN:
        raise SessionClosed(sessionId=where.session_key)
    if adding:
        check_user_can_send(user.pk, where.workspace_id)
    return message


Change = Callable[[ChatMessage, AbstractBaseUser, str], reactions.Aggregate]


def add_reaction(
    user: AbstractBaseUser, where: SessionRef, message_key: str, emoji: object
) -> ChatMessage:
    """Add the member's reaction; the message with its aggregate attached (``reaction_aggregate``)."""
    message = check_reaction(user, where, message_key, emoji, adding=True)
    return _change(reactions.add, user, where, message, str(emoji), added=True)


def remove_reaction(
    user: AbstractBaseUser, where: SessionRef, message_key: str, emoji: object
) -> ChatMessage:
    message = check_reaction(user, where, message_key, emoji, adding=False)
    return _change(reactions.remove, user, where, message, str(emoji), added=False)


def _change(
    change: Change, user: AbstractBaseUser, where: SessionRef, message: ChatMessage, emoji: str, *, added: bool
) -> ChatMessage:
    with transaction.atomic():
        message.reaction_aggregate = aggregate = change(message, user, emoji)
        if aggregate.changed:
            shape = reactions_updated_shape(
                message, where.session_key, where.workspace_slug, actor=user.get_username(), emoji=emoji, added=added
            )
            after_commit(
                notify.to_session, where.workspace_slug, where.session_key, event_names.REACTIONS_UPDATED, shape
            )
    return message
