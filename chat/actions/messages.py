"""Posting a message: the one path every surface takes.

Layer: chat actions.  Callers: the socket's ``chat:send-message``, the REST
API's ``POST .../messages/``, the Parlant facade's customer events, and the
system notes moderators post; agents' replies are stored by their runs
(:mod:`chat.agents.runs`) and announced the same way, with their ``seq``.

:func:`check_message` (what the member sent, in this order):

1. the member's ``send`` rate limit, with their penalty level (one Redis
   round trip; a denial is a strike and a security event);
2. length, form and metadata (``chat.services.messages.check_content``),
   so screening and rendering only ever see bounded text;
3. screening under the workspace's content policy: floods and repeats are
   refused; what looks like an attack is flagged (``standard``) or refused
   (``strict``), a strike either way (``chat.services.screening``);
4. rendering: markdown becomes the one sanitised ``html`` (``security.render``).

:func:`post_message` then stores it through the batching writer
(``chat.services.writer``: idempotent by the message's id, ``seq`` gap-free,
committed before anything is announced), announces it to the session with
its ``seq`` (so every worker's members get the session's messages in order,
``channels_socketio.protocol.sequence``), and sends :data:`message_posted`
for a member's message (the agent runner answers it; one run per message,
so a resend also repairs a lost trigger).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from channels.db import database_sync_to_async
from django.contrib.auth.models import AbstractBaseUser
from django.dispatch import Signal

from chat import event_names, notify
from chat.errors import InvalidPayload
from chat.ids import AGENT_REPLY_PREFIX, is_reserved_message_id
from chat.models import ContentType, SenderType
from chat.services import attachments, screening
from chat.services.messages import NewMessage, Sender, StoredMessage, check_content, render
from chat.services.writer import writer
from chat.shapes import message_shape
from security.errors import RateLimited
from security.models import SecurityEventType

#: Sent (``await message_posted.asend(...)``) after a member's message is stored
#: and announced: ``session_id``, ``message_id``.  The agent runner receives it.
message_posted = Signal()


@dataclass(frozen=True)
class SessionRef:
    """The session a message goes to, as the surface found it within the member's workspace."""

    session_id: int
    session_key: str
    workspace_id: int
    workspace_slug: str


@dataclass(frozen=True)
class Author:
    """Who posts, and whose limits and screening apply.

    ``sender`` is how the message is stored (the member, or the system or an
    agent on whose behalf a moderator posts); ``member`` is the person who
    typed it, whose limits and screening apply; ``scope`` is their client's,
    for security events.
    """

    sender: Sender
    member: AbstractBaseUser
    scope: Mapping[str, Any]
    surface: str

    @classmethod
    def member_of(cls, user: AbstractBaseUser, scope: Mapping[str, Any], surface: str) -> Author:
        return cls(Sender.for_user(user), user, scope, surface)


@dataclass(frozen=True)
class Draft:
    key: str
    content: str
    content_type: str = ContentType.TEXT
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Ids of the member's uploads in the session that the message carries (``chat.services.attachments``).
    attachments: tuple[str, ...] = ()


async def limit_sends(author: Author) -> None:
    """Count one ``send`` against the member's rate limit; raise ``RateLimited`` when over."""
    try:
        await screening.limiter().check("send", author.member.pk)
    except RateLimited:
        screening.record_client(
            dict(author.scope), SecurityEventType.RATE_LIMIT_EXCEEDED, user=author.member, operation="send"
        )
        raise


async def check_message(author: Author, where: SessionRef, draft: Draft) -> str:
    """Everything but the rate limit (see :func:`post_message`); returns the message's ``html`` ("" for text)."""
    check_content(draft.content, draft.content_type, draft.metadata)
    await screening.screen_content(
        dict(author.scope),
        author.member,
        draft.content,
        workspace_id=where.workspace_id,
        session_key=where.session_key,
        surface=author.surface,
    )
    return await render(draft.content, draft.content_type)


async def post_message(
    author: Author, where: SessionRef, draft: Draft, *, exclude: Iterable[str] = ()
) -> StoredMessage:
    """Check, store, announce; the stored message (``created`` False for an id sent before).

    ``exclude``: socket ids that do not get the broadcast (the sender's own,
    which is answered with ``chat:message-sent`` instead).  A resend of a
    message this worker just stored is answered from memory, unscreened: it
    is not new content.  A resend found in the database is announced again
    (the worker that committed it may have died before announcing it).  Ids
    with the agents' prefix are refused (``invalid_payload``): they name
    agents' replies (:mod:`chat.ids`).
    """
    if is_reserved_message_id(draft.key):
        raise InvalidPayload(f"Message ids starting with {AGENT_REPLY_PREFIX!r} are reserved for agent replies.")
    claimed = attachments.check_count(draft.attachments)
    await limit_sends(author)
    stored = writer.recently_stored(where.session_id, draft.key)
    if stored is None:
        html = await check_message(author, where, draft)
        new = NewMessage(
            where.session_id, author.sender, draft.key, draft.content, draft.content_type, draft.metadata, html
        )
        announce = functools.partial(announce_message, where, exclude=tuple(exclude))
        if claimed:
            # Off the batching writer: the message and its claim on the uploads commit together.
            stored = await database_sync_to_async(attachments.store_with_attachments)(new, author.member.pk, claimed)
            if stored.created:
                await announce(stored)
        else:
            stored = await writer.store(new, announce)
        if not stored.created:
            # Sent before, but not by this worker lately: its announcement may have died with the worker
            # that committed it.  At least once: announce it again; clients deduplicate by id and seq.
            await announce(stored)
    if stored.agent_may_answer and stored.message.sender_type == SenderType.USER:
        await message_posted.asend(sender=None, session_id=where.session_id, message_id=stored.message.pk)
    return stored


async def announce_message(where: SessionRef, stored: StoredMessage, *, exclude: Iterable[str] = ()) -> None:
    """A committed message reaches every member of its session, in ``seq`` order on every worker."""
    shape = message_shape(stored.message, workspace_slug=where.workspace_slug, session_key=where.session_key)
    await notify.to_session(
        where.workspace_slug,
        where.session_key,
        event_names.MESSAGE_RECEIVED,
        shape,
        exclude=exclude,
        seq=stored.message.seq,
    )
