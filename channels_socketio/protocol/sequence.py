"""Ordered rooms: broadcasts that carry a sequence number reach each worker's members in order.

Layer: protocol core.

An application whose broadcasts to a room are numbered 1, 2, 3... with no
gap (the chat numbers each session's messages) may publish them from any
worker, in any order the network and the commits produce.  On each worker
the room's :class:`Sequencer` hands them to the local members strictly in
order: one that arrives early waits for its predecessors.  If a predecessor
has not come within :data:`GAP_WAIT_S` -- its publisher died after storing
it, or the broker lost a message -- the application's ``fill`` callback
reads what is missing from its own store, and the room goes on.

So every member sees a gap-free, ordered stream, with no lock between
publishers and no single worker that must publish a room's messages.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any, Awaitable, Callable

logger = logging.getLogger(__name__)

#: How long an early message waits for its predecessors before they are read from the store.
GAP_WAIT_S = 0.25
#: Most messages held waiting for a predecessor; past it the gap is filled at once.
MAX_HELD = 1000

#: ``fill(first, last)``: the room's messages numbered ``first`` to ``last`` (``None``: the newest),
#: as broadcast messages carrying their ``seq``; one the application will not show is simply left out.
Fill = Callable[[int, int | None], Awaitable[list[dict[str, Any]]]]
Deliver = Callable[[dict[str, Any]], Awaitable[None]]


class Sequencer:
    """One ordered room on this worker: the next number to deliver and the messages that came early."""

    def __init__(self, next_seq: int, fill: Fill, deliver: Deliver) -> None:
        self.next = next_seq
        self._fill = fill
        self._deliver = deliver
        self._held: dict[int, dict[str, Any]] = {}
        #: Numbers up to here that are not held were read from the store and are not shown: skipped.
        self._settled = next_seq - 1
        self._draining = False
        self._timer: asyncio.TimerHandle | None = None
        self._filling: asyncio.Task[None] | None = None
        #: Gaps that had to be filled from the store.
        self.filled = 0

    @property
    def held(self) -> int:
        return len(self._held)

    async def accept(self, message: dict[str, Any]) -> None:
        """Deliver ``message`` in its turn (now, after its predecessors, or never if it was already delivered)."""
        seq = message["seq"]
        if seq < self.next or seq in self._held:
            return
        self._held[seq] = message
        await self._drain()

    async def _drain(self) -> None:
        if self._draining:
            return  # the drain already running delivers it in its turn
        self._draining = True
        try:
            while True:
                if self.next in self._held:
                    message = self._held.pop(self.next)
                    self.next += 1
                    await self._deliver(message)
                elif self.next <= self._settled:
                    self.next += 1  # the store has nothing to show under this number
                else:
                    break
        finally:
            self._draining = False
        if not self._held:
            self._cancel_timer()
        elif len(self._held) > MAX_HELD:
            self._fill_now()
        elif self._timer is None and self._filling is None:
            # A fresh context, here and for the fill: the message that left the gap
            # may have come from a synchronous caller's ``async_to_sync`` (a REST
            # view announcing after commit) whose thread is gone by then.
            self._timer = asyncio.get_running_loop().call_later(
                GAP_WAIT_S, self._fill_now, context=contextvars.Context()
            )

    def catch_up(self) -> None:
        """Messages may have been missed (the broker lost its connection): read everything after the last delivered."""
        self._fill_now(to_newest=True)

    def _fill_now(self, to_newest: bool = False) -> None:
        self._cancel_timer()
        if self._filling is None:
            self._filling = asyncio.get_running_loop().create_task(
                self._fill_gap(to_newest), name="room-fill", context=contextvars.Context()
            )

    async def _fill_gap(self, to_newest: bool) -> None:
        try:
            last = None if to_newest or not self._held else min(self._held) - 1
            first = self.next
            if last is None or last >= first:
                try:
                    missing = await self._fill(first, last)
                except Exception:
                    logger.exception("reading a room's missing messages failed")
                    missing = []
                if missing:
                    self.filled += 1
                for message in missing:
                    seq = message.get("seq")
                    if isinstance(seq, int) and seq >= self.next:
                        self._held.setdefault(seq, message)
                if last is not None:
                    # What the store did not give for first..last is not shown (or could not be read).
                    # Only that range: a gap that opened while it was read is a message on its way.
                    self._settled = max(self._settled, last)
        finally:
            self._filling = None
        await self._drain()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        self._cancel_timer()
        if self._filling is not None:
            self._filling.cancel()
        self._held.clear()
