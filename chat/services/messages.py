"""Storing messages with gap-free per-session ``seq``, idempotently, and reading history.

Content is stored exactly as sent.  A markdown message is stored with its
HTML (``security.render``, the one renderer), made once here -- or by the
surface beforehand, off its event loop (:func:`render`) -- so that every
surface serves the same ``html`` without rendering on read.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, DatabaseError, transaction
from django.utils import timezone

from chat.errors import (
    ChatError,
    InvalidPayload,
    MessageTooLong,
    MetadataTooLarge,
    SessionClosed,
    SessionNotFound,
    StoreFailed,
)
from chat.models import Agent, ChatMessage, ContentType, SenderType, SessionStatus
from chat.services import message_rows, reactions
from chat.services.moderation import Muted
from security.render import html_for

#: Metadata is the client's free-form JSON: bounded so it cannot be used to
#: store or fan out arbitrary amounts of data.
METADATA_MAX_BYTES = 16 * 1024
METADATA_MAX_DEPTH = 8
HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 200
_CONTENT_TYPES = frozenset(ContentType.values)


@dataclass(frozen=True)
class Sender:
    type: str
    name: str
    user: AbstractBaseUser | None = None
    agent: Agent | None = None

    @classmethod
    def for_user(cls, user: AbstractBaseUser) -> Sender:
        return cls(SenderType.USER, user.get_username(), user=user)

    @classmethod
    def for_agent(cls, agent: Agent) -> Sender:
        return cls(SenderType.AGENT, agent.name, agent=agent)

    @classmethod
    def system(cls, name: str = "system") -> Sender:
        return cls(SenderType.SYSTEM, name)


@dataclass(frozen=True)
class StoredMessage:
    message: ChatMessage
    #: False when the id had been sent before: the original is returned and
    #: nothing new was stored (it may be announced again: clients deduplicate by id and seq).
    created: bool
    #: False when the session had no agent as the message was stored, so no
    #: agent run needs looking up; unknown (True) for a duplicate.
    agent_may_answer: bool = True


def check_content(content: str, content_type: str, metadata: dict) -> None:
    if not content.strip():
        raise InvalidPayload("A message needs some content.")
    limit = settings.CHAT.message_max_length
    if len(content) > limit:
        raise MessageTooLong(f"Messages are limited to {limit} characters.", maxLength=limit)
    if content_type not in _CONTENT_TYPES:
        raise InvalidPayload("contentType must be 'text' or 'markdown'.")
    if "\x00" in content or not _is_utf8(content):
        raise InvalidPayload("Content must be UTF-8 text without NUL characters.")
    if metadata:  # most messages carry none
        _check_metadata(metadata)


def _check_metadata(metadata: dict) -> None:
    if _depth(metadata) > METADATA_MAX_DEPTH:
        raise MetadataTooLarge(f"Metadata may nest at most {METADATA_MAX_DEPTH} levels.")
    encoded = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)
    if not _is_utf8(encoded):
        raise InvalidPayload("Metadata must be UTF-8 text (no lone surrogates).")
    if len(encoded.encode()) > METADATA_MAX_BYTES:
        raise MetadataTooLarge(f"Metadata is limited to {METADATA_MAX_BYTES} bytes of JSON.")
    if "\\u0000" in encoded and _has_nul(metadata):
        # PostgreSQL's jsonb cannot hold NUL: refuse it as invalid, not as a retryable failure.
        raise InvalidPayload("Metadata may not contain NUL characters.")


def _is_utf8(text: str) -> bool:
    """False for text with lone surrogates, which JSON can carry but UTF-8 and PostgreSQL cannot."""
    if text.isascii():  # most text, told without encoding it
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_nul(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _depth(value: object) -> int:
    stack, deepest = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


@dataclass(frozen=True)
class NewMessage:
    session_id: int
    sender: Sender
    key: str
    content: str
    content_type: str = ContentType.TEXT
    metadata: dict = field(default_factory=dict)
    #: The rendered HTML when the caller made it already (:func:`render`); ``None``: made when stored.
    html: str | None = None


async def render(content: str, content_type: str) -> str:
    """:func:`security.render.html_for` in a worker thread for markdown (rendering 10,000 characters takes
    tens of milliseconds, which an event loop serving other sockets should not spend); text has no HTML."""
    if content_type != ContentType.MARKDOWN:
        return ""
    return await asyncio.to_thread(html_for, content, content_type)


def store_message(
    session_id: int,
    sender: Sender,
    key: str,
    content: str,
    content_type: str = ContentType.TEXT,
    metadata: dict | None = None,
) -> StoredMessage:
    """Store one message; see :func:`store_messages`."""
    [result] = store_messages([NewMessage(session_id, sender, key, content, content_type, metadata or {})])
    if isinstance(result, ChatError):
        raise result
    return result


def store_messages(batch: list[NewMessage]) -> list[StoredMessage | ChatError]:
    """Store messages, each with its session's next ``seq``, in one transaction.

    The sessions' rows are locked (in id order, so two batches cannot
    deadlock), which gives concurrent senders on any number of workers
    1, 2, 3... with no gap and no duplicate; a resent id finds its original
    under the same lock.  Results are in the batch's order: a stored (or
    previously stored) message, or the error for that message alone.  If
    the transaction fails, every message of it gets :class:`StoreFailed`
    and none was stored.  Confirm and broadcast only after this returns,
    i.e. after the commit.
    """
    results: list[StoredMessage | ChatError | None] = [None] * len(batch)
    valid = check_batch(batch, results)
    if valid:
        try:
            try:
                with transaction.atomic():
                    _store_locked(batch, valid, results, look_up_keys=False)
            except message_rows.KeyAlreadyStored:
                with transaction.atomic():
                    _store_locked(batch, valid, results, look_up_keys=True)
        except (DatabaseError, message_rows.KeyAlreadyStored):
            if len(valid) == 1:
                results[valid[0]] = StoreFailed()
            else:
                # One message the database refuses must not fail the others:
                # store them one by one, each in its own transaction.
                for index in valid:
                    results[index] = store_messages([batch[index]])[0]
    return results  # type: ignore[return-value]


def check_batch(batch: list[NewMessage], results: list) -> list[int]:
    """The indexes of the messages worth storing; the others' errors go into ``results``."""
    valid: list[int] = []
    for index, new in enumerate(batch):
        try:
            check_content(new.content, new.content_type, new.metadata)
            valid.append(index)
        except ChatError as error:
            results[index] = error
    return valid


def batch_sessions(batch: list[NewMessage], valid: list[int]) -> list[int]:
    return sorted({batch[i].session_id for i in valid})


def batch_senders(batch: list[NewMessage], valid: list[int]) -> set[int]:
    return {batch[i].sender.user.pk for i in valid if batch[i].sender.user is not None}


def _store_locked(batch: list[NewMessage], valid: list[int], results: list, *, look_up_keys: bool) -> None:
    session_ids = batch_sessions(batch, valid)
    now = timezone.now()
    sessions = [message_rows.SessionRow(*row) for row in message_rows.run(message_rows.lock_sessions(session_ids))]
    senders = batch_senders(batch, valid)
    muted = message_rows.read_muted(message_rows.run(message_rows.muted_members(senders, session_ids, now))) if senders else []
    known: dict[tuple[int, str], ChatMessage] = {}
    if look_up_keys:
        keys = {batch[i].key for i in valid}
        known = {
            (m.session_id, m.key): m for m in ChatMessage.objects.filter(session_id__in=session_ids, key__in=keys)
        }
    rows, last_seqs = number_messages(batch, valid, results, sessions, muted, known, now)
    if rows:
        inserted = message_rows.run(message_rows.insert_messages(rows))
        message_rows.set_ids(rows, inserted)
        message_rows.run(message_rows.advance_sessions(last_seqs, now))


def number_messages(
    batch: list[NewMessage],
    valid: list[int],
    results: list,
    sessions: list[message_rows.SessionRow],
    muted: list[tuple[int, int, datetime]],
    known: dict[tuple[int, str], ChatMessage],
    now: datetime,
) -> tuple[list[ChatMessage], dict[int, int]]:
    """The new rows of a batch, each with the next ``seq`` of its locked session, and each session's last ``seq``.

    Every other message's outcome (a known key, a missing or closed
    session, a muted sender) goes into ``results``.  Pure: the caller reads
    the locked rows and writes what this returns.
    """
    last_seq = {session.id: session.last_seq for session in sessions}
    by_id = {session.id: session for session in sessions}
    muted_until = {(user, workspace): until for user, workspace, until in muted}
    rows: list[ChatMessage] = []
    for index in valid:
        new = batch[index]
        session = by_id.get(new.session_id)
        existing = known.get((new.session_id, new.key))
        if existing is not None:
            results[index] = StoredMessage(existing, created=False)
        elif session is None:
            results[index] = SessionNotFound()
        elif session.status != SessionStatus.OPEN:
            results[index] = SessionClosed()
        elif new.sender.user is not None and (new.sender.user.pk, session.workspace_id) in muted_until:
            until = muted_until[(new.sender.user.pk, session.workspace_id)]
            results[index] = Muted(mutedUntil=int(until.timestamp() * 1000))
        else:
            last_seq[session.id] += 1
            row = new_row(new, now, seq=last_seq[session.id])
            rows.append(row)
            known[(new.session_id, new.key)] = row
            results[index] = StoredMessage(row, created=True, agent_may_answer=session.agent_id is not None)
    return rows, {row.session_id: last_seq[row.session_id] for row in rows}


def new_row(new: NewMessage, now: datetime, *, seq: int | None) -> ChatMessage:
    """The row that stores ``new``, created ``now``."""
    return message_rows.new_row(
        now,
        session_id=new.session_id,
        key=new.key,
        seq=seq,
        sender_type=new.sender.type,
        user_id=None if new.sender.user is None else new.sender.user.pk,
        agent_id=None if new.sender.agent is None else new.sender.agent.pk,
        sender_name=new.sender.name[:150],
        content=new.content,
        content_type=new.content_type,
        html=html_for(new.content, new.content_type) if new.html is None else new.html,
        metadata=new.metadata,
    )


def numbered_outcomes(rows: list[ChatMessage], numbered: list[tuple], results: list, valid: list[int]) -> None:
    """Each message's outcome from :func:`~chat.services.message_rows.store_numbered`'s result rows.

    The same outcomes as :func:`number_messages` gives, decided by the
    database: ``rows[n]`` is ``batch[valid[n]]``'s row, stored if the
    database gave it an id.
    """
    for position, pk, seq, session_found, status, agent_id, muted_until in numbered:
        row, index = rows[position], valid[position]
        if pk is not None:
            row.id, row.seq = pk, seq
            row._state.adding, row._state.db = False, DEFAULT_DB_ALIAS
            results[index] = StoredMessage(row, created=True, agent_may_answer=agent_id is not None)
        elif not session_found:
            results[index] = SessionNotFound()
        elif status != SessionStatus.OPEN:
            results[index] = SessionClosed()
        elif muted_until is not None:
            results[index] = Muted(mutedUntil=int(muted_until.timestamp() * 1000))
        else:  # pragma: no cover - every row not inserted has one of the reasons above
            results[index] = StoreFailed()


#: Most messages read at once to fill a gap in a session's live stream.
GAP_FILL_MAX = 500


def visible_between(session_id: int, first: int, last: int | None) -> list[ChatMessage]:
    """The session's visible messages numbered ``first`` to ``last`` (``None``: the newest), in order.

    What a worker reads when a session's live stream has a gap (its
    publisher died after storing, or the broker lost a message): see
    :mod:`channels_socketio.protocol.sequence`.
    """
    rows = ChatMessage.objects.filter(session_id=session_id, seq__gte=first, hidden=False)
    if last is not None:
        rows = rows.filter(seq__lte=last)
    return reactions.attach(list(rows.select_related("session__workspace").order_by("seq")[:GAP_FILL_MAX]))


@dataclass(frozen=True)
class HistoryPage:
    messages: list[ChatMessage]
    limit: int
    offset: int
    after_seq: int | None
    has_more: bool


def history(
    session_id: int,
    *,
    limit: int | None = None,
    offset: int = 0,
    after_seq: int | None = None,
    include_hidden: bool = False,
) -> HistoryPage:
    """A page of messages in ``seq`` order.

    With ``offset``, pages count back from the newest message (offset 0 is
    the newest page).  With ``after_seq``, the page holds what came after a
    known ``seq``, oldest first, for recovery after a reconnect.  ``has_more``
    is exact: one row beyond the page is read to know it.
    """
    limit = HISTORY_DEFAULT_LIMIT if limit is None else limit
    if limit < 1:
        raise InvalidPayload("limit must be at least 1.")
    if offset < 0:
        raise InvalidPayload("offset must not be negative.")
    if after_seq is not None and after_seq < 0:
        raise InvalidPayload("afterSeq must not be negative.")
    limit = min(limit, HISTORY_MAX_LIMIT)
    messages = ChatMessage.objects.filter(session_id=session_id).select_related("session__workspace")
    if not include_hidden:
        messages = messages.filter(hidden=False)
    if after_seq is not None:
        rows = list(messages.filter(seq__gt=after_seq).order_by("seq")[: limit + 1])
        has_more = len(rows) > limit
        page = rows[:limit]
    else:
        rows = list(messages.order_by("-seq")[offset : offset + limit + 1])
        has_more = len(rows) > limit
        page = rows[:limit][::-1]
    return HistoryPage(reactions.attach(page), limit, offset, after_seq, has_more)
