"""Message writes from all sockets of this worker, batched into shared transactions.

While one batch is in the database, new sends queue up and go together in
the next: under light load every message is its own transaction (no added
latency), under heavy load one commit serves many messages.  On PostgreSQL
batches go through the writer's own pipelined connection on the event loop
(:mod:`chat.services.pg_batches`), elsewhere through Django's in a thread.
``seq`` stays gap-free, each message is announced with its ``seq`` (so that
every worker's members get a session's messages in order, whichever worker
stored them: :mod:`channels_socketio.protocol.sequence`), and each sender is
confirmed only after its message has committed and been announced.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Awaitable, Callable

from channels.db import database_sync_to_async
from django.db import connection

from chat.errors import ChatError, StoreFailed
from chat.services.messages import NewMessage, StoredMessage, store_messages
from chat.services.pg_batches import PostgresBatchStore
from monitoring import metrics

logger = logging.getLogger(__name__)

#: Most messages per transaction: bounds the time any one row lock is held.
MAX_BATCH = 100
#: Messages remembered after storing, so an immediate resend is answered
#: without the database.  The database stays the authority on duplicates.
RECENT = 10_000
#: A committed message whose announcement failed (Redis briefly away) is announced again after these pauses.
ANNOUNCE_RETRIES_S = (0.1, 0.5, 2.0, 5.0)

Announce = Callable[[StoredMessage], Awaitable[None]]
Pending = tuple[NewMessage, "Announce | None", "asyncio.Future[StoredMessage | ChatError]", "list | None"]
Results = list["StoredMessage | ChatError"]


class ThreadedBatchStore:
    """Batches stored through Django's connection, in a thread: SQLite, and the reference path."""

    async def store(self, batch: list[NewMessage]) -> Results:
        return await database_sync_to_async(store_messages)(batch)


def _batch_store() -> ThreadedBatchStore | PostgresBatchStore:
    """PostgreSQL gets the pipelined store on the event loop; SQLite serves one process and keeps the thread."""
    return PostgresBatchStore() if connection.vendor == "postgresql" else ThreadedBatchStore()


class MessageWriter:
    def __init__(self) -> None:
        self._pending: list[Pending] = []
        self._draining: asyncio.Task[None] | None = None
        self._recent: OrderedDict[tuple[int, str], StoredMessage] = OrderedDict()
        self._batches: ThreadedBatchStore | PostgresBatchStore | None = None
        self._retrying: set[asyncio.Task[None]] = set()

    def recently_stored(self, session_id: int, key: str) -> StoredMessage | None:
        """The message this worker stored under ``key``, as a duplicate, if it still remembers it."""
        stored = self._recent.get((session_id, key))
        return None if stored is None else StoredMessage(stored.message, created=False)

    async def store(self, new: NewMessage, announce: Announce | None = None) -> StoredMessage:
        """Store one message, run ``announce`` if it is new, and return it; raise its :class:`ChatError`."""
        result: asyncio.Future[StoredMessage | ChatError] = asyncio.get_running_loop().create_future()
        self._pending.append((new, announce, result, metrics.current_receipt()))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.get_running_loop().create_task(self._drain(), name="message-writer")
        outcome = await result
        if isinstance(outcome, ChatError):
            raise outcome
        return outcome

    def forget(self) -> None:
        """Forget the messages remembered for resends (the database, rolled back, no longer has them)."""
        self._recent.clear()

    @property
    def queued(self) -> int:
        return len(self._pending)

    async def _drain(self) -> None:
        ahead: tuple[list[Pending], asyncio.Task[Results]] | None = None
        while self._pending or ahead is not None:
            if ahead is None:
                batch = self._take()
                results = await self._store_batch(batch)
            else:
                batch, storing = ahead
                results = await storing
            ahead = None
            if self._pending:
                # The next batch goes to the database while this one is announced, so the two overlap.
                following = self._take()
                ahead = following, asyncio.get_running_loop().create_task(self._store_batch(following))
            for (new, announce, _, receipt), outcome in zip(batch, results):
                if isinstance(outcome, StoredMessage):
                    self._remember(new, outcome)
                    if outcome.created and announce is not None:
                        with metrics.processing_measured_here(receipt):
                            await self._announce(announce, outcome)
            for (_, _, future, _), outcome in zip(batch, results):
                if not future.done():
                    future.set_result(outcome)

    def _take(self) -> list[Pending]:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        return batch

    @property
    def _store(self) -> ThreadedBatchStore | PostgresBatchStore:
        if self._batches is None:
            self._batches = _batch_store()
        return self._batches

    async def _store_batch(self, batch: list[Pending]) -> Results:
        try:
            return await self._store.store([new for new, *_ in batch])
        except Exception:  # storing itself failed: nothing was confirmed
            logger.exception("storing a batch of messages failed")
            return [StoreFailed()] * len(batch)

    async def _announce(self, announce: Announce, stored: StoredMessage) -> None:
        """Committed messages are delivered at least once: a failed announcement is retried in the background."""
        try:
            await announce(stored)
        except Exception as error:
            logger.warning("announcing message %s failed (%s); retrying", stored.message.pk, type(error).__name__)
            task = asyncio.get_running_loop().create_task(self._announce_again(announce, stored))
            self._retrying.add(task)
            task.add_done_callback(self._retrying.discard)

    @staticmethod
    async def _announce_again(announce: Announce, stored: StoredMessage) -> None:
        for pause in ANNOUNCE_RETRIES_S:
            await asyncio.sleep(pause)
            try:
                await announce(stored)
                return
            except Exception:
                continue
        # Still in history, and filled in by every worker at the session's next message (seq order).
        logger.error("message %s could not be announced after %d retries", stored.message.pk, len(ANNOUNCE_RETRIES_S))
        metrics.messages_dropped("announce", 1)

    def _remember(self, new: NewMessage, stored: StoredMessage) -> None:
        self._recent[(new.session_id, new.key)] = stored
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)


writer = MessageWriter()
