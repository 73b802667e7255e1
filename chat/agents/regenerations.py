"""Asking the agent again for a reply it gave: the run of a ``chat:regenerate``.

Synchronous ORM code, called from the runner through ``database_sync_to_async``.

A regeneration is an :class:`~chat.models.AgentRun` of the same user
message with the next ``attempt`` (1, 2...) and the reply's id as its
``reply_key``: it queues, streams, times out, counts against the run caps
(of whoever asked for it) and is cancelled like any run.  When it ends with
text, the reply gets a new ``version`` with that text and the replaced one
is kept as a :class:`~chat.models.MessageVersion` (reason ``regenerate``);
when it fails, the reply stays as it was.

Exactly once per request: a regeneration is unique on (user message,
``request_key``), so the same ``requestId`` sent again -- to this worker or
another -- finds the run it created.  One at a time per reply: a partial
unique index allows one open run per user message, so a second request
while one runs is refused with ``agent_run_active``.

Who may ask: the author of the user message, the session's creator, and
the workspace's moderators and admins (as for cancelling), unless muted.  A reply that
does not exist in the session -- another workspace's, a user's message, a
failure note, a deleted or hidden one -- is ``message_not_found``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from chat.agents.errors import AgentRunActive
from chat.agents.runs import RunTicket, _runs, _ticket
from chat.errors import AgentNotFound, PermissionDenied, SessionClosed
from chat.models import AGENT_RUN_OPEN_STATES, AgentRun, ChatMessage, SenderType, SessionStatus
from chat.services.moderation import check_user_can_send
from chat.services.sessions import MessageNotFound


@dataclass(frozen=True)
class Regeneration:
    ticket: RunTicket
    #: False: the ``requestId`` was sent before; this is the run it created.
    created: bool
    status: str


def request_regeneration(session_id: int, reply_key: str, request_key: str, user: Any, moderates: bool) -> Regeneration:
    reply = (
        ChatMessage.objects.select_related("session")
        .filter(
            session_id=session_id, key=reply_key, sender_type=SenderType.AGENT, deleted_at__isnull=True, hidden=False
        )
        .first()
    )
    first = _runs().filter(session_id=session_id, reply_key=reply_key, attempt=0).first() if reply else None
    if reply is None or first is None:
        raise MessageNotFound(messageId=reply_key)
    allowed = moderates or first.message.user_id == user.pk or first.session.created_by_id == user.pk
    if not allowed:
        raise PermissionDenied("Only the author of the message, the session's owner or a moderator may regenerate.")
    again = _runs().filter(message_id=first.message_id, request_key=request_key).first()
    if again is not None:
        return Regeneration(_ticket(again), False, again.status)
    if first.session.status != SessionStatus.OPEN:
        raise SessionClosed(sessionId=first.session.key)
    check_user_can_send(user.pk, first.session.workspace_id)  # a muted member sets no agent to work
    if first.session.agent_id is None:
        raise AgentNotFound("The session no longer has an agent.")
    if AgentRun.objects.filter(message_id=first.message_id, status__in=AGENT_RUN_OPEN_STATES).exists():
        # Perhaps this very request, created by another worker since we looked: then it is a repeat.
        again = _runs().filter(message_id=first.message_id, request_key=request_key).first()
        if again is not None:
            return Regeneration(_ticket(again), False, again.status)
        raise AgentRunActive(messageId=reply_key)
    attempt = (AgentRun.objects.filter(message_id=first.message_id).aggregate(top=Max("attempt"))["top"] or 0) + 1
    try:
        with transaction.atomic():
            run = AgentRun.objects.create(
                session_id=session_id,
                message_id=first.message_id,
                agent_id=first.session.agent_id,
                seq=first.seq,
                reply_key=reply_key,
                reply=reply,
                attempt=attempt,
                request_key=request_key,
                requested_by=user,
                version=reply.version + 1,
            )
    except IntegrityError:
        # Another worker created a run of that message meanwhile: this request's, or another one.
        again = _runs().filter(message_id=first.message_id, request_key=request_key).first()
        if again is None:
            raise AgentRunActive(messageId=reply_key) from None
        return Regeneration(_ticket(again), False, again.status)
    return Regeneration(_ticket(_runs().get(pk=run.pk)), True, run.status)
