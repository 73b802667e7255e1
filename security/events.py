"""Recording :class:`~security.models.SecurityEvent` rows without ever slowing down or breaking the caller.

Why: security events are raised on the hot path (a blocked message, a
denied hit, a failed login), often *because* someone is attacking, i.e.
exactly when the database may be slow or down.  So :func:`record` only
validates, bounds and enqueues (microseconds, no I/O, never raises), and a
background writer task on the event loop drains the queue with
``bulk_create`` in a thread (``database_sync_to_async``):

- When the database is unavailable (``OperationalError``,
  ``InterfaceError``) or anything unexpected fails, the batch goes back to
  the front of the queue and the writer retries with exponential backoff
  (0.5 s doubling to 30 s, jittered); events keep accumulating in memory
  meanwhile, in order.
- A batch the database rejects for good (``IntegrityError``...: e.g. a
  user deleted in between) is written row by row; a rejected row is retried
  without its user/workspace links, and dropped (logged) only if it still fails.
- The queue is bounded (``CHAT_SECURITY_EVENT_BUFFER``, 10,000 by
  default).  When it is full new events are dropped -- the oldest, which
  show how an incident started, are kept -- and counted in
  :attr:`EventRecorder.dropped`; the first drop of an episode is logged,
  and the total once the queue drains again.
- :func:`flush` writes what is queued (tests, shutdown).  Called from a
  thread with no event loop while no writer runs anywhere (a management
  command), :func:`record` writes synchronously in that thread instead.

Only the client address (``scope["client"]``, i.e. what the ASGI server
says -- run daphne with ``--proxy-headers`` behind a proxy) and the
user agent (control characters removed, truncated) are taken from the
scope.  ``detail`` is bounded (:func:`bound_detail`: 2 KiB of JSON, depth 4,
strings of 200 characters) and anything that looks like a credential or a
message body is redacted, by key name (``token``, ``password``,
``content``, ``message``, ``body``...) and by value shape (``chat_`` API
tokens, ``Bearer``/``Basic`` credentials).

Each event type is logged at most once per minute (with the number
suppressed), so an attacker cannot flood the logs through us.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable, Mapping

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.utils import timezone

from monitoring import metrics
from security.models import TOKEN_PREFIX, SecurityEvent, SecurityEventType
from security.ratelimit import LogThrottle

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
DETAIL_MAX_BYTES = 2048
DETAIL_MAX_DEPTH = 4
DETAIL_MAX_STRING = 200
DETAIL_MAX_ITEMS = 20
USER_AGENT_MAX = 300  # SecurityEvent.user_agent max_length
SESSION_KEY_MAX = 128  # SecurityEvent.session_key max_length
REDACTED = "[redacted]"

#: Keys whose values are never stored (compared lower-cased, without ``-``/``_``).
_SECRET_KEYS = frozenset(
    {
        "token", "accesstoken", "refreshtoken", "apitoken", "apikey", "key", "secret", "password", "passwd",
        "authorization", "auth", "cookie", "cookies", "sessionid", "credentials", "credential",
        "content", "body", "text", "message", "messagebody", "html", "markdown",
    }
)  # fmt: skip
_SECRET_KEY_PARTS = ("token", "secret", "password", "cookie", "authorization", "credential")
#: Values that look like a credential wherever they appear.
_SECRET_VALUE = re.compile(
    rf"{re.escape(TOKEN_PREFIX)}[A-Za-z0-9_\-]{{8,}}|\bBearer\s+\S+|\bBasic\s+[A-Za-z0-9+/=]{{8,}}", re.IGNORECASE
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TRANSIENT = (OperationalError, InterfaceError)


# --- bounding -----------------------------------------------------------------------------


def _is_secret_key(key: str) -> bool:
    normal = key.lower().replace("-", "").replace("_", "")
    return normal in _SECRET_KEYS or any(part in normal for part in _SECRET_KEY_PARTS)


def _bound_value(value: Any, depth: int, max_string: int) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, str):
        text = _SECRET_VALUE.sub(REDACTED, value)
        return text if len(text) <= max_string else text[: max_string - 1] + "…"
    if depth >= DETAIL_MAX_DEPTH:
        return "…"
    if isinstance(value, Mapping):
        bounded: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= DETAIL_MAX_ITEMS:
                bounded["…"] = f"{len(value) - DETAIL_MAX_ITEMS} more"
                break
            name = str(key)[:64]
            bounded[name] = REDACTED if _is_secret_key(name) else _bound_value(item, depth + 1, max_string)
        return bounded
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        bounded_items = [_bound_value(item, depth + 1, max_string) for item in items[:DETAIL_MAX_ITEMS]]
        if len(items) > DETAIL_MAX_ITEMS:
            bounded_items.append(f"… {len(items) - DETAIL_MAX_ITEMS} more")
        return bounded_items
    return _bound_value(repr(value), depth, max_string)


def bound_detail(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """``detail`` made storable: JSON-safe, at most 4 levels and 2 KiB, secrets and bodies redacted."""
    if not detail:
        return {}
    if not isinstance(detail, Mapping):
        detail = {"value": detail}
    max_string = DETAIL_MAX_STRING
    while max_string >= 16:
        bounded = _bound_value(detail, 0, max_string)
        if len(json.dumps(bounded, ensure_ascii=False).encode()) <= DETAIL_MAX_BYTES:
            return bounded
        max_string //= 2
    return {"truncated": True, "keys": [str(key)[:32] for key in list(detail)[:10]]}


def _header(scope: Mapping[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return ""


def client_ip(scope: Mapping[str, Any] | None) -> str | None:
    """The peer address the ASGI server reports, if it is an IP address."""
    if not scope:
        return None
    client = scope.get("client")
    if not client:
        return None
    try:
        return str(ipaddress.ip_address(str(client[0]).strip("[]")))
    except (ValueError, TypeError, IndexError):
        return None


def user_agent(scope: Mapping[str, Any] | None) -> str:
    if not scope:
        return ""
    return _CONTROL.sub("", _header(scope, b"user-agent"))[:USER_AGENT_MAX]


def _pk(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    pk = getattr(value, "pk", None)
    return pk if isinstance(pk, int) else None


# --- recording ----------------------------------------------------------------------------


@dataclass
class PendingEvent:
    type: str
    user_id: int | None
    workspace_id: int | None
    session_key: str
    ip: str | None
    user_agent: str
    detail: dict[str, Any]
    created_at: datetime = field(default_factory=timezone.now)

    def row(self, *, with_links: bool = True) -> SecurityEvent:
        return SecurityEvent(
            type=self.type,
            user_id=self.user_id if with_links else None,
            workspace_id=self.workspace_id if with_links else None,
            session_key=self.session_key,
            ip=self.ip,
            user_agent=self.user_agent,
            detail=self.detail,
            created_at=self.created_at,
        )


class _Unwritten(Exception):
    """A batch (or its tail) could not be written now; ``events`` go back to the queue."""

    def __init__(self, events: list[PendingEvent], error: BaseException) -> None:
        super().__init__(str(error))
        self.events = events
        self.error = error


def write_rows(rows: list[SecurityEvent]) -> None:
    """Insert a batch in one statement (synchronous; the writer runs it in a thread)."""
    SecurityEvent.objects.bulk_create(rows)


class EventRecorder:
    """A bounded queue of pending events and the task that writes them."""

    def __init__(
        self,
        *,
        max_buffer: int | None = None,
        batch_size: int = BATCH_SIZE,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        log_interval_s: float = 60.0,
        to_async: Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]] = database_sync_to_async,
    ) -> None:
        """``to_async`` runs the synchronous writes in a thread: ``database_sync_to_async`` (which
        also closes stale connections); tests that have no database pass ``sync_to_async``."""
        self.to_async = to_async
        self.max_buffer = max_buffer
        self.batch_size = batch_size
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        #: Events dropped because the queue was full (since start).
        self.dropped = 0
        #: Events written to the database (since start).
        self.written = 0
        self._buffer: deque[PendingEvent] = deque()
        #: Events taken out of the buffer by a writer and not yet written or given back.
        self._in_flight = 0
        self._lock = threading.Lock()
        self._overflowing = False
        self._dropped_in_episode = 0
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._log_throttle = LogThrottle(log_interval_s)

    @property
    def pending(self) -> int:
        """Events not written yet (queued or being written)."""
        return len(self._buffer) + self._in_flight

    @property
    def capacity(self) -> int:
        if self.max_buffer is not None:
            return self.max_buffer
        return int(settings.CHAT.security_event_buffer)

    def record(
        self,
        type: str,
        *,
        user: Any = None,
        workspace: Any = None,
        session_key: str = "",
        scope: Mapping[str, Any] | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one event.  Never raises, never waits; safe from any thread."""
        try:
            event = self._build(type, user, workspace, session_key, scope, detail)
        except Exception:  # a bug here must not break the caller
            logger.exception("could not build a security event of type %r", type)
            return
        self._log(event)
        metrics.security_event(event.type)
        with self._lock:
            if len(self._buffer) + self._in_flight >= self.capacity:
                self.dropped += 1
                self._dropped_in_episode += 1
                first = not self._overflowing
                self._overflowing = True
            else:
                self._buffer.append(event)
                first = None
        if first:
            logger.error(
                "security event queue full (%d events; database down?): dropping new events until it drains",
                self.capacity,
            )
        self._kick()

    def _build(
        self,
        type: str,
        user: Any,
        workspace: Any,
        session_key: str,
        scope: Mapping[str, Any] | None,
        detail: Mapping[str, Any] | None,
    ) -> PendingEvent:
        bounded = bound_detail(detail)
        event_type = str(type)
        if event_type not in SecurityEventType.values:
            logger.warning("unknown security event type %r recorded as suspicious_activity", event_type[:40])
            bounded = {**bounded, "requestedType": event_type[:40]}
            event_type = SecurityEventType.SUSPICIOUS_ACTIVITY
        return PendingEvent(
            type=event_type,
            user_id=_pk(user),
            workspace_id=_pk(workspace),
            session_key=_CONTROL.sub("", str(session_key or ""))[:SESSION_KEY_MAX],
            ip=client_ip(scope),
            user_agent=user_agent(scope),
            detail=bounded,
        )

    def _log(self, event: PendingEvent) -> None:
        log, suppressed = self._log_throttle.should_log(event.type)
        if log:
            logger.warning(
                "security event %s user=%s ip=%s (%d more of this type in the last interval not logged)",
                event.type,
                event.user_id,
                event.ip,
                suppressed,
            )

    # --- the writer ---------------------------------------------------------------------

    def _kick(self) -> None:
        """Wake (or start) the writer.

        From a thread without an event loop (a sync view, code inside
        ``database_sync_to_async``) the wake-up is handed to the writer's loop;
        if no writer runs anywhere (a management command, a shell), the queue is
        written right here, synchronously -- that caller is synchronous anyway.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._ensure_writer(loop)
            assert self._wake is not None
            self._wake.set()
            return
        writer_loop, task = self._loop, self._task
        if writer_loop is not None and writer_loop.is_running() and task is not None and not task.done():
            try:
                writer_loop.call_soon_threadsafe(self._wake_from_loop)
                return
            except RuntimeError:  # the loop closed meanwhile
                pass
        self.drain_sync()

    def _wake_from_loop(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _ensure_writer(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        self._loop = loop
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task = loop.create_task(self._run(), name="security-event-writer")

    def _take(self) -> list[PendingEvent]:
        """Move the next batch out of the buffer (so that concurrent writers never write it twice)."""
        with self._lock:
            batch = [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]
            self._in_flight += len(batch)
        return batch

    def _settle(self, batch: list[PendingEvent], unwritten: list[PendingEvent]) -> None:
        """The batch is done: ``unwritten`` go back to the front of the queue, in order."""
        with self._lock:
            self._in_flight -= len(batch)
            self._buffer.extendleft(reversed(unwritten))
            self.written += len(batch) - len(unwritten)

    def _write_sync(self, batch: list[PendingEvent]) -> None:
        """Write a batch; a batch the database rejects for good is written row by row.

        Raises :class:`_Unwritten` (with the events not written) when the
        database is unavailable, or on an unexpected error.
        """
        try:
            write_rows([event.row() for event in batch])
            return
        except _TRANSIENT as error:
            raise _Unwritten(batch, error) from error
        except DatabaseError:
            pass  # IntegrityError, DataError...: find the bad rows below
        except Exception as error:
            raise _Unwritten(batch, error) from error
        for index, event in enumerate(batch):
            for with_links in (True, False):
                try:
                    write_rows([event.row(with_links=with_links)])
                    break
                except _TRANSIENT as error:
                    raise _Unwritten(batch[index:], error) from error
                except DatabaseError:
                    continue
                except Exception as error:
                    raise _Unwritten(batch[index:], error) from error
            else:
                logger.error("security event of type %s rejected by the database; dropped", event.type)

    def _failed(self, failure: _Unwritten, delay: float) -> None:
        log, suppressed = self._log_throttle.should_log("writer-failure")
        if log:
            logger.warning(
                "security events not written (%s: %s); %d pending, retrying in %.2fs (%d failures not logged)",
                failure.error.__class__.__name__,
                failure.error,
                self.pending,
                delay,
                suppressed,
            )

    async def _run(self) -> None:
        assert self._wake is not None and self._idle is not None
        wake, idle = self._wake, self._idle
        backoff = self.backoff_initial_s
        while True:
            if not self._buffer:
                if not self._in_flight:
                    idle.set()
                    self._end_overflow_episode()
                await wake.wait()
                wake.clear()
                continue
            idle.clear()
            batch = self._take()
            try:
                await self.to_async(self._write_sync)(batch)
            except _Unwritten as failure:
                self._settle(batch, failure.events)
                delay = backoff * (0.5 + random.random() / 2)
                self._failed(failure, delay)
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            except BaseException:
                self._settle(batch, batch)  # cancelled (shutdown) or the thread hop failed: keep them
                raise
            self._settle(batch, [])
            backoff = self.backoff_initial_s

    def drain_sync(self) -> bool:
        """Write the queue from this (synchronous) thread; True when it is empty.  Never raises."""
        while True:
            batch = self._take()
            if not batch:
                self._end_overflow_episode()
                return True
            try:
                self._write_sync(batch)
            except _Unwritten as failure:
                self._settle(batch, failure.events)
                self._failed(failure, 0.0)
                return False
            except BaseException:
                self._settle(batch, batch)
                raise
            self._settle(batch, [])

    def _end_overflow_episode(self) -> None:
        with self._lock:
            if not self._overflowing:
                return
            self._overflowing, dropped = False, self._dropped_in_episode
            self._dropped_in_episode = 0
        logger.error("security event queue drained; %d events were dropped while it was full", dropped)

    async def flush(self, timeout: float | None = 10.0) -> bool:
        """Write everything queued now; True when nothing is pending, False on timeout (events are kept)."""
        self._ensure_writer(asyncio.get_running_loop())
        assert self._wake is not None and self._idle is not None
        idle = self._idle
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pending:
            remaining = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if remaining <= 0:
                return False
            idle.clear()
            self._wake.set()
            try:
                await asyncio.wait_for(idle.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        return True

    async def close(self, timeout: float | None = 10.0) -> bool:
        """Flush, then stop the writer (at shutdown)."""
        drained = await self.flush(timeout)
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        return drained


#: The process's recorder; use the module functions below.
recorder = EventRecorder()


def record(
    type: str,
    *,
    user: Any = None,
    workspace: Any = None,
    session_key: str = "",
    scope: Mapping[str, Any] | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Record a security event: returns at once, never raises; written in the background."""
    recorder.record(type, user=user, workspace=workspace, session_key=session_key, scope=scope, detail=detail)


async def flush(timeout: float | None = 10.0) -> bool:
    """Write every queued event (tests, shutdown); False if the database stayed down past ``timeout``."""
    return await recorder.flush(timeout)
