"""Agent runs in the database: creating, claiming, renewing, finishing, cancelling.

Everything here is synchronous Django ORM code, called from the runner
through ``database_sync_to_async``; each function is one short transaction
that never waits for another worker's lock (``skip_locked``), so no DB
call of the runner can stall the worker's other DB work.

Exactly once.  :func:`create_run` makes at most one :class:`AgentRun` per
user message (unique on the message; a resend or a second worker finds the
existing row).  :func:`claim_next` gives a session's oldest open run to at
most one worker at a time, in ``seq`` order: the head of the queue is
selected ``FOR UPDATE SKIP LOCKED``, and a worker that skipped a locked head
sees an earlier open run and backs off.  (On SQLite, which serialises
writers, the same code needs no row locks.)  A claim is a lease that the
running worker renews; a run whose lease expired (its worker died) is
failed with ``worker_lost`` by the next claimer, so the queue moves on.
The reply is stored under a key derived from the user message's key, so
even a replayed finish cannot store it twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from chat.agents.backends import ContextMessage
from chat.agents.errors import AgentRunFinished, AgentRunNotFound
from chat.errors import PermissionDenied
from chat.ids import AGENT_REPLY_PREFIX
from chat.models import (
    AGENT_RUN_OPEN_STATES,
    Agent,
    AgentRun,
    AgentRunStatus,
    AgentSessionState,
    ChatMessage,
    ChatSession,
    ContentType,
    SenderType,
    VersionReason,
)
from chat.services import messages, versions
from chat.shapes import message_shape

#: Earlier messages a backend is given (backends bound it further).
HISTORY_LIMIT = 50
#: A user message stored this recently without a run yet may still get one
#: from the worker that stored it: later runs of the session wait for it.
RUN_CREATION_GRACE_S = 5.0
KEY_MAX = 128


def derive_key(user_key: str, suffix: str = "") -> str:
    """The id of what the agent stores in answer to ``user_key``: deterministic, at most 128 characters."""
    key = f"{AGENT_REPLY_PREFIX}{user_key}{suffix}"
    if len(key) <= KEY_MAX:
        return key
    digest = hashlib.sha256(user_key.encode()).hexdigest()[:48]
    return f"{AGENT_REPLY_PREFIX}{digest}{suffix}"


@dataclass(frozen=True)
class RunTicket:
    """What a worker needs to execute (or finish) one run, read when it was claimed."""

    run_id: int
    session_id: int
    session_key: str
    workspace_slug: str
    reply_key: str
    trigger_id: int
    trigger_key: str
    trigger_seq: int
    agent_id: int | None
    agent_key: str
    agent_name: str
    backend: str
    config: dict[str, Any] = field(repr=False)
    #: Whose run caps it counts against: who asked for a regeneration, else the
    #: author of the message it answers (``None``: a deleted user).
    sender_id: int | None = None
    #: 0: the answer to the message; 1, 2...: a regeneration (``chat.agents.regenerate``).
    attempt: int = 0
    #: A regeneration's version of the reply (``AgentRun.version``).
    version: int | None = None


def _ticket(run: AgentRun) -> RunTicket:
    session = run.session
    agent = run.agent
    return RunTicket(
        run_id=run.pk,
        session_id=session.pk,
        session_key=session.key,
        workspace_slug=session.workspace.slug,
        reply_key=run.reply_key,
        trigger_id=run.message_id,
        trigger_key=run.message.key,
        trigger_seq=run.seq,
        agent_id=agent.pk if agent else None,
        agent_key=agent.key if agent else "",
        agent_name=agent.name if agent else "agent",
        backend=agent.backend if agent else "",
        config=dict(agent.config) if agent and isinstance(agent.config, dict) else {},
        sender_id=run.requested_by_id if run.attempt else run.message.user_id,
        attempt=run.attempt,
        version=run.version if run.attempt else None,
    )


def _runs():
    return AgentRun.objects.select_related("session__workspace", "agent", "message")


# --- creating -----------------------------------------------------------------------


def create_run(session_id: int, message_id: int) -> tuple[int | None, bool]:
    """The run answering a stored user message: ``(run id, created)``.

    ``(None, False)`` when nothing answers it: not a user message of that
    session, or the session has no agent -- one indexed query, since this
    runs after every message.  Calling it again for the same message (a
    resend, another worker) returns the same run.
    """
    row = (
        ChatMessage.objects.filter(
            pk=message_id, session_id=session_id, sender_type=SenderType.USER, session__agent__isnull=False
        )
        .values("key", "seq", "session__agent_id")
        .first()
    )
    if row is None:
        return None, False
    existing = AgentRun.objects.filter(message_id=message_id, attempt=0).values_list("pk", flat=True).first()
    if existing is not None:
        return existing, False
    reply_key = derive_key(row["key"])
    if ChatMessage.objects.filter(session_id=session_id, key=reply_key).exists():
        # A client already used that id for a message of its own.
        reply_key = derive_key(row["key"], f"-{row['seq']}")
    try:
        with transaction.atomic():
            run = AgentRun.objects.create(
                session_id=session_id,
                message_id=message_id,
                agent_id=row["session__agent_id"],
                seq=row["seq"],
                reply_key=reply_key,
            )
    except IntegrityError:
        return AgentRun.objects.filter(message_id=message_id, attempt=0).values_list("pk", flat=True).first(), False
    return run.pk, True


# --- claiming -------------------------------------------------------------------------


class ClaimKind:
    #: Nothing open in the session.
    EMPTY = "empty"
    #: Another worker holds the session's current run.
    BUSY = "busy"
    #: An earlier user message may still get its run: ask again shortly.
    WAIT = "wait"
    #: Execute ``ticket``: it is ours until the lease runs out.
    RUN = "run"
    #: ``ticket``'s worker is gone; the run was failed with ``worker_lost``: announce it.
    LOST = "lost"
    #: ``ticket`` was cancelled before it started: announce it.
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Claim:
    kind: str
    ticket: RunTicket | None = None


def claim_next(session_id: int, worker_id: str, worker_channel: str, lease_s: float) -> Claim:
    now = timezone.now()
    with transaction.atomic():
        head = (
            _runs()
            .select_for_update(skip_locked=True, of=("self",))
            .filter(session_id=session_id, status__in=AGENT_RUN_OPEN_STATES)
            .order_by("seq", "attempt")
            .first()
        )
        if head is None:
            return Claim(ClaimKind.EMPTY)
        if AgentRun.objects.filter(session_id=session_id, status__in=AGENT_RUN_OPEN_STATES, seq__lt=head.seq).exists():
            return Claim(ClaimKind.BUSY)
        if head.status == AgentRunStatus.RUNNING:
            if head.lease_expires_at is not None and head.lease_expires_at > now:
                return Claim(ClaimKind.BUSY)
            head.status, head.error, head.finished_at = AgentRunStatus.FAILED, "worker_lost", now
            head.save(update_fields=["status", "error", "finished_at"])
            return Claim(ClaimKind.LOST, _ticket(head))
        if head.cancel_requested:
            head.status, head.finished_at = AgentRunStatus.CANCELLED, now
            head.save(update_fields=["status", "finished_at"])
            return Claim(ClaimKind.CANCELLED, _ticket(head))
        in_flight = ChatMessage.objects.filter(
            session_id=session_id,
            sender_type=SenderType.USER,
            seq__lt=head.seq,
            agent_run__isnull=True,
            created_at__gt=now - timedelta(seconds=RUN_CREATION_GRACE_S),
        ).exists()
        if in_flight and head.session.agent_id is not None:
            return Claim(ClaimKind.WAIT)
        head.status = AgentRunStatus.RUNNING
        head.worker_id, head.worker_channel = worker_id, worker_channel
        head.lease_expires_at = now + timedelta(seconds=lease_s)
        head.started_at = now
        head.save(update_fields=["status", "worker_id", "worker_channel", "lease_expires_at", "started_at"])
        return Claim(ClaimKind.RUN, _ticket(head))


@dataclass(frozen=True)
class Lease:
    #: False when the run is no longer ours (finished elsewhere, or taken over as lost).
    held: bool
    cancel_requested: bool = False


def renew_lease(run_id: int, worker_id: str, lease_s: float) -> Lease:
    until = timezone.now() + timedelta(seconds=lease_s)
    mine = AgentRun.objects.filter(pk=run_id, status=AgentRunStatus.RUNNING, worker_id=worker_id)
    if not mine.update(lease_expires_at=until):
        return Lease(held=False)
    return Lease(held=True, cancel_requested=bool(mine.values_list("cancel_requested", flat=True).first()))


def save_stream(run_id: int, worker_id: str, stream: list[Any]) -> bool:
    """Save what a running reply has streamed so far (only while the run is still ours): its text
    chunks and step events by index (:mod:`chat.agents.steps`).

    Why: the chunks otherwise live only in the memory of the worker running
    the reply; saved, any worker can show the reply in progress (the
    Parlant-compatible event log reads them).  False when the run is no
    longer ours or no longer running.
    """
    return bool(
        AgentRun.objects.filter(pk=run_id, status=AgentRunStatus.RUNNING, worker_id=worker_id).update(stream=stream)
    )


@dataclass(frozen=True)
class StreamingRun:
    """A run of a session that is running now, and the worker (and its channel) running it."""

    run_id: int
    worker_id: str
    worker_channel: str


def streaming_runs(session_id: int) -> list[StreamingRun]:
    """The session's runs that are running now (a joiner's catch-up asks their workers for the text so far)."""
    rows = AgentRun.objects.filter(session_id=session_id, status=AgentRunStatus.RUNNING).values_list(
        "pk", "worker_id", "worker_channel"
    )
    return [StreamingRun(run_id, worker_id, channel) for run_id, worker_id, channel in rows.order_by("seq")]


def sessions_needing_attention(lease_grace_s: float = 0.0) -> list[int]:
    """Sessions whose queue may be stuck: a run whose worker stopped renewing, or an old unclaimed run."""
    now = timezone.now()
    expired = AgentRun.objects.filter(
        status=AgentRunStatus.RUNNING, lease_expires_at__lt=now - timedelta(seconds=lease_grace_s)
    ).values_list("session_id", flat=True)
    waiting = AgentRun.objects.filter(
        status=AgentRunStatus.PENDING, created_at__lt=now - timedelta(seconds=RUN_CREATION_GRACE_S)
    ).values_list("session_id", flat=True)
    return sorted(set(expired) | set(waiting))


# --- context --------------------------------------------------------------------------


def _context_message(message: ChatMessage) -> ContextMessage:
    return ContextMessage(message.key, message.seq, message.sender_type, message.sender_name, message.content)


def load_context(ticket: RunTicket) -> tuple[ContextMessage, list[ContextMessage], dict[str, Any]]:
    """(the user message, earlier messages oldest first, the backend's saved state)."""
    trigger = ChatMessage.objects.get(pk=ticket.trigger_id)
    earlier = list(
        ChatMessage.objects.filter(
            session_id=ticket.session_id, seq__lt=trigger.seq, hidden=False, deleted_at__isnull=True
        ).order_by("-seq")[:HISTORY_LIMIT]
    )
    state: dict[str, Any] = {}
    if ticket.agent_id is not None:
        row = AgentSessionState.objects.filter(session_id=ticket.session_id, agent_id=ticket.agent_id).first()
        if row is not None and isinstance(row.state, dict):
            state = dict(row.state)
    return _context_message(trigger), [_context_message(m) for m in reversed(earlier)], state


def save_state(session_id: int, agent_id: int | None, state: dict[str, Any]) -> None:
    if agent_id is None:
        return
    AgentSessionState.objects.update_or_create(session_id=session_id, agent_id=agent_id, defaults={"state": state})


# --- finishing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Finished:
    #: False when the run was no longer ours: nothing was stored or changed.
    held: bool
    #: The stored message's ``ChatMessage`` shape (reply or system note), if any.
    shape: dict[str, Any] | None = None
    seq: int | None = None
    #: A regeneration's new version of the reply: ``shape`` is announced as ``chat:message-updated``.
    version: int | None = None


#: Every code a failed run may show clients, with the reason they are told:
#: fixed sentences, never an upstream status, host or exception.
FAILURE_REASONS = {
    "timeout": "it did not finish in time",
    "worker_lost": "the server answering it stopped",
    "rate_limited": "its provider is rate limiting it",
    "empty_reply": "it had nothing to say",
    "agent_misconfigured": "it is not configured correctly",
    "agent_missing": "it no longer exists",
    "backend_error": "its backend failed",
    "backend_unreachable": "its provider could not be reached",
    "upstream_error": "its provider answered with an error",
    "upstream_auth": "its provider refused its credentials",
    "upstream_cancelled": "its provider cancelled the reply",
    "stream_interrupted": "its reply was cut off",
    "agent_run_limit": "too many replies are running for this user or workspace; send again shortly",
}


def client_error_code(code: str) -> str:
    """``code`` if clients may see it (a key of :data:`FAILURE_REASONS`), else ``backend_error``."""
    return code if code in FAILURE_REASONS else "backend_error"


def failure_text(agent_name: str, code: str) -> str:
    reason = FAILURE_REASONS.get(code, FAILURE_REASONS["backend_error"])
    return f"{agent_name} could not answer: {reason}."


def finish_run(
    ticket: RunTicket,
    status: str,
    *,
    worker_id: str | None,
    content: str = "",
    error: str = "",
    chunks: int = 0,
    truncated: bool = False,
    cancelled_by: str = "",
    stream: list[Any] | None = None,
    steps: list[dict[str, Any]] | None = None,
) -> Finished:
    """Store what the run produced and close it, in one transaction.

    ``completed`` / ``cancelled`` with content store the agent's message
    (cancelled ones marked so) exactly as the backend wrote it, like users'
    messages (markdown gains its HTML from ``security.render`` as it is
    stored; the streamed chunks are the same raw text); ``failed`` / ``timed_out`` store a system
    note saying the agent could not answer.  With ``worker_id`` the run must
    still be ours and running; ``None`` is for a run already closed by
    :func:`claim_next` (lost or cancelled before it started).  ``stream``,
    when given, is every item the reply streamed (text chunks and step
    events, see :mod:`chat.agents.steps`; saved with the status, so whoever
    sees the run finished sees all of it); ``steps``, the reply's tool calls
    and reasoning, go into the stored reply's ``metadata.steps``.
    """
    now = timezone.now()
    with transaction.atomic():
        if worker_id is not None:
            owned = AgentRun.objects.filter(pk=ticket.run_id, status=AgentRunStatus.RUNNING, worker_id=worker_id)
            changes: dict[str, Any] = {"status": status, "error": error, "finished_at": now, "chunks": chunks}
            if stream is not None:
                changes["stream"] = stream
            if not owned.update(**changes):
                return Finished(held=False)
        if ticket.attempt:
            return _finish_regeneration(
                ticket, status, content, truncated=truncated, cancelled_by=cancelled_by, steps=steps
            )
        base_metadata = {"agentId": ticket.agent_key, "inReplyTo": ticket.trigger_key, "agentRun": status}
        stored = None
        if content.strip() and status in (AgentRunStatus.COMPLETED, AgentRunStatus.CANCELLED):
            agent = Agent.objects.filter(pk=ticket.agent_id).first() if ticket.agent_id else None
            sender = messages.Sender.for_agent(agent) if agent else messages.Sender("agent", ticket.agent_name)
            metadata = dict(base_metadata)
            if status == AgentRunStatus.CANCELLED:
                metadata["cancelled"] = True
                if cancelled_by:
                    metadata["cancelledBy"] = cancelled_by
            if truncated:
                metadata["truncated"] = True
            if steps:
                metadata["steps"] = steps
            content_type = reply_content_type(ticket.config)
            reply = content[: settings.CHAT.message_max_length]
            if len(reply) < len(content):
                metadata["truncated"] = True
            stored = messages.store_message(
                ticket.session_id, sender, ticket.reply_key, reply, content_type=content_type, metadata=metadata
            )
        elif status in (AgentRunStatus.FAILED, AgentRunStatus.TIMED_OUT):
            metadata = {**base_metadata, "error": client_error_code(error)}
            stored = messages.store_message(
                ticket.session_id,
                messages.Sender.system(),
                derive_key(ticket.trigger_key, "-error"),
                failure_text(ticket.agent_name, error),
                metadata=metadata,
            )
        if stored is None:
            return Finished(held=True)
        AgentRun.objects.filter(pk=ticket.run_id).update(reply=stored.message)
        session = ChatSession.objects.select_related("workspace").get(pk=ticket.session_id)
        return Finished(held=True, shape=message_shape(stored.message, session), seq=stored.message.seq)


def _reply_metadata(ticket: RunTicket, status: str, *, truncated: bool, cancelled_by: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"agentId": ticket.agent_key, "inReplyTo": ticket.trigger_key, "agentRun": status}
    if status == AgentRunStatus.CANCELLED:
        metadata["cancelled"] = True
        if cancelled_by:
            metadata["cancelledBy"] = cancelled_by
    if truncated:
        metadata["truncated"] = True
    return metadata


def _finish_regeneration(
    ticket: RunTicket,
    status: str,
    content: str,
    *,
    truncated: bool,
    cancelled_by: str,
    steps: list[dict[str, Any]] | None = None,
) -> Finished:
    """A regeneration with text becomes the reply's next version; one that failed changes nothing."""
    if not content.strip() or status not in (AgentRunStatus.COMPLETED, AgentRunStatus.CANCELLED):
        return Finished(held=True)
    run = AgentRun.objects.filter(pk=ticket.run_id).values("reply_id", "requested_by_id").first() or {}
    reply = content[: settings.CHAT.message_max_length]
    metadata = _reply_metadata(ticket, status, truncated=truncated or len(reply) < len(content), cancelled_by=cancelled_by)
    metadata["regenerated"] = True
    if steps:
        metadata["steps"] = steps
    message = versions.replace_content(
        run.get("reply_id") or 0,
        reply,
        reply_content_type(ticket.config),
        metadata,
        reason=VersionReason.REGENERATE,
        changed_by=run.get("requested_by_id"),
    )
    if message is None:
        return Finished(held=True)  # the reply was deleted meanwhile: nothing to replace
    session = ChatSession.objects.select_related("workspace").get(pk=ticket.session_id)
    return Finished(held=True, shape=message_shape(message, session), seq=message.seq, version=message.version)


def reply_content_type(config: dict[str, Any]) -> str:
    """Agents answer in ``markdown`` (what language models write) unless the config says ``"content_type": "text"``."""
    return ContentType.TEXT if config.get("content_type") == ContentType.TEXT else ContentType.MARKDOWN


def fail_run(ticket: RunTicket, worker_id: str, error: str) -> bool:
    """Close a run as failed without storing anything (when storing itself failed)."""
    return bool(
        AgentRun.objects.filter(pk=ticket.run_id, status=AgentRunStatus.RUNNING, worker_id=worker_id).update(
            status=AgentRunStatus.FAILED, error=error, finished_at=timezone.now()
        )
    )


# --- cancelling -----------------------------------------------------------------------


@dataclass(frozen=True)
class CancelRequest:
    ticket: RunTicket
    #: ``cancelled`` (it had not started: done) or ``cancelling`` (running: its worker stops it).
    status: str
    worker_id: str = ""
    worker_channel: str = ""


def find_run(session_id: int, message_key: str) -> AgentRun | None:
    """The newest run of a session whose reply or triggering message has that id."""
    by_key = Q(reply_key=message_key) | Q(message__key=message_key)
    return _runs().filter(by_key, session_id=session_id).order_by("-seq", "-attempt").first()


def request_cancel(session_id: int, message_key: str, user: Any, moderates: bool) -> CancelRequest:
    run = find_run(session_id, message_key)
    if run is None:
        raise AgentRunNotFound(messageId=message_key)
    allowed = moderates or run.message.user_id == user.pk or run.session.created_by_id == user.pk
    if not allowed:
        raise PermissionDenied("Only the author of the message, the session's owner or a moderator may cancel.")
    name = user.get_username()[:150]
    now = timezone.now()
    with transaction.atomic():
        if AgentRun.objects.filter(pk=run.pk, status=AgentRunStatus.PENDING).update(
            status=AgentRunStatus.CANCELLED, cancel_requested=True, cancelled_by=name, finished_at=now
        ):
            return CancelRequest(_ticket(run), "cancelled")
        if AgentRun.objects.filter(pk=run.pk, status=AgentRunStatus.RUNNING).update(
            cancel_requested=True, cancelled_by=name
        ):
            fresh = AgentRun.objects.filter(pk=run.pk).values("worker_id", "worker_channel").first() or {}
            return CancelRequest(
                _ticket(run), "cancelling", fresh.get("worker_id", ""), fresh.get("worker_channel", "")
            )
    raise AgentRunFinished(messageId=run.reply_key)


def cancelled_by(run_id: int) -> str:
    return AgentRun.objects.filter(pk=run_id).values_list("cancelled_by", flat=True).first() or ""
