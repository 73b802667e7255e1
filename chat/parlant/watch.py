"""Waking the requests that wait for a session's events, whichever worker the events come from.

Layer: the Parlant-compatible API, on top of the protocol core's rooms.

Everything that changes a session's log is announced to the session's room
(``chat.notify.to_session``): a message from a socket, the REST API or this
API, an agent's typing indicator, chunks and stored reply, a hidden
message, the session closing.  So a worker with requests waiting on a
session puts one member of its own into that room, through this process's
room fan-out (:class:`channels_socketio.protocol.rooms.RoomFanout`), exactly like a
socket that joined -- which subscribes the worker to the room on every
worker -- and any broadcast to the room wakes its waiters.  The broadcast
is only a wake-up: waiters then read the database (:mod:`chat.parlant.log`),
so a lost or early wake-up costs time, never an event, and waiters also
re-read every :data:`SAFETY_POLL_S` seconds.

The member counts as one more local recipient in the fan-out metrics
(``chat_broadcast_fanout``, delivered events) of a watched session's broadcasts.

Order: a waiter registers (:meth:`Watcher.watch`) and clears its flag
*before* it reads the database, so nothing that happens after the read can
go unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator

from channels_socketio.protocol.rooms import RoomFanout, group_name
from chat.notify import session_room

#: Waiters re-read the database this often even without a wake-up.
SAFETY_POLL_S = 10.0
#: The room membership outlives its last waiter this long (a long-poll client asks again at once).
LINGER_S = 30.0


class SessionWatch:
    """This worker's member of one session's room: wakes every local waiter on any broadcast."""

    def __init__(self, group: str) -> None:
        # Never a socket id, so a broadcast's ``exclude`` list cannot name it.
        self.id = f"parlant:{group}"
        self.group = group
        self.waiters: set[asyncio.Event] = set()
        self.linger: asyncio.TimerHandle | None = None

    def wake(self) -> None:
        for waiter in self.waiters:
            waiter.set()

    def deliver_now(self, frames: list[str | bytes]) -> bool:
        self.wake()
        return True

    async def deliver(self, frames: list[str | bytes]) -> None:
        self.wake()

    async def apply_remote(self, op: str, room: str | None, data: Any = None) -> None:
        self.wake()  # a disconnect of the room (the session closed): waiters re-read too


class Watcher:
    """The session watches of one worker process, on its room fan-out."""

    def __init__(self, fanout: RoomFanout) -> None:
        self.fanout = fanout
        self._watches: dict[str, SessionWatch] = {}
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def watch(self, workspace_slug: str, session_key: str) -> AsyncIterator[asyncio.Event]:
        """``async with watcher.watch(ws, key) as woken:`` -- ``woken`` is set by any broadcast to the session."""
        group = group_name("/", session_room(workspace_slug, session_key))
        woken = asyncio.Event()
        async with self._lock:
            watch = self._watches.get(group)
            if watch is None:
                watch = self._watches[group] = SessionWatch(group)
                await self.fanout.join(watch, group)
            elif watch.linger is not None:
                watch.linger.cancel()
                watch.linger = None
            watch.waiters.add(woken)
        try:
            yield woken
        finally:
            watch.waiters.discard(woken)
            if not watch.waiters and watch.linger is None:
                loop = asyncio.get_running_loop()
                watch.linger = loop.call_later(LINGER_S, lambda: loop.create_task(self._leave(watch)))

    async def _leave(self, watch: SessionWatch) -> None:
        async with self._lock:
            watch.linger = None
            if watch.waiters or self._watches.get(watch.group) is not watch:
                return
            del self._watches[watch.group]
            await self.fanout.leave(watch, watch.group)

    @property
    def watched(self) -> int:
        """Sessions this worker currently watches (for tests and metrics)."""
        return len(self._watches)


async def wait(woken: asyncio.Event, timeout: float) -> bool:
    """Wait until ``woken`` is set or ``timeout`` passes (at most :data:`SAFETY_POLL_S`); True if woken."""
    try:
        await asyncio.wait_for(woken.wait(), timeout=max(0.0, min(timeout, SAFETY_POLL_S)))
    except TimeoutError:
        return False
    return True
