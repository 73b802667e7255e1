"""Small state changes from this worker's sockets, many to one database turn.

The message writer's pattern (:mod:`chat.services.writer`) for the changes
that are not messages, such as reactions and read pointers: while one batch
is in the database, new requests queue up and go together in the next.
Under light load every request is its own batch (no added latency); under
heavy load one thread hop and one transaction serve many requests, where
each used to take its own hop, transaction and commit in turn on the one
database thread.

``run`` is a synchronous function of a whole batch (it opens its own
transaction and announces after its commit); it answers each request with
its result or the :class:`~chat.errors.ChatError` that refused it, in order,
so that one refused request costs the others nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Generic, TypeVar

from channels.db import database_sync_to_async

from chat.errors import ChatError, StoreFailed

logger = logging.getLogger(__name__)

Request = TypeVar("Request")
Result = TypeVar("Result")

#: Most requests per batch: bounds how long one transaction holds its row locks.
MAX_BATCH = 100
#: A batch starts at least this long after the previous one started.  A request
#: that finds no batch in that time goes at once (light load: no added latency);
#: under load the requests of this time go together, so the batch's fixed cost
#: (a thread hop, a handful of queries, a commit) is shared by many instead of
#: being paid again for every one or two.
MIN_INTERVAL_S = 0.025


def run_one(run: Callable[[list[Request]], list["Result | ChatError"]], request: Request) -> Result:
    """A batch function for one request, here and now (REST views, the admin): its result, or its error raised."""
    (outcome,) = run([request])
    if isinstance(outcome, ChatError):
        raise outcome
    return outcome


class DatabaseBatches(Generic[Request, Result]):
    def __init__(self, name: str, run: Callable[[list[Request]], list["Result | ChatError"]]) -> None:
        self._name = name
        self._run = run
        self._pending: list[tuple[Request, asyncio.Future[Result | ChatError]]] = []
        self._draining: asyncio.Task[None] | None = None
        self._started = float("-inf")

    async def submit(self, request: Request) -> Result:
        """``request``'s result, once its batch has committed and been announced; raises its error."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Result | ChatError] = loop.create_future()
        self._pending.append((request, answer))
        if self._draining is None or self._draining.done() or self._draining.get_loop() is not loop:
            self._draining = loop.create_task(self._drain(), name=self._name)
        outcome = await answer
        if isinstance(outcome, ChatError):
            raise outcome
        return outcome

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            wait_s = self._started + MIN_INTERVAL_S - loop.time()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            self._started = loop.time()
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                outcomes = await database_sync_to_async(self._run)([request for request, _ in batch])
            except Exception:  # the batch's transaction failed as a whole: nothing of it was stored
                logger.exception("a batch of %s failed", self._name)
                outcomes = [StoreFailed("The server could not do this just now; please retry.")] * len(batch)
            for (_, answer), outcome in zip(batch, outcomes):
                if not answer.done():
                    answer.set_result(outcome)
