"""Message writes from all sockets of this worker, batched into shared transactions.

While one batch is in the database, new sends queue up and go together in
the next: under light load every message is its own transaction (no added
latency), under heavy load one commit and one thread hop serve many
messages.  ``seq`` stays gap-free and each sender is confirmed only after
the transaction holding its message has committed.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from channels.db import database_sync_to_async

from chat.errors import ChatError
from chat.services.messages import NewMessage, StoredMessage, store_messages

#: Most messages per transaction: bounds the time any one row lock is held.
MAX_BATCH = 100
#: Messages remembered after storing, so an immediate resend is answered
#: without the database.  The database stays the authority on duplicates.
RECENT = 10_000


class MessageWriter:
    def __init__(self) -> None:
        self._pending: list[tuple[NewMessage, asyncio.Future[StoredMessage | ChatError]]] = []
        self._draining: asyncio.Task[None] | None = None
        self._recent: OrderedDict[tuple[int, str], StoredMessage] = OrderedDict()

    def recently_stored(self, session_id: int, key: str) -> StoredMessage | None:
        """The message this worker stored under ``key``, as a duplicate, if it still remembers it."""
        stored = self._recent.get((session_id, key))
        return None if stored is None else StoredMessage(stored.message, created=False)

    async def store(self, new: NewMessage) -> StoredMessage:
        """Store one message; raise its :class:`ChatError` if it was refused."""
        result: asyncio.Future[StoredMessage | ChatError] = asyncio.get_running_loop().create_future()
        self._pending.append((new, result))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.get_running_loop().create_task(self._drain(), name="message-writer")
        outcome = await result
        if isinstance(outcome, ChatError):
            raise outcome
        return outcome

    @property
    def queued(self) -> int:
        return len(self._pending)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                results = await database_sync_to_async(store_messages)([new for new, _ in batch])
            except Exception as error:  # the thread itself failed: nobody was confirmed
                results = [ChatError(str(type(error).__name__), retryable=True)] * len(batch)
            for (new, future), outcome in zip(batch, results):
                if isinstance(outcome, StoredMessage):
                    self._remember(new, outcome)
                if not future.done():
                    future.set_result(outcome)

    def _remember(self, new: NewMessage, stored: StoredMessage) -> None:
        self._recent[(new.session_id, new.key)] = stored
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)


writer = MessageWriter()
