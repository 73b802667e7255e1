"""Each chat session as Parlant's event log: messages, agent statuses and streamed replies at stable offsets.

Layer: the Parlant-compatible API (synchronous ORM code; the consumer calls
it through ``database_sync_to_async``).

Why a persisted log.  Parlant clients read ``GET .../events?min_offset=N``
and resume after a reconnect from the last offset they saw + 1, so an
event's offset may never change and nothing may be inserted before an
offset a client has already passed.  Our records do not give that order by
themselves: messages have a gap-free ``seq`` of their own, and an agent
run's statuses and its streaming reply are not messages.  So :func:`sync`
appends to :class:`~chat.parlant.models.LogEvent` every event the database
implies that the log does not have yet, in the order it first sees them,
under the session's log lock (:class:`~chat.parlant.models.LogHead`, one
``SELECT ... FOR UPDATE``).  Whichever worker syncs first assigns the
offsets; every worker then reads the same rows, so a long-poll or stream on
one worker sees what happened on another, and resuming from an offset
loses and repeats nothing.

What the database implies:

- every message (``ChatMessage``, in ``seq`` order) is a ``message`` event:
  source ``customer`` for the session's creator, ``human_agent`` for other
  members, ``ai_agent`` for an agent (``human_agent_on_behalf_of_ai_agent``
  for one a person posted on its behalf), ``system`` for system notes;
- every agent run (``AgentRun``) is a sequence of ``status`` events from
  source ``ai_agent``: ``acknowledged`` (the run exists), ``processing``
  (a worker claimed it), ``typing`` (its first chunks are saved), then its
  reply as a ``message`` event (created at the first chunk and updated in
  place: ``data.chunks`` grows, and ends with ``null`` when the run ends,
  as Parlant's streaming messages do), and finally ``ready`` (completed),
  ``error`` (failed, timed out; ``data.exception`` says why in our words)
  or ``cancelled``.  The reply's stored ``ChatMessage`` is that same event
  (same id), never a second one;
- every tool call of a run's reply (a tool step, :mod:`chat.agents.steps`)
  is a ``tool`` event from source ``system`` once it has ended, as the
  Parlant engine emits one after running a tool: ``data.tool_calls`` is
  ``[{tool_id, arguments, result: {data, metadata, control, ...}}]`` with
  our step's name, its arguments (the JSON object it streamed; anything
  else as ``{"input": <text>}``), and its result text (``null`` when none
  was reported; ``metadata.status`` says ``completed`` or ``failed``).

When a pass sees several new things at once they are ordered by when they
happened (message ``created_at``; run created, started, finished), each
run's phases always in the order above and after the message that
triggered it.  Only what an event *is* is logged; what it *says* is read
at request time from the message or the run, so a hidden message is left
out for members, and a streaming reply shows its latest chunks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from django.db import transaction
from django.db.models import Q

from chat.agents import steps as agent_steps
from chat.agents.runs import failure_text
from chat.models import AGENT_RUN_OPEN_STATES, AgentRun, AgentRunStatus, ChatMessage, ChatSession, SenderType
from chat.parlant.models import EventKind, LogEvent, LogHead
from chat.shapes import rendered_html

#: Most messages logged in one pass; a longer backlog takes several passes.
SYNC_BATCH = 500
#: Most events one read returns: clients continue from the last offset + 1.
READ_LIMIT = 1000

#: Parlant's event sources and kinds (its ``EventSourceDTO`` and ``EventKindDTO``).
SOURCES = ("customer", "customer_ui", "human_agent", "human_agent_on_behalf_of_ai_agent", "ai_agent", "system")
KINDS = ("message", "tool", "status", "custom")
CUSTOMER, HUMAN_AGENT, ON_BEHALF, AI_AGENT, SYSTEM = (
    "customer",
    "human_agent",
    "human_agent_on_behalf_of_ai_agent",
    "ai_agent",
    "system",
)

#: ``metadata`` key of an agent message a person posted on the agent's behalf (set by the server only).
ON_BEHALF_METADATA = "parlantSource"

REPLY = "reply"
TERMINAL_PHASES = {
    AgentRunStatus.COMPLETED: "ready",
    AgentRunStatus.FAILED: "error",
    AgentRunStatus.TIMED_OUT: "error",
    AgentRunStatus.CANCELLED: "cancelled",
}
PHASE_ORDER = {"acknowledged": 0, "processing": 1, "typing": 2, REPLY: 3, "ready": 4, "error": 4, "cancelled": 4}


# --- appending ------------------------------------------------------------------------------


@dataclass
class _Entry:
    """An event the database implies, not yet in the log."""

    at: datetime
    #: Ties between equal times: messages first (by seq), then run phases (by run, phase).
    order: tuple[int, int, int]
    key: str
    kind: str
    source: str
    correlation: str
    phase: str = ""
    message_id: int | None = None
    run_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Pass:
    entries: list[_Entry]
    synced_seq: int
    #: Entries whose message now exists: event key -> message id (a reply stored after it started streaming).
    links: dict[str, int]
    #: The message batch was full: more may be waiting.
    more: bool

    @property
    def empty(self) -> bool:
        return not self.entries and not self.links


def _later(*moments: datetime | None) -> datetime:
    return max(moment for moment in moments if moment is not None)


def message_source(message: ChatMessage, session: ChatSession) -> str:
    """Who a message is from in Parlant's terms (see the module docstring)."""
    if message.sender_type == SenderType.USER:
        return CUSTOMER if message.user_id is not None and message.user_id == session.created_by_id else HUMAN_AGENT
    if message.sender_type == SenderType.AGENT:
        metadata = message.metadata if isinstance(message.metadata, dict) else {}
        return ON_BEHALF if metadata.get(ON_BEHALF_METADATA) == ON_BEHALF else AI_AGENT
    return SYSTEM


def run_correlation(run: AgentRun) -> str:
    """The correlation id of a run's events: the triggering message's id, then ``::agent``."""
    return f"{run.message.key}::agent"


def _status_data(run: AgentRun, phase: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if phase == "error":
        # Parlant puts a traceback here; ours says why in the words of the failure note, never upstream text.
        name = run.agent.name if run.agent is not None else "agent"
        data = {"exception": failure_text(name, run.error or "backend_error"), "code": run.error or "backend_error"}
    return {"status": phase, "data": data}


def _tool_data(step: dict[str, Any]) -> dict[str, Any]:
    """Parlant's ``ToolEventData`` of one ended tool step."""
    try:
        arguments = json.loads(step.get("arguments") or "{}")
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        arguments = {"input": step.get("arguments", "")}
    result = {
        "data": step.get("result"),
        "metadata": {"status": step.get("status")},
        "control": {},
        "canned_responses": [],
        "canned_response_fields": {},
    }
    return {"tool_calls": [{"tool_id": step.get("name", ""), "arguments": arguments, "result": result}]}


def _pending(session: ChatSession, head: LogHead) -> _Pass:
    """What the database implies beyond the log (read-only)."""
    messages = list(
        ChatMessage.objects.filter(session_id=session.pk, seq__gt=head.synced_seq).order_by("seq")[:SYNC_BATCH]
    )
    synced_seq = messages[-1].seq if messages else head.synced_seq
    finished = LogEvent.objects.filter(
        session_id=session.pk, run__isnull=False, phase__in=set(TERMINAL_PHASES.values())
    ).values("run_id")
    runs = list(
        # Regenerations (attempt > 0) replace a reply's content in place: Parlant's log has no such event.
        AgentRun.objects.filter(session_id=session.pk, seq__lte=synced_seq, attempt=0)
        .exclude(pk__in=finished)
        .select_related("message", "agent", "reply")
        .order_by("seq", "pk")
    )
    logged: dict[int, set[str]] = {}
    if runs:
        rows = LogEvent.objects.filter(session_id=session.pk, run__in=[run.pk for run in runs])
        for run_id, phase in rows.values_list("run_id", "phase"):
            logged.setdefault(run_id, set()).add(phase)
    existing = dict(
        LogEvent.objects.filter(session_id=session.pk, key__in=[m.key for m in messages]).values_list(
            "key", "message_id"
        )
    )
    # A failure note answers a run: it shares the run's correlation id.
    notes = dict(
        AgentRun.objects.filter(
            session_id=session.pk, reply__in=[m.pk for m in messages if m.sender_type == SenderType.SYSTEM]
        ).values_list("reply_id", "message__key")
    )
    entries: list[_Entry] = []
    links: dict[str, int] = {}
    times: dict[int, datetime] = {}
    replies = {run.reply_key for run in runs}
    last: datetime | None = None
    for message in messages:
        last = _later(message.created_at, last)
        times[message.pk] = last
        if message.key in existing:
            if existing[message.key] is None:
                links[message.key] = message.pk
            continue
        if message.sender_type == SenderType.AGENT and message.key in replies:
            continue  # a run's reply: logged with its run below
        correlation = f"{notes[message.pk]}::agent" if message.pk in notes else message.key
        entries.append(
            _Entry(
                last,
                (0, message.seq, 0),
                message.key,
                EventKind.MESSAGE,
                message_source(message, session),
                correlation,
                message_id=message.pk,
            )
        )
    for run in runs:
        entries.extend(_run_entries(run, logged.get(run.pk, set()), times.get(run.message_id), links))
    return _Pass(entries, synced_seq, links, more=len(messages) == SYNC_BATCH)


def _run_entries(run: AgentRun, done: set[str], trigger_at: datetime | None, links: dict[str, int]) -> list[_Entry]:
    correlation = run_correlation(run)
    reply = run.reply if run.reply is not None and run.reply.sender_type == SenderType.AGENT else None
    phases: list[tuple[str, datetime]] = []
    at = _later(run.created_at, trigger_at)
    phases.append(("acknowledged", at))
    if run.started_at is not None:
        at = _later(run.started_at, at)
        phases.append(("processing", at))
    tools: list[dict[str, Any]] = []
    if run.stream or reply is not None:
        phases.append(("typing", at))
        tools = [s for s in agent_steps.fold(run.stream or []) if s["type"] == agent_steps.TOOL]
        phases += [(f"tool:{n}", at) for n, step in enumerate(tools) if step["status"] in agent_steps.ENDED]
        if reply is not None or any(isinstance(item, str) for item in run.stream or []):
            phases.append((REPLY, at))  # steps alone are no message
        if reply is not None:
            links[run.reply_key] = reply.pk
    terminal = TERMINAL_PHASES.get(run.status)
    if terminal is not None:
        phases.append((terminal, _later(run.finished_at, at)))
    entries = []
    for phase, moment in phases:
        if phase in done:
            continue
        order = (1, run.seq, PHASE_ORDER.get(phase, PHASE_ORDER["typing"]))
        if phase.startswith("tool:"):
            step = tools[int(phase.removeprefix("tool:"))]
            key = f"{run.reply_key}.tool{phase.removeprefix('tool:')}"
            entries.append(
                _Entry(moment, order, key, EventKind.TOOL, SYSTEM, correlation, phase, None, run.pk, _tool_data(step))
            )
        elif phase == REPLY:
            entries.append(
                _Entry(
                    moment,
                    order,
                    run.reply_key,
                    EventKind.MESSAGE,
                    AI_AGENT,
                    correlation,
                    REPLY,
                    reply.pk if reply is not None else None,
                    run.pk,
                )
            )
        else:
            entries.append(
                _Entry(
                    moment,
                    order,
                    f"{run.reply_key}.{phase}",
                    EventKind.STATUS,
                    AI_AGENT,
                    correlation,
                    phase,
                    None,
                    run.pk,
                    _status_data(run, phase),
                )
            )
    return entries


def sync(session: ChatSession) -> None:
    """Append to the session's log every event the database implies and it lacks (idempotent, any worker).

    A read-only pass first, so that the common case -- nothing new -- takes
    no lock; then the same pass again under the session's log lock, which
    is what assigns offsets, so two workers can never log one event twice
    or give two events one offset.
    """
    while True:
        head = LogHead.objects.filter(session_id=session.pk).first() or LogHead(session_id=session.pk)
        preview = _pending(session, head)
        if preview.empty and preview.synced_seq == head.synced_seq:
            return
        with transaction.atomic():
            LogHead.objects.get_or_create(session_id=session.pk)
            head = LogHead.objects.select_for_update().get(session_id=session.pk)
            found = _pending(session, head)
            offset = head.next_offset
            rows = []
            for entry in sorted(found.entries, key=lambda e: (e.at, e.order)):
                rows.append(
                    LogEvent(
                        session_id=session.pk,
                        offset=offset,
                        key=entry.key,
                        kind=entry.kind,
                        source=entry.source,
                        correlation=entry.correlation,
                        phase=entry.phase,
                        message_id=entry.message_id,
                        run_id=entry.run_id,
                        data=entry.data,
                        created_at=entry.at,
                    )
                )
                offset += 1
            LogEvent.objects.bulk_create(rows)
            for key, message_id in found.links.items():
                LogEvent.objects.filter(session_id=session.pk, key=key, message__isnull=True).update(
                    message_id=message_id
                )
            LogHead.objects.filter(session_id=session.pk).update(next_offset=offset, synced_seq=found.synced_seq)
        if not found.more:
            return


# --- reading --------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    """UTC in ISO 8601 with ``Z``, as Parlant (pydantic) writes it."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _participant(message: ChatMessage) -> dict[str, Any]:
    if message.sender_type == SenderType.AGENT and message.agent is not None:
        return {"id": message.agent.key, "display_name": message.agent.name}
    if message.sender_type == SenderType.USER:
        return {"id": message.sender_name, "display_name": message.sender_name}
    return {"id": None, "display_name": message.sender_name}


def _agent_participant(run: AgentRun) -> dict[str, Any]:
    if run.agent is None:
        return {"id": None, "display_name": "agent"}
    return {"id": run.agent.key, "display_name": run.agent.name}


def _message_data(row: LogEvent) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(data, metadata, deleted) of a message event."""
    run, message = row.run, row.message
    if row.phase == REPLY and run is not None:
        # The reply's text chunks (its stream also holds its tool and reasoning steps, logged as their own events).
        chunks = [c for c in run.stream if isinstance(c, str)] if isinstance(run.stream, list) else []
        if message is None and run.reply is not None and run.reply.sender_type == SenderType.AGENT:
            message = run.reply
        if message is not None and message.deleted_at is not None:
            text, html = "", None  # deleted: a tombstone, like everywhere else
        elif message is not None:
            text, html = message.content, rendered_html(message)
        else:
            # Still streaming (or it failed part-way): the raw chunks so far, as text (no HTML until it is stored).
            text, html = "".join(chunks), None
        data: dict[str, Any] = {"message": text, "participant": _agent_participant(run)}
        if html is not None:
            data["html"] = html
        removed = message is not None and message.deleted_at is not None
        if chunks and not removed:
            data["chunks"] = chunks + ([None] if run.status not in AGENT_RUN_OPEN_STATES else [])
        metadata = message.metadata if message is not None and isinstance(message.metadata, dict) else {}
        return data, ({} if removed else metadata), bool(message is not None and message.hidden) or removed
    if message is None:  # deleted since
        return {"message": "", "participant": {"id": None, "display_name": ""}}, {}, True
    if message.deleted_at is not None:  # deleted by its author or a moderator: no content, ever
        return {"message": "", "participant": _participant(message)}, {}, True
    metadata = message.metadata if isinstance(message.metadata, dict) else {}
    data = {"message": message.content, "participant": _participant(message)}
    html = rendered_html(message)
    if html is not None:
        data["html"] = html  # markdown: the server's safe HTML of the message (docs/parlant-compat.md)
    return data, metadata, message.hidden


def event_shape(row: LogEvent) -> dict[str, Any]:
    """Parlant's ``EventDTO`` of a log entry (``correlation_id`` and the newer ``trace_id`` alike)."""
    if row.kind == EventKind.MESSAGE:
        data, metadata, deleted = _message_data(row)
    else:
        data, metadata, deleted = row.data, {}, False
    return {
        "id": row.key,
        "source": row.source,
        "kind": row.kind,
        "offset": row.offset,
        "creation_utc": iso(row.created_at),
        "correlation_id": row.correlation,
        "trace_id": row.correlation,
        "data": data,
        "metadata": metadata,
        "deleted": deleted,
    }


def streaming(event: dict[str, Any]) -> bool:
    """A message event whose chunks have not ended (no ``null`` at the end yet)."""
    if event["kind"] != EventKind.MESSAGE:
        return False
    chunks = event["data"].get("chunks") if isinstance(event["data"], dict) else None
    return isinstance(chunks, list) and (not chunks or chunks[-1] is not None)


@dataclass(frozen=True)
class Query:
    """Parlant's ``list_events`` filters."""

    min_offset: int = 0
    kinds: tuple[str, ...] = ()
    source: str | None = None
    correlation: str | None = None


def _rows(session: ChatSession, moderates: bool) -> Any:
    rows = LogEvent.objects.filter(session_id=session.pk)
    if not moderates:
        # Hidden messages are left out for members, as in history.
        rows = rows.filter(Q(message__isnull=True) | Q(message__hidden=False))
    return rows.select_related("message__agent", "run__agent", "run__reply")


def read(session: ChatSession, query: Query, *, moderates: bool, complete_only: bool) -> list[dict[str, Any]]:
    """Events from ``query.min_offset`` on, in offset order (at most :data:`READ_LIMIT`).

    ``complete_only`` stops before the first reply still streaming: a JSON
    listing then hands a reply over once, whole (see ``docs/parlant-compat.md``
    for why); SSE listings pass ``False`` and clients follow such a reply with
    the per-event stream, as with Parlant.
    """
    rows = _rows(session, moderates).filter(offset__gte=query.min_offset)
    if query.kinds:
        rows = rows.filter(kind__in=query.kinds)
    if query.source:
        rows = rows.filter(source=query.source)
    if query.correlation:
        rows = rows.filter(correlation=query.correlation)
    events = []
    for row in rows.order_by("offset")[:READ_LIMIT]:
        event = event_shape(row)
        if complete_only and streaming(event):
            break
        events.append(event)
    return events


def read_one(session: ChatSession, key: str, *, moderates: bool) -> dict[str, Any] | None:
    row = _rows(session, moderates).filter(key=key).first()
    return None if row is None else event_shape(row)
