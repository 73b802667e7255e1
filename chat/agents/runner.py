"""Runs a session's agent when a user's message is stored, and streams its reply to the session.

Entry points (all async, all cheap: the work happens in background tasks):

- :func:`on_user_message` -- called right after a user message is stored
  and broadcast.  Creates the message's :class:`~chat.models.AgentRun` (at
  most one per message, whichever worker and however often it is called)
  and makes sure someone works through the session's queue.
- :func:`cancel` -- ``chat:cancel-agent``: stops a running reply (on
  whichever worker runs it) or drops a queued one.
- :func:`start` -- start this worker's background tasks (the first call of
  either of the above does it too).

What the session sees for one run, in order (through :func:`chat.notify.to_session`,
so on every worker):

1. ``chat:typing-indicator`` ``{isTyping: true, senderType: "agent", agentId, ...}``;
2. ``chat:agent-stream-chunk`` ``{sessionId, messageId, chunk, isComplete: false,
   timestamp, workspaceId, agentId, inReplyTo, index}`` for every chunk, as
   the backend yields it, and ``chat:agent-tool-call`` / ``chat:agent-reasoning``
   for every step event (:mod:`chat.agents.steps`, :mod:`chat.agents.relay`):
   ``index`` counts all of them from 0, in the order they are produced;
3. ``chat:typing-indicator`` ``{isTyping: false, ...}``;
4. a last ``chat:agent-stream-chunk`` with ``chunk: ""`` and ``isComplete: true``,
   plus ``seq`` of the stored reply, or ``cancelled: true``, or
   ``error: {code, message}`` when the run failed or timed out;
5. ``chat:message-received`` with the stored message: the agent's reply
   (``id`` = ``messageId`` of the chunks, its own ``seq``; a cancelled reply
   is stored as far as it got with ``metadata.cancelled: true``), or, for a
   failure, a ``system`` message saying the agent could not answer
   (``metadata.error`` holds the code).  A cancelled reply with no text yet
   stores nothing.

Chunks are the backend's raw text: clients show them as text while the
reply streams.  The stored reply is the chunks joined, verbatim (cut at
``CHAT_MESSAGE_MAX_LENGTH``), as ``markdown`` -- or ``text`` with
``"content_type": "text"`` in the agent's config; a markdown reply's
``chat:message-received`` and history carry its ``html`` from the one
server-side renderer (``security.render``), which replaces the streamed text.

Queueing.  Each session's runs execute one at a time in the ``seq`` order of
their messages, by whichever worker claims them (see :mod:`chat.agents.runs`);
sessions never wait for each other and nothing here runs on a socket's
event handler beyond creating the run row.  A worker executes at most
``agent_max_concurrent_runs`` runs at once, of which at most
``CHAT_AGENT_RUNS_PER_USER`` answer one user and
``CHAT_AGENT_RUNS_PER_WORKSPACE`` one workspace, so no tenant holds every
slot: a run claimed beyond either fails at once with ``agent_run_limit``
(its final chunk's ``error`` and a system note say so; the user may send again).

Regenerating.  ``chat:regenerate`` queues another run of a replied-to
message (:mod:`chat.agents.regenerations`); its chunks carry the reply's
``messageId`` and ``version`` (the version it will become), index from 0
again, and its end is announced as ``chat:message-updated`` with the
reply's new version instead of ``chat:message-received``.

Cancelling.  The worker running a reply is named in its run row; a cancel
handled by another worker reaches it as a ``chat.agent.cancel`` message on
its channel (and, should that be lost, through the ``cancel_requested``
flag its lease renewal reads).

Catching up.  A socket that joins a session (or rejoins it after a
reconnect) while a reply streams gets, after it subscribed to the session,
one ``chat:agent-stream-chunk`` with ``catchUp: true`` whose ``chunk`` is
the whole text so far, ``steps`` the tool calls and reasoning so far, and
whose ``index`` is the last event it includes
(:func:`catch_up`).  Only the worker running the reply knows that text
exactly, so the joiner's worker asks it (a ``chat.agent.catch-up`` message
on its channel) and it sends the catch-up straight to the socket, between
two of its chunks: every chunk after it reaches the socket live, in order,
and chunks the socket got live before it are included in it (clients skip
live chunks whose ``index`` is not above the text they have).

Progress.  While a reply streams, the chunks so far are saved in its run
row every ``agent_stream_save_ms`` (default 250 ms) when there are new ones,
and all of them with the final status, so any worker can show a reply in
progress (``chat.parlant`` does); this never delays the chunks themselves.

Time limits.  A run may take ``timeout_s`` from the agent's config, else
``settings.CHAT.agent_timeout_s`` (default **60 s**), from claim to last
chunk; then it fails with ``timeout``.  A claim is a lease of
``agent_lease_s`` (default 30 s) renewed every third of it; if a worker
dies, its run is failed with ``worker_lost`` once the lease has expired, by
any worker's sweep (every half lease) or the session's next message.

A reply is at most ``CHAT_MESSAGE_MAX_LENGTH`` characters: a backend that
says more is cut there and its stored message marked ``truncated``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings

from chat import event_names, notify
from chat.actions.messages import message_posted
from chat.agents import regenerations, runs, steps
from chat.agents.backends import AgentContext, BackendError, make_backend
from chat.agents.backends.base import MAX_TIMEOUT_S
from chat.agents.relay import Reply
from chat.agents.secrets import redact, secret_values
from chat.errors import ChatError
from chat.models import AgentRunStatus
from chat.shapes import now_ms, typing_shape
from monitoring import metrics

logger = logging.getLogger(__name__)

CANCEL_MESSAGE = "chat.agent.cancel"
CATCH_UP_MESSAGE = "chat.agent.catch-up"

#: The prefix of this runner's channel on the channel layer (where cancel requests reach the worker running a reply).
CHANNEL_PREFIX = "agents"

#: The error code of a run refused for its user's or workspace's share (``CHAT_AGENT_RUNS_PER_*``).
RUN_LIMIT_ERROR = "agent_run_limit"
#: How long a drain waits when an earlier message's run may still appear.
WAIT_RETRY_S = 0.1


def run_timeout_s(config: dict[str, Any]) -> float:
    """The agent's ``timeout_s`` (at most ``MAX_TIMEOUT_S``, 120) if it is a positive number,
    else ``settings.CHAT.agent_timeout_s`` (60)."""
    value = config.get("timeout_s")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(min(value, MAX_TIMEOUT_S))
    return float(settings.CHAT.agent_timeout_s)


# --- shapes -----------------------------------------------------------------------------


def chunk_shape(ticket: runs.RunTicket, chunk: str, *, complete: bool, index: int, **extra: Any) -> dict[str, Any]:
    return {
        "sessionId": ticket.session_key,
        "messageId": ticket.reply_key,
        "chunk": chunk,
        "isComplete": complete,
        "timestamp": now_ms(),
        "workspaceId": ticket.workspace_slug,
        "agentId": ticket.agent_key,
        "inReplyTo": ticket.trigger_key,
        "index": index,
        **({"version": ticket.version} if ticket.version else {}),
        **extra,
    }


def step_event(ticket: runs.RunTicket, event: dict[str, Any], index: int) -> tuple[str, dict[str, Any]]:
    """The socket event relaying one step event of a reply: ``chat:agent-tool-call`` or ``chat:agent-reasoning``."""
    shape = {
        "sessionId": ticket.session_key,
        "messageId": ticket.reply_key,
        "timestamp": now_ms(),
        "workspaceId": ticket.workspace_slug,
        "agentId": ticket.agent_key,
        "inReplyTo": ticket.trigger_key,
        "index": index,
        **({"version": ticket.version} if ticket.version else {}),
        **{key: value for key, value in event.items() if key != "type"},
    }
    name = event_names.AGENT_TOOL_CALL if event["type"] == steps.TOOL else event_names.AGENT_REASONING
    return name, shape


def agent_typing_shape(ticket: runs.RunTicket, is_typing: bool) -> dict[str, Any]:
    shape = typing_shape(ticket.session_key, ticket.agent_name, is_typing)
    shape.update(senderType="agent", agentId=ticket.agent_key)
    return shape


# --- one run ------------------------------------------------------------------------------


@dataclass
class Outcome:
    status: str
    #: The failure's code; what clients are told is :func:`runs.failure_text` of it, never a backend's message.
    error: str = ""
    truncated: bool = False


class _NoTimer:
    def first_chunk(self) -> None:
        pass

    def finished(self, error: str | None = None) -> None:
        pass


def run_timer(backend: str) -> Any:
    """``monitoring.metrics.agent_run(backend)``: runs, durations, time to first chunk, errors."""
    try:
        return metrics.agent_run(backend or "none")
    except Exception:  # metrics must never break a run
        logger.exception("agent metrics failed")
        return _NoTimer()


@dataclass
class ActiveRun:
    ticket: runs.RunTicket
    reply: Reply = field(default_factory=lambda: Reply(settings.CHAT.message_max_length))
    typing: bool = False
    stream_task: asyncio.Task[Outcome] | None = None
    #: How many of ``reply.items`` are saved in the run row (``AgentRun.stream``).
    saved: int = 0
    cancel_requested: bool = False
    #: The lease was lost: another worker closed this run; store nothing.
    lost: bool = False
    timer: Any = field(default_factory=_NoTimer)

    @property
    def content(self) -> str:
        return self.reply.content


class AgentRunner:
    """This worker's share of the agent work: per-session drains, the cancel listener, the sweep."""

    def __init__(self) -> None:
        self._drains: dict[int, asyncio.Task[None]] = {}
        self._kicked: set[int] = set()
        self._active: dict[int, ActiveRun] = {}
        self._early_cancels: set[int] = set()
        self._background: list[asyncio.Task[None]] = []
        self._starting: asyncio.Lock | None = None
        self._slots: asyncio.Semaphore | None = None
        #: Runs executing on this worker per user id and per workspace slug (the per-tenant caps).
        self._by_user: Counter[int | None] = Counter()
        self._by_workspace: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.channel: str = ""

    @property
    def worker_id(self) -> str:
        return settings.CHAT.worker_id

    @property
    def active_runs(self) -> int:
        """Agent runs this worker is carrying out now."""
        return len(self._active)

    @property
    def layer(self) -> Any:
        return get_channel_layer()

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the cancel listener and the sweep on this event loop (once)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A new event loop (tests run one per test): forget the old one's tasks.
            self.__init__()
            self._loop = loop
            self._starting = asyncio.Lock()
            self._slots = asyncio.Semaphore(settings.CHAT.agent_max_concurrent_runs)
        if self.channel:
            return
        assert self._starting is not None
        async with self._starting:
            if self.channel:
                return
            channel = await self.layer.new_channel(CHANNEL_PREFIX)
            # Long-lived: each in a fresh context, never the caller's (a REST view's async_to_sync
            # context ends with the request, and its executor with it).
            self._background = [
                loop.create_task(self._listen(channel), name="agent-listener", context=contextvars.Context()),
                loop.create_task(self._sweep(), name="agent-sweep", context=contextvars.Context()),
            ]
            self.channel = channel

    async def stop(self) -> None:
        """Cancel everything this worker runs (runs left open are recovered as ``worker_lost``)."""
        tasks = [*self._background, *self._drains.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._background, self._drains, self.channel = [], {}, ""

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until this worker has no drain running (for tests and benchmarks)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while any(not task.done() for task in self._drains.values()):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("agent runs still active")
            await asyncio.sleep(0.01)

    # --- entry points ----------------------------------------------------------------

    async def on_user_message(self, session_id: int, message_id: int) -> int | None:
        try:
            await self.start()
            run_id, _created = await database_sync_to_async(runs.create_run)(session_id, message_id)
        except Exception:
            # The message is stored and confirmed already: never fail the send for this.
            # Resending the message id creates the run.
            logger.exception("could not queue the agent's answer to message %s", message_id)
            return None
        if run_id is not None:
            self.kick(session_id)
        return run_id

    async def cancel(self, session_id: int, message_key: str, user: Any, moderates: bool) -> runs.CancelRequest:
        await self.start()
        request = await database_sync_to_async(runs.request_cancel)(session_id, message_key, user, moderates)
        if request.status == "cancelled":
            # It had not started: nobody else will say so.
            await self._announce_final(request.ticket, 0, cancelled=True)
            self.kick(session_id)
        elif request.worker_id == self.worker_id and request.ticket.run_id in self._active:
            self._cancel_local(request.ticket.run_id)
        elif request.worker_channel:
            try:
                await self.layer.send(request.worker_channel, {"type": CANCEL_MESSAGE, "run": request.ticket.run_id})
            except ChannelFull:
                metrics.messages_dropped("channel_full", 1)
                logger.warning(
                    "the channel of agent run %s's worker is full; it will see the flag", request.ticket.run_id
                )
            except Exception:
                # The worker's lease renewal reads the flag too: it stops within a third of a lease.
                logger.warning(
                    "could not reach the worker of agent run %s; it will see the flag", request.ticket.run_id
                )
        return request

    async def regenerate(
        self, session_id: int, reply_key: str, request_key: str, user: Any, moderates: bool
    ) -> regenerations.Regeneration:
        await self.start()
        request = await database_sync_to_async(regenerations.request_regeneration)(
            session_id, reply_key, request_key, user, moderates
        )
        if request.created:
            self.kick(session_id)
        return request

    async def catch_up(self, session_id: int, socket_id: str) -> None:
        """Send the socket, which just joined the session's room, each running reply's text so far."""
        await self.start()
        try:
            streaming = await database_sync_to_async(runs.streaming_runs)(session_id)
        except Exception:
            # The join stands: the joiner shows a running reply from its next chunks on, whole once stored.
            logger.exception("could not look up the running replies of session %s for a catch-up", session_id)
            return
        for run in streaming:
            if run.worker_id == self.worker_id:
                await self._send_catch_up(run.run_id, socket_id)
            elif run.worker_channel:
                try:
                    await self.layer.send(
                        run.worker_channel, {"type": CATCH_UP_MESSAGE, "run": run.run_id, "socket": socket_id}
                    )
                except Exception:
                    # The joiner then shows the reply from its next chunks on and gets it whole when it is stored.
                    logger.warning("could not reach the worker of agent run %s for a catch-up", run.run_id)

    async def _send_catch_up(self, run_id: int, socket_id: str) -> None:
        active = self._active.get(run_id)
        if active is None or active.lost or not active.reply.items:
            return  # not ours, over, or nothing said yet: every chunk it has still to send reaches the socket live
        # Text, steps and index are read together, with no await in between: the next event this worker sends is
        # index + 1 (text, tool-call and reasoning events share the index).
        reply = active.reply
        text, index, so_far = reply.content, len(reply.items) - 1, reply.steps()
        shape = chunk_shape(active.ticket, text, complete=False, index=index, catchUp=True, steps=so_far)
        await notify.to_socket(socket_id, event_names.AGENT_STREAM_CHUNK, shape)

    def kick(self, session_id: int) -> None:
        """Make sure this worker works through the session's queue (now, or right after its current pass)."""
        task = self._drains.get(session_id)
        if task is not None and not task.done():
            self._kicked.add(session_id)
            return
        self._drains[session_id] = asyncio.get_running_loop().create_task(
            self._drain(session_id), name=f"agent-drain-{session_id}", context=contextvars.Context()
        )

    # --- the queue -------------------------------------------------------------------

    async def _drain(self, session_id: int) -> None:
        lease_s = settings.CHAT.agent_lease_s
        assert self._slots is not None
        try:
            while True:
                self._kicked.discard(session_id)
                async with self._slots:
                    claim = await database_sync_to_async(runs.claim_next)(
                        session_id, self.worker_id, self.channel, lease_s
                    )
                    refusal = self._over_cap(claim.ticket) if claim.kind == runs.ClaimKind.RUN else None
                    if claim.kind == runs.ClaimKind.RUN and refusal is None:
                        await self._execute(claim.ticket)
                        continue
                if refusal is not None:
                    await self._finish(claim.ticket, refusal, ActiveRun(claim.ticket), 0)
                    continue
                if claim.kind == runs.ClaimKind.LOST:
                    await self._finish(claim.ticket, Outcome(AgentRunStatus.FAILED, "worker_lost"), None, 0)
                    continue
                if claim.kind == runs.ClaimKind.CANCELLED:
                    await self._announce_final(claim.ticket, 0, cancelled=True)
                    continue
                if claim.kind == runs.ClaimKind.WAIT:
                    await asyncio.sleep(WAIT_RETRY_S)
                    continue
                if session_id in self._kicked:
                    continue
                return
        except asyncio.CancelledError:
            raise
        except Exception:
            # The sweep finds the session again if runs are left in it.
            logger.exception("agent queue of session %s failed", session_id)
        finally:
            if self._drains.get(session_id) is asyncio.current_task():
                del self._drains[session_id]

    async def _sweep(self) -> None:
        lease_s = settings.CHAT.agent_lease_s
        while True:
            await asyncio.sleep(lease_s / 2 * random.uniform(0.8, 1.2))
            try:
                for session_id in await database_sync_to_async(runs.sessions_needing_attention)():
                    self.kick(session_id)
            except Exception:
                logger.exception("agent sweep failed; retrying next round")

    async def _listen(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if isinstance(error, TimeoutError) or type(error).__name__ == "TimeoutError":
                    continue  # an idle blocking read timed out (redis-py's socket timeout): read again
                logger.exception("agent cancel listener failed; retrying")
                await asyncio.sleep(0.5)
                continue
            if (
                isinstance(message, dict)
                and message.get("type") == CANCEL_MESSAGE
                and isinstance(message.get("run"), int)
            ):
                self._cancel_local(message["run"])
            elif (
                isinstance(message, dict)
                and message.get("type") == CATCH_UP_MESSAGE
                and isinstance(message.get("run"), int)
                and isinstance(message.get("socket"), str)
            ):
                try:
                    await self._send_catch_up(message["run"], message["socket"])
                except Exception:
                    logger.exception("could not send the catch-up of agent run %s", message["run"])

    def _cancel_local(self, run_id: int) -> None:
        active = self._active.get(run_id)
        if active is None:
            self._early_cancels.add(run_id)
            return
        active.cancel_requested = True
        if active.stream_task is not None:
            active.stream_task.cancel()

    # --- executing -------------------------------------------------------------------

    def _over_cap(self, ticket: runs.RunTicket) -> Outcome | None:
        """A failed outcome when the run's user or workspace already has its share of this worker's runs."""
        over_user = (
            ticket.sender_id is not None and self._by_user[ticket.sender_id] >= settings.CHAT.agent_runs_per_user
        )
        over_workspace = self._by_workspace[ticket.workspace_slug] >= settings.CHAT.agent_runs_per_workspace
        return Outcome(AgentRunStatus.FAILED, RUN_LIMIT_ERROR) if over_user or over_workspace else None

    async def _execute(self, ticket: runs.RunTicket) -> None:
        self._by_user[ticket.sender_id] += 1
        self._by_workspace[ticket.workspace_slug] += 1
        try:
            await self._execute_run(ticket)
        finally:
            for counter, key in ((self._by_user, ticket.sender_id), (self._by_workspace, ticket.workspace_slug)):
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]

    async def _execute_run(self, ticket: runs.RunTicket) -> None:
        active = ActiveRun(ticket, timer=run_timer(ticket.backend))
        self._active[ticket.run_id] = active
        renewal = asyncio.get_running_loop().create_task(self._renew(active), name=f"agent-lease-{ticket.run_id}")
        saving = asyncio.get_running_loop().create_task(self._save_stream(active), name=f"agent-stream-{ticket.run_id}")
        outcome: Outcome | None = None
        try:
            await self._set_typing(active, True)
            active.stream_task = asyncio.get_running_loop().create_task(self._stream(active))
            if ticket.run_id in self._early_cancels:
                self._early_cancels.discard(ticket.run_id)
                self._cancel_local(ticket.run_id)
            try:
                outcome = await asyncio.shield(active.stream_task)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    active.stream_task.cancel()  # this worker is stopping
                    raise
                # The stream was cancelled before it could say so itself.
                outcome = Outcome(AgentRunStatus.CANCELLED)
            if outcome.status == AgentRunStatus.COMPLETED and not active.content.strip():
                outcome = Outcome(AgentRunStatus.FAILED, "empty_reply")
            if not active.lost:
                # A tool call still open ends with the reply: completed with it, failed with a failure.
                ended = steps.COMPLETED if outcome.status == AgentRunStatus.COMPLETED else steps.FAILED
                closing = active.reply.close_open(ended)
                first = len(active.reply.items) - len(closing)
                try:
                    for offset, event in enumerate(closing):
                        await self._relay_step(ticket, event, first + offset)
                except Exception:
                    # The reply is still stored with them ended; clients see it so in the stored message.
                    logger.exception("could not relay the end of agent run %s's tool calls", ticket.run_id)
        finally:
            renewal.cancel()
            saving.cancel()
            self._active.pop(ticket.run_id, None)
            # Metrics: cancelled and completed runs are not errors.
            active.timer.finished(
                (runs.client_error_code(outcome.error) if outcome.error else None)
                if outcome is not None
                else "worker_stopped"
            )
        if active.lost:
            logger.warning("agent run %s was taken over while running; its result is dropped", ticket.run_id)
            return
        await self._set_typing(active, False)
        await self._finish(ticket, outcome, active, len(active.reply.items))

    async def _stream(self, active: ActiveRun) -> Outcome:
        ticket, reply = active.ticket, active.reply
        try:
            async with asyncio.timeout(run_timeout_s(ticket.config)):
                if ticket.agent_id is None:
                    raise BackendError("The agent no longer exists.", code="agent_missing")
                context = await self._context(active)
                stream = make_backend(ticket.backend, ticket.config).stream(context)
                try:
                    async for item in stream:
                        first = not reply.items
                        relayed = reply.add(item)
                        if relayed is not None:
                            if first:
                                active.timer.first_chunk()
                            kind, payload = relayed
                            index = len(reply.items) - 1
                            if kind == "text":
                                await notify.to_session(
                                    ticket.workspace_slug,
                                    ticket.session_key,
                                    event_names.AGENT_STREAM_CHUNK,
                                    chunk_shape(ticket, payload, complete=False, index=index),
                                )
                            else:
                                await self._relay_step(ticket, payload, index)
                        if reply.truncated:
                            return Outcome(AgentRunStatus.COMPLETED, truncated=True)
                finally:
                    await stream.aclose()
            return Outcome(AgentRunStatus.COMPLETED)
        except asyncio.CancelledError:
            if active.cancel_requested and not active.lost:
                return Outcome(AgentRunStatus.CANCELLED)
            raise
        except TimeoutError:
            return Outcome(AgentRunStatus.TIMED_OUT, "timeout")
        except BackendError as error:
            logger.warning(
                "agent run %s failed: %s (%s)",
                ticket.run_id,
                error.code,
                redact(error.message, secret_values(ticket.config)),
            )
            return Outcome(AgentRunStatus.FAILED, error.code)
        except Exception as error:
            detail = redact(f"{type(error).__name__}: {error}", secret_values(ticket.config))
            logger.error("agent run %s failed unexpectedly: %s", ticket.run_id, detail)
            return Outcome(AgentRunStatus.FAILED, "backend_error")

    async def _relay_step(self, ticket: runs.RunTicket, event: dict[str, Any], index: int) -> None:
        name, shape = step_event(ticket, event, index)
        await notify.to_session(ticket.workspace_slug, ticket.session_key, name, shape)

    async def _context(self, active: ActiveRun) -> AgentContext:
        ticket = active.ticket
        message, history, state = await database_sync_to_async(runs.load_context)(ticket)

        async def save_state(new_state: dict[str, Any]) -> None:
            await database_sync_to_async(runs.save_state)(ticket.session_id, ticket.agent_id, dict(new_state))

        async def report_status(status: str) -> None:
            if status in ("typing", "processing"):
                await self._set_typing(active, True)
            elif status == "ready":
                await self._set_typing(active, False)

        return AgentContext(
            session_id=ticket.session_id,
            session_key=ticket.session_key,
            workspace_slug=ticket.workspace_slug,
            agent_key=ticket.agent_key,
            agent_name=ticket.agent_name,
            config=dict(ticket.config),
            message=message,
            history=history,
            state=state,
            save_state=save_state,
            report_status=report_status,
        )

    async def _set_typing(self, active: ActiveRun, is_typing: bool) -> None:
        if active.typing == is_typing:
            return
        active.typing = is_typing
        ticket = active.ticket
        await notify.to_session(
            ticket.workspace_slug,
            ticket.session_key,
            event_names.TYPING_INDICATOR,
            agent_typing_shape(ticket, is_typing),
        )

    async def _save_stream(self, active: ActiveRun) -> None:
        """Save the chunks streamed so far, when there are new ones, until the run ends or is no longer ours."""
        interval = settings.CHAT.agent_stream_save_ms / 1000
        run_id = active.ticket.run_id
        while True:
            await asyncio.sleep(interval)
            count = len(active.reply.items)
            if count == active.saved:
                continue
            try:
                held = await database_sync_to_async(runs.save_stream)(
                    run_id, self.worker_id, active.reply.items[:count]
                )
            except Exception:
                logger.exception("could not save the chunks of agent run %s; retrying", run_id)
                continue
            if not held:
                return
            active.saved = count

    async def _renew(self, active: ActiveRun) -> None:
        lease_s = settings.CHAT.agent_lease_s
        while True:
            await asyncio.sleep(lease_s / 3)
            try:
                lease = await database_sync_to_async(runs.renew_lease)(active.ticket.run_id, self.worker_id, lease_s)
            except Exception:
                logger.exception("could not renew the lease of agent run %s", active.ticket.run_id)
                continue
            if not lease.held:
                active.lost = True
                if active.stream_task is not None:
                    active.stream_task.cancel()
                return
            if lease.cancel_requested and not active.cancel_requested:
                self._cancel_local(active.ticket.run_id)

    # --- finishing -------------------------------------------------------------------

    async def _finish(self, ticket: runs.RunTicket, outcome: Outcome, active: ActiveRun | None, chunks: int) -> None:
        """Store the result, then tell the session: final chunk, then the stored message."""
        content = active.content if active else ""
        if active is None:
            # Its worker died mid-run: the session may still show the agent typing.
            await notify.to_session(
                ticket.workspace_slug,
                ticket.session_key,
                event_names.TYPING_INDICATOR,
                agent_typing_shape(ticket, False),
            )
        worker_id = self.worker_id if active is not None else None
        by = ""
        if outcome.status == AgentRunStatus.CANCELLED:
            by = await database_sync_to_async(runs.cancelled_by)(ticket.run_id)
        try:
            finished = await database_sync_to_async(runs.finish_run)(
                ticket,
                outcome.status,
                worker_id=worker_id,
                content=content,
                error=outcome.error,
                chunks=chunks,
                truncated=outcome.truncated,
                cancelled_by=by,
                stream=list(active.reply.items) if active is not None else None,
                steps=steps.for_metadata(active.reply.steps()) if active is not None else None,
            )
        except ChatError as error:
            # Storing failed (session closed, database down): close the run and say so.
            logger.warning("agent run %s could not be stored: %s", ticket.run_id, error.code)
            if worker_id is not None:
                await database_sync_to_async(runs.fail_run)(ticket, worker_id, error.code)
            await self._announce_final(ticket, chunks, error={"code": error.code, "message": error.message})
            return
        if not finished.held:
            return
        extra: dict[str, Any] = {}
        if outcome.status in (AgentRunStatus.FAILED, AgentRunStatus.TIMED_OUT):
            # Clients get a stable code and a fixed sentence for it; the details went to the log.
            code = runs.client_error_code(outcome.error)
            extra["error"] = {"code": code, "message": runs.failure_text(ticket.agent_name, code)}
        elif outcome.status == AgentRunStatus.CANCELLED:
            extra["cancelled"] = True
        if outcome.truncated:
            extra["truncated"] = True
        if finished.seq is not None and outcome.status in (AgentRunStatus.COMPLETED, AgentRunStatus.CANCELLED):
            extra["seq"] = finished.seq
        await self._announce_final(ticket, chunks, **extra)
        if finished.version is not None and finished.shape is not None:
            # A regeneration: the reply's new version replaces the text clients show.
            updated = {
                "sessionId": ticket.session_key,
                "workspaceId": ticket.workspace_slug,
                "messageId": ticket.reply_key,
                "seq": finished.seq,
                "version": finished.version,
                "message": finished.shape,
            }
            await notify.to_session(ticket.workspace_slug, ticket.session_key, event_names.MESSAGE_UPDATED, updated)
        elif finished.shape is not None:
            await notify.to_session(
                ticket.workspace_slug,
                ticket.session_key,
                event_names.MESSAGE_RECEIVED,
                finished.shape,
                seq=finished.seq,
            )

    async def _announce_final(self, ticket: runs.RunTicket, index: int, **extra: Any) -> None:
        await notify.to_session(
            ticket.workspace_slug,
            ticket.session_key,
            event_names.AGENT_STREAM_CHUNK,
            chunk_shape(ticket, "", complete=True, index=index, **extra),
        )


#: This process's runner.
runner = AgentRunner()


async def on_user_message(session_id: int, message_id: int) -> int | None:
    """A user message was stored and broadcast: queue the agent's answer (if the session has an agent).

    Idempotent: call it for resent (duplicate) messages too; a message gets
    one run however often and wherever this is called.  Returns the run's
    id, or ``None`` when nothing answers the message.
    """
    return await runner.on_user_message(session_id, message_id)


async def cancel(session_id: int, message_key: str, user: Any, moderates: bool) -> runs.CancelRequest:
    """Cancel the run answering ``message_key`` (the reply's ``messageId`` or the user message's id)."""
    return await runner.cancel(session_id, message_key, user, moderates)


async def regenerate(
    session_id: int, reply_key: str, request_key: str, user: Any, moderates: bool
) -> regenerations.Regeneration:
    """Run the agent again for the user message ``reply_key`` answers (see :mod:`chat.agents.regenerations`)."""
    return await runner.regenerate(session_id, reply_key, request_key, user, moderates)


async def catch_up(session_id: int, socket_id: str) -> None:
    """A socket joined the session: send it each running reply's text so far (see "Catching up" above)."""
    await runner.catch_up(session_id, socket_id)


async def start() -> None:
    await runner.start()


async def _answer(sender: Any, *, session_id: int, message_id: int, **kwargs: Any) -> None:
    await runner.on_user_message(session_id, message_id)


#: A member's message was posted (``chat.actions.messages``): queue the agent's answer.
message_posted.connect(_answer, dispatch_uid="chat.agents.runner")
