"""The server's own Prometheus metrics and the hooks that feed them.

Every hook is one call of a function here, placed in the transport,
protocol and chat layers (``docs/monitoring.md`` lists where).  Each hook
updates two things at once:

- the Prometheus metrics below (cumulative, exported at ``/metrics``, summed
  over worker processes in multiprocess mode), and
- :data:`local`, this process's bounded rolling windows, from which
  :mod:`monitoring.service` computes rates, percentiles, health and
  recommendations.

Hooks run on the hot path (one broadcast to a room calls
:func:`broadcast_delivered` once per worker), so they only do dictionary
lookups, additions and appends: labelled children are bound once and cached,
nothing here takes a lock of its own (``prometheus_client`` takes an
uncontended one inside ``inc``/``observe``), and nothing does I/O.

Label values are bounded.  Event names come from clients, so only the
events of the chat protocol (:data:`CLIENT_EVENTS`, :data:`SERVER_EVENTS`)
get their own value and everything else is ``other``.  Values that come
from our own code (error codes, rate-limit operations, security event
types, agent backends) are accepted when they look like identifiers, up to
:data:`MAX_CODE_VALUES` distinct values per metric, then ``other``.
Workspaces are ``other`` unless listed in ``CHAT_METRICS_WORKSPACES``.
Never a session, user, socket or message id.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import time
import weakref
from typing import Any, Awaitable, Iterable, Iterator, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from monitoring.windows import RateCounter, SampleWindow

T = TypeVar("T")

_now = time.monotonic
_current_task = asyncio.current_task

#: Distinct values a code-derived label may take before the rest become ``other``.
MAX_CODE_VALUES = 48
OTHER = "other"
_CODE = re.compile(r"[a-z][a-z0-9_.:-]{0,47}")

TRANSPORTS = ("polling", "websocket")

#: Events clients send (``docs/protocol.md``); anything else is counted as ``other``.
CLIENT_EVENTS = frozenset(
    {
        "chat:join-session",
        "chat:leave-session",
        "chat:send-message",
        "chat:typing",
        "chat:update-presence",
        "chat:request-history",
        "chat:add-reaction",
        "chat:remove-reaction",
        "chat:mark-read",
        "chat:cancel-agent",
        "chat:regenerate",
        "chat:rate-message",
        "chat:edit-message",
        "chat:delete-message",
        "chat:hide-message",
        "chat:unhide-message",
        "chat:ban-user",
        "chat:close-session",
    }
)
#: Events the server sends; server code may add others (see :data:`MAX_CODE_VALUES`).
SERVER_EVENTS = frozenset(
    {
        "chat:join-session-success",
        "chat:message-received",
        "chat:message-sent",
        "chat:typing-indicator",
        "chat:presence-updated",
        "chat:user-joined",
        "chat:user-left",
        "chat:agent-stream-chunk",
        "chat:agent-tool-call",
        "chat:agent-reasoning",
        "chat:history-response",
        "chat:reactions-updated",
        "chat:read-updated",
        "chat:message-hidden",
        "chat:message-unhidden",
        "chat:message-updated",
        "chat:message-deleted",
        "chat:session-updated",
        "chat:session-closed",
        "chat:session-left",
        "chat:banned",
        *(f"{event}-error" for event in CLIENT_EVENTS),
    }
)
#: Engine.IO close reasons (``channels_socketio.transport.session.CloseReason``) as label values.
CLOSE_REASONS = {
    "transport close": "transport_close",
    "transport error": "transport_error",
    "ping timeout": "ping_timeout",
    "parse error": "parse_error",
    "forced close": "forced_close",
    "slow client": "slow_client",
    "server shutting down": "server_shutdown",
}

# --- Prometheus metrics ---------------------------------------------------------------------

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BYTES = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536, 262144, 1048576)
_DURATION = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400)
_FANOUT = (0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000)
_AGENT = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

CONNECTIONS_ACTIVE = Gauge(
    "chat_connections_active",
    "Open Engine.IO connections, by current transport.",
    ["transport"],
    multiprocess_mode="livesum",
)
CONNECTIONS_OPENED = Counter(
    "chat_connections_opened", "Engine.IO connections opened, by the transport they opened on.", ["transport"]
)
CONNECTIONS_CLOSED = Counter(
    "chat_connections_closed", "Engine.IO connections closed, by final transport and reason.", ["transport", "reason"]
)
CONNECTION_UPGRADES = Counter("chat_connection_upgrades", "Polling connections upgraded to WebSocket.")
CONNECTION_ERRORS = Counter(
    "chat_connection_errors", "Refused or failed Engine.IO requests and Socket.IO connects, by error code.", ["reason"]
)
CONNECTION_DURATION = Histogram(
    "chat_connection_duration_seconds",
    "How long connections stayed open, by final transport.",
    ["transport"],
    buckets=_DURATION,
)

SESSIONS_ACTIVE = Gauge(
    "chat_sessions_active",
    "Chat sessions with at least one member on this worker (summed over workers).",
    ["workspace"],
    multiprocess_mode="livesum",
)
SESSION_MEMBERS_ACTIVE = Gauge(
    "chat_session_members_active", "Sockets joined to chat sessions.", ["workspace"], multiprocess_mode="livesum"
)
SESSION_JOINS = Counter("chat_session_joins", "Sockets that joined a chat session.", ["workspace"])
SESSION_LEAVES = Counter(
    "chat_session_leaves", "Sockets that left a chat session (leave or disconnect).", ["workspace"]
)

MESSAGES_RECEIVED = Counter("chat_messages_received", "Socket.IO events received from clients.", ["event"])
MESSAGES_DELIVERED = Counter(
    "chat_messages_delivered", "Socket.IO events written to client sockets (each recipient counts).", ["event"]
)
MESSAGE_SIZE = Histogram(
    "chat_message_size_bytes", "Size of received events (the frame that completed the packet).", buckets=_BYTES
)
PROCESSING_TIME = Histogram(
    "chat_message_processing_seconds",
    "From receiving an event to its handler's first broadcast being accepted by the channel layer.",
    buckets=_SECONDS,
)
BROADCASTS = Counter("chat_broadcasts", "Broadcasts sent to rooms through the channel layer.")
FANOUT = Histogram(
    "chat_broadcast_fanout", "Local recipients of one broadcast on the worker that delivered it.", buckets=_FANOUT
)
EVENT_ERRORS = Counter(
    "chat_event_errors",
    "Event handlers that failed: kind=client (a ChatError answered to the client) or internal (a bug).",
    ["event", "kind"],
)

LAYER_SEND = Histogram(
    "chat_channel_layer_send_seconds", "Latency of channel-layer sends, by kind.", ["kind"], buckets=_SECONDS
)
LAYER_ERRORS = Counter("chat_channel_layer_send_errors", "Channel-layer sends that raised.", ["kind"])
MESSAGES_DROPPED = Counter(
    "chat_messages_dropped",
    "Messages lost on their way to clients or other workers, by where (slow_client, broker_overflow,"
    " broker_publish, unrouted, delivery_error, channel_full).",
    ["where"],
)
SLOW_CLIENTS = Counter(
    "chat_slow_clients_disconnected", "Clients disconnected for leaving too much unread, by transport.", ["transport"]
)

RATE_LIMITED = Counter("chat_rate_limit_hits", "Operations refused by a rate limit.", ["operation"])
SECURITY_EVENTS = Counter("chat_security_events", "Security events recorded, by type.", ["type"])
SUSPICIOUS_CONTENT = Counter(
    "chat_suspicious_content",
    "Messages a formerly blocking rule flagged, by reason and outcome (accepted under standard, blocked under strict).",
    ["reason", "outcome"],
)

AGENT_RUNS = Counter("chat_agent_runs", "Agent runs started.", ["backend"])
AGENT_RUNS_ACTIVE = Gauge("chat_agent_runs_active", "Agent runs in progress.", multiprocess_mode="livesum")
AGENT_DURATION = Histogram(
    "chat_agent_run_duration_seconds", "Agent run duration, start to finish.", ["backend"], buckets=_AGENT
)
AGENT_FIRST_CHUNK = Histogram(
    "chat_agent_time_to_first_chunk_seconds",
    "From an agent run's start to its first chunk.",
    ["backend"],
    buckets=_AGENT,
)
AGENT_ERRORS = Counter(
    "chat_agent_run_errors", "Agent runs that ended in an error, by error code.", ["backend", "error"]
)
AGENT_FEEDBACK = Counter(
    "chat_agent_feedback",
    "Ratings of agent replies given or changed, by agent key and rating (up, down, cleared).",
    ["agent", "rating"],
)

LOOP_DELAY = Histogram(
    "chat_event_loop_delay_seconds", "How late the event-loop probe woke up (its overshoot).", buckets=_SECONDS
)
LOOP_DELAY_MAX = Gauge(
    "chat_event_loop_delay_max_seconds",
    "Largest event-loop delay within the health window.",
    multiprocess_mode="livemax",
)
MEMORY = Gauge("chat_process_resident_memory_bytes", "Resident memory of the worker.", multiprocess_mode="liveall")
CPU_SECONDS = Counter("chat_process_cpu_seconds", "CPU time used by the worker processes.")
CPU_RATIO = Gauge(
    "chat_process_cpu_ratio", "CPU used over the last probe interval, in cores.", multiprocess_mode="liveall"
)
BUFFER_ITEMS = Gauge(
    "chat_buffer_items", "Items held in bounded in-memory buffers, by buffer.", ["buffer"], multiprocess_mode="livesum"
)
BUFFER_BYTES = Gauge(
    "chat_buffer_bytes", "Bytes held in bounded in-memory buffers, by buffer.", ["buffer"], multiprocess_mode="livesum"
)
HOUSEKEEPING_RUNS = Counter("chat_housekeeping_runs", "Housekeeping rounds, by outcome.", ["outcome"])
HOUSEKEEPING_PURGED = Counter("chat_housekeeping_purged", "Expired state purged by housekeeping, by kind.", ["kind"])
HOUSEKEEPING_LAST = Gauge(
    "chat_housekeeping_last_run_timestamp_seconds",
    "Unix time of the last successful housekeeping round.",
    multiprocess_mode="livemax",
)
DEPENDENCY_UP = Gauge(
    "chat_dependency_up",
    "Whether the last check reached a dependency (1) or not (0).",
    ["dependency"],
    multiprocess_mode="livemin",
)
HEALTH_SCORE = Gauge("chat_health_score", "Health score 0-100 (the worst worker's).", multiprocess_mode="livemin")
READINESS_CHECKS = Counter("chat_readiness_checks", "Readiness checks answered, by result.", ["result"])


# --- bounded label children -----------------------------------------------------------------


class _Children:
    """A metric's labelled children, bound once and cached; unknown values map to ``other``."""

    __slots__ = ("metric", "children", "open", "other")

    def __init__(self, metric: Any, known: Iterable[str] = (), *, open_values: bool = False) -> None:
        self.metric = metric
        self.children = {value: metric.labels(value) for value in known}
        self.open = open_values
        self.other = metric.labels(OTHER)

    def get(self, value: Any) -> Any:
        # isinstance, not type(): TextChoices members (SecurityEventType...) are str subclasses.
        child = self.children.get(value) if isinstance(value, str) else self.other
        if child is None:
            child = self.other
            if self.open and len(self.children) < MAX_CODE_VALUES and _CODE.fullmatch(value):
                value = str(value)
                child = self.children[value] = self.metric.labels(value)
        return child


class _Pairs:
    """Children of a two-label metric whose first label is already bounded."""

    __slots__ = ("metric", "children", "second")

    def __init__(self, metric: Any, second: dict[Any, str]) -> None:
        self.metric = metric
        self.children: dict[tuple[str, str], Any] = {}
        self.second = second

    def get(self, first: str, second: Any) -> Any:
        key = (first, self.second.get(second, OTHER) if isinstance(second, str) else OTHER)
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = self.metric.labels(*key)
        return child


def _code_label(value: Any) -> str:
    return str(value) if isinstance(value, str) and _CODE.fullmatch(value) else OTHER


_active = _Children(CONNECTIONS_ACTIVE, TRANSPORTS)
_opened = _Children(CONNECTIONS_OPENED, TRANSPORTS)
_duration = _Children(CONNECTION_DURATION, TRANSPORTS)
_closed = _Pairs(CONNECTIONS_CLOSED, CLOSE_REASONS)
_conn_errors = _Children(CONNECTION_ERRORS, open_values=True)
_received = _Children(MESSAGES_RECEIVED, CLIENT_EVENTS)
_delivered = _Children(MESSAGES_DELIVERED, SERVER_EVENTS, open_values=True)
_layer_send = _Children(LAYER_SEND, ("broadcast", "control", "relay"))
_layer_errors = _Children(LAYER_ERRORS, ("broadcast", "control", "relay"))
_rate_limited = _Children(RATE_LIMITED, open_values=True)
_security = _Children(SECURITY_EVENTS, open_values=True)
_slow_clients = _Children(SLOW_CLIENTS, TRANSPORTS)
_dropped = _Children(
    MESSAGES_DROPPED, ("slow_client", "broker_overflow", "broker_publish", "unrouted", "delivery_error", "channel_full", "announce")
)
_suspicious: dict[tuple[str, str], Any] = {}
_agent_runs = _Children(AGENT_RUNS, open_values=True)
_agent_duration = _Children(AGENT_DURATION, open_values=True)
_agent_first_chunk = _Children(AGENT_FIRST_CHUNK, open_values=True)
_housekeeping_runs = _Children(HOUSEKEEPING_RUNS, ("ok", "failed"))
_purged = _Children(HOUSEKEEPING_PURGED, open_values=True)
_event_errors: dict[tuple[str, str], Any] = {}
_agent_errors: dict[tuple[str, str], Any] = {}
_agent_feedback: dict[tuple[str, str], Any] = {}
_workspace_children: dict[str, tuple[Any, Any, Any, Any]] = {}
_workspaces: frozenset[str] | None = None


def _pair(cache: dict[tuple[str, str], Any], metric: Any, first: str, second: str) -> Any:
    key = (first, second)
    child = cache.get(key)
    if child is None:
        if len(cache) >= MAX_CODE_VALUES * 2:
            key = (first, OTHER)
            child = cache.get(key)
            if child is not None:
                return child
        child = cache[key] = metric.labels(*key)
    return child


def _workspace(slug: str) -> tuple[str, tuple[Any, Any, Any, Any]]:
    global _workspaces
    if _workspaces is None:
        from monitoring import conf

        _workspaces = frozenset(conf.get().metrics_workspaces)
    label = slug if slug in _workspaces else OTHER
    children = _workspace_children.get(label)
    if children is None:
        children = _workspace_children[label] = (
            SESSIONS_ACTIVE.labels(label),
            SESSION_MEMBERS_ACTIVE.labels(label),
            SESSION_JOINS.labels(label),
            SESSION_LEAVES.labels(label),
        )
    return label, children


# --- this process's rolling windows ---------------------------------------------------------


class LocalState:
    """What this worker measured recently: the input of :mod:`monitoring.service`."""

    def __init__(self, seconds: int = 3600) -> None:
        self.started = _now()
        self.active = {transport: 0 for transport in TRANSPORTS}
        self.rates = {
            name: RateCounter(seconds)
            for name in (
                "received",
                "delivered",
                "broadcasts",
                "opened",
                "closed",
                "connection_errors",
                "layer_errors",
                "dropped",
                "slow_clients",
                "internal_errors",
                "client_errors",
                "rate_limited",
                "security_events",
                "agent_runs",
                "agent_errors",
                "joins",
                "leaves",
            )
        }
        self.samples = {
            name: SampleWindow()
            for name in (
                "message_size",
                "processing",
                "layer_send",
                "loop_delay",
                "connection_duration",
                "fanout",
                "agent_duration",
                "agent_first_chunk",
            )
        }
        #: (socket id, workspace, session key) -> workspace label, for joins not yet left.
        self.joined: dict[tuple[str, str, str], str] = {}
        #: (workspace, session key) -> local members.
        self.session_members: dict[tuple[str, str], int] = {}
        self.agent_runs_active = 0
        self.process: dict[str, float] = {}
        self.buffers: dict[str, dict[str, int]] = {}
        self.housekeeping: dict[str, Any] = {"runs": 0, "failures": 0, "last_run": None, "purged": {}}
        #: Messages dropped since this worker started, by where (:func:`messages_dropped`).
        self.dropped: dict[str, int] = {}


local = LocalState()


def reset_local_state() -> None:
    """Forget the rolling windows (tests); Prometheus counters are cumulative and stay."""
    global local
    local = LocalState()


# --- transport hooks ------------------------------------------------------------------------


def connection_opened(transport: str) -> float:
    """A new Engine.IO session; returns its start time for :func:`connection_closed`."""
    now = _now()
    _active.get(transport).inc()
    _opened.get(transport).inc()
    state = local
    if transport in state.active:
        state.active[transport] += 1
    state.rates["opened"].add(now)
    return now


def connection_upgraded() -> None:
    """A polling session moved onto its WebSocket."""
    _active.get("polling").dec()
    _active.get("websocket").inc()
    CONNECTION_UPGRADES.inc()
    active = local.active
    active["polling"] -= 1
    active["websocket"] += 1


def connection_closed(transport: str, reason: str, opened_at: float) -> None:
    """A session closed (exactly once per session), on its final transport."""
    now = _now()
    duration = max(0.0, now - opened_at)
    _active.get(transport).dec()
    _closed.get(transport if transport in TRANSPORTS else OTHER, reason).inc()
    _duration.get(transport).observe(duration)
    state = local
    if transport in state.active:
        state.active[transport] -= 1
    state.rates["closed"].add(now)
    state.samples["connection_duration"].add(now, duration)


def connection_error(reason: str) -> None:
    """A refused request or connect, or a protocol error, by its error code."""
    _conn_errors.get(reason).inc()
    local.rates["connection_errors"].add(_now())


def slow_client_disconnected(transport: str) -> None:
    """A client left more unread than the engine's bounds allow (``CHAT_MAX_BUFFERED_*``) and is disconnected."""
    _slow_clients.get(transport).inc()
    local.rates["slow_clients"].add(_now())


def messages_dropped(where: str, count: int) -> None:
    """Messages lost on their way to clients or other workers (see ``channels_socketio.observer``)."""
    if count <= 0:
        return
    _dropped.get(where).inc(count)
    state = local
    state.rates["dropped"].add(_now(), count)
    state.dropped[where] = state.dropped.get(where, 0) + count


# --- protocol hooks -------------------------------------------------------------------------

#: [receipt time, weak reference to the handler task] of the event being
#: handled in this context.  Weak: the task's own context holds this list,
#: and a strong reference made a reference cycle of every event (task,
#: context, list), which the collector then had to find, in pauses of up to
#: 30 ms under load.
_receipt: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("chat_metrics_receipt", default=None)


def message_received(event: Any, size: int) -> None:
    """An event arrived from a client (call it before spawning its handler)."""
    now = _now()
    _received.get(event).inc()
    MESSAGE_SIZE.observe(size)
    state = local
    state.rates["received"].add(now)
    state.samples["message_size"].add(now, size)
    _receipt.set([now, None])


def current_receipt() -> list[Any] | None:
    """The receipt of the event being handled, to hand to :func:`processing_measured_here`."""
    return _receipt.get()


@contextlib.contextmanager
def processing_measured_here(receipt: list[Any] | None) -> Iterator[None]:
    """Let the first broadcast made in this block (in another task, such as the
    message writer's) observe the processing time of the event ``receipt`` belongs to."""
    if receipt is None:
        yield
        return
    handler_task = receipt[1]
    receipt[1] = weakref.ref(_current_task())
    token = _receipt.set(receipt)
    try:
        yield
    finally:
        _receipt.reset(token)
        receipt[1] = handler_task


def event_handling() -> None:
    """First thing in an event's handler task: its broadcasts measure processing time."""
    receipt = _receipt.get()
    if receipt is not None and receipt[1] is None:
        try:
            receipt[1] = weakref.ref(_current_task())
        except (RuntimeError, TypeError):  # no task (called outside one)
            pass


def event_failed(event: Any, internal: bool) -> None:
    """An event handler failed: ``internal`` for an unexpected exception, else a ChatError."""
    kind = "internal" if internal else "client"
    label = str(event) if isinstance(event, str) and event in CLIENT_EVENTS else OTHER
    _pair(_event_errors, EVENT_ERRORS, label, kind).inc()
    local.rates["internal_errors" if internal else "client_errors"].add(_now())


async def broadcast(send: Awaitable[T]) -> T:
    """``await metrics.broadcast(layer.group_send(...))``: one broadcast to a room.

    Times the channel-layer send, counts the broadcast, and for the first
    broadcast of an event's handler observes the processing time.
    """
    start = _now()
    try:
        result = await send
    except asyncio.CancelledError:
        raise
    except BaseException:
        _layer_errors.get("broadcast").inc()
        local.rates["layer_errors"].add(_now())
        raise
    end = _now()
    _layer_send.get("broadcast").observe(end - start)
    BROADCASTS.inc()
    state = local
    state.rates["broadcasts"].add(end)
    state.samples["layer_send"].add(end, end - start)
    receipt = _receipt.get()
    if receipt is not None and receipt[0] is not None and receipt[1] is not None:
        if receipt[1]() is _current_task():
            processing = end - receipt[0]
            receipt[0] = None
            PROCESSING_TIME.observe(processing)
            state.samples["processing"].add(end, processing)
    return result


async def layer_send(send: Awaitable[T], kind: str = "control") -> T:
    """``await metrics.layer_send(layer.send(...), kind)``: a channel-layer send that carries no event.

    ``kind`` is ``control`` (room joins, leaves, disconnects) or ``relay``
    (polling requests forwarded between workers, and their replies).
    """
    start = _now()
    try:
        result = await send
    except asyncio.CancelledError:
        raise
    except BaseException:
        _layer_errors.get(kind).inc()
        local.rates["layer_errors"].add(_now())
        raise
    end = _now()
    _layer_send.get(kind).observe(end - start)
    local.samples["layer_send"].add(end, end - start)
    return result


def event_name(frame: Any) -> str:
    """The event name of an encoded EVENT packet (``2["name",...]``, ``2/ns,7["name"...]``)."""
    if type(frame) is not str:
        return OTHER
    start = frame.find('["', 0, 256)
    if start < 0:
        return OTHER
    end = frame.find('"', start + 2, start + 2 + 64)
    return frame[start + 2 : end] if end > 0 else OTHER


def broadcast_delivered(op: str, frames: Any, members: Any, exclude: Any) -> None:
    """A fan-out message reached this worker: its local recipients are ``members`` minus ``exclude``."""
    if op != "emit" or not frames or not members:
        return
    recipients = len(members)
    if exclude:
        recipients -= sum(1 for sid in exclude if sid in members)
    if recipients <= 0:
        return
    now = _now()
    _delivered.get(event_name(frames[0])).inc(recipients)
    FANOUT.observe(recipients)
    state = local
    state.rates["delivered"].add(now, recipients)
    state.samples["fanout"].add(now, recipients)


def message_delivered(event: str) -> None:
    """An event emitted straight to one socket (``Socket.emit``), not through a room."""
    _delivered.get(event).inc()
    local.rates["delivered"].add(_now())


# --- chat hooks ------------------------------------------------------------------------------


def session_joined(socket_id: str, workspace: str, session_key: str) -> None:
    """A socket joined a chat session (idempotent per socket and session)."""
    state = local
    key = (socket_id, workspace, session_key)
    if key in state.joined:
        return
    label, (active, members, joins, _leaves) = _workspace(workspace)
    state.joined[key] = label
    session = (workspace, session_key)
    count = state.session_members.get(session, 0)
    state.session_members[session] = count + 1
    if count == 0:
        active.inc()
    members.inc()
    joins.inc()
    state.rates["joins"].add(_now())


def session_left(socket_id: str, workspace: str, session_key: str) -> None:
    """A socket left a chat session, by leaving or disconnecting (idempotent)."""
    state = local
    if state.joined.pop((socket_id, workspace, session_key), None) is None:
        return
    _label, (active, members, _joins, leaves) = _workspace(workspace)
    session = (workspace, session_key)
    count = state.session_members.get(session, 1) - 1
    if count <= 0:
        state.session_members.pop(session, None)
        active.dec()
    else:
        state.session_members[session] = count
    members.dec()
    leaves.inc()
    state.rates["leaves"].add(_now())


def rate_limit_checked(operation: str, allowed: bool) -> None:
    """After a rate-limit decision; only refusals are counted."""
    if not allowed:
        _rate_limited.get(operation).inc()
        local.rates["rate_limited"].add(_now())


def security_event(type: str) -> None:  # noqa: A002 - the name of the field it mirrors
    """A security event was recorded (``security.models.SecurityEventType``)."""
    _security.get(type).inc()
    local.rates["security_events"].add(_now())


def suspicious_content(reason: str, outcome: str) -> None:
    """A message looked like an attack (``security.content.find_hostile``): every one counts, unlike its event."""
    _pair(_suspicious, SUSPICIOUS_CONTENT, _code_label(reason), _code_label(outcome)).inc()


class AgentRunTimer:
    """``run = metrics.agent_run(backend)``; then ``run.first_chunk()`` and ``run.finished(error)``."""

    __slots__ = ("backend", "started", "first", "done")

    def __init__(self, backend: str) -> None:
        self.backend = _code_label(backend)
        self.started = _now()
        self.first = False
        self.done = False
        _agent_runs.get(self.backend).inc()
        AGENT_RUNS_ACTIVE.inc()
        local.agent_runs_active += 1
        local.rates["agent_runs"].add(self.started)

    def first_chunk(self) -> None:
        """The run produced its first chunk (later calls do nothing)."""
        if self.first or self.done:
            return
        self.first = True
        now = _now()
        _agent_first_chunk.get(self.backend).observe(now - self.started)
        local.samples["agent_first_chunk"].add(now, now - self.started)

    def finished(self, error: str | None = None) -> None:
        """The run ended; ``error`` is its stable error code (``timeout``...), ``None`` on success."""
        if self.done:
            return
        self.done = True
        now = _now()
        _agent_duration.get(self.backend).observe(now - self.started)
        AGENT_RUNS_ACTIVE.dec()
        state = local
        state.agent_runs_active -= 1
        state.samples["agent_duration"].add(now, now - self.started)
        if error:
            _pair(_agent_errors, AGENT_ERRORS, self.backend, _code_label(error)).inc()
            state.rates["agent_errors"].add(now)


def agent_run(backend: str) -> AgentRunTimer:
    return AgentRunTimer(backend)


FEEDBACK_RATINGS = ("up", "down", "cleared")


def agent_feedback(agent: str, rating: str) -> None:
    """A member rated an agent's reply (or cleared their rating); ``agent`` is the agent's key (operator-chosen)."""
    label = rating if rating in FEEDBACK_RATINGS else OTHER
    _pair(_agent_feedback, AGENT_FEEDBACK, _code_label(agent), label).inc()


def purged(kind: str, count: int) -> None:
    """Housekeeping removed ``count`` expired items of ``kind`` (presence, typing, socket_tokens...)."""
    if count > 0:
        _purged.get(kind).inc(count)
    table = local.housekeeping["purged"]
    label = _code_label(kind)
    table[label] = table.get(label, 0) + max(0, count)


def housekeeping_ran(ok: bool) -> None:
    """One housekeeping round ended, successfully or not."""
    _housekeeping_runs.get("ok" if ok else "failed").inc()
    state = local.housekeeping
    state["runs"] += 1
    if ok:
        wall = time.time()
        HOUSEKEEPING_LAST.set(wall)
        state["last_run"] = wall
    else:
        state["failures"] += 1
