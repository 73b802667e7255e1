"""Storing the writer's batches on PostgreSQL from the event loop, in one round trip.

Django's connection is synchronous, so every batch used to take a thread hop
and six round trips (BEGIN, lock, mutes, insert, update, COMMIT), and the
thread waited for the busy event loop's GIL after each one: 7-12 ms per
batch at 1,000 sends/s, most of a message's latency (``bench/run.py``).
This store keeps a connection of its own on the loop, in autocommit, and
sends a batch as one prepared statement that numbers and stores it
(:func:`chat.services.message_rows.store_numbered`): its own transaction,
committed when the reply comes.  Under load a round trip costs a whole
turn of the busy loop, so each one saved matters.

Anything unusual (a key stored before, a value the database refuses) is
rolled back here and handed to :func:`chat.services.messages.store_messages`,
the reference path, which sorts it out message by message.
"""

from __future__ import annotations

import logging

import psycopg
from channels.db import database_sync_to_async
from django.db import connection as django_connection
from django.utils import timezone

from chat.errors import ChatError, StoreFailed
from chat.services import message_rows, messages
from chat.services.message_rows import Statement

logger = logging.getLogger(__name__)

Results = list["messages.StoredMessage | ChatError"]
#: How the writer's connection shows in ``pg_stat_activity``.
APPLICATION_NAME = "chat message writer"


async def _execute(
    connection: psycopg.AsyncConnection, statement: Statement, *, prepare: bool = False
) -> psycopg.AsyncCursor:
    return await connection.execute(statement.sql, statement.params, prepare=prepare)


def _may_prepare() -> bool:
    """Whether the writer may keep its statement prepared on the server.

    Parsing and planning it took a millisecond of each batch.  Behind a
    pooler in transaction mode, which is when Django asks for
    ``DISABLE_SERVER_SIDE_CURSORS``, the next transaction may land on a
    server connection that never saw it prepared.
    """
    return not django_connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS", False)


class PostgresBatchStore:
    """The writer's PostgreSQL connection: one per worker process, used by one batch at a time."""

    def __init__(self) -> None:
        self._connection: psycopg.AsyncConnection | None = None

    async def store(self, batch: list[messages.NewMessage]) -> Results:
        """Store a batch (see :func:`~chat.services.messages.store_messages`); the results in the batch's order."""
        results: list = [None] * len(batch)
        valid = messages.check_batch(batch, results)
        if not valid:
            return results
        now = timezone.now()
        try:
            connection = await self._connect()
            rows = [messages.new_row(batch[index], now, seq=None) for index in valid]
            # One statement is its own transaction: one round trip, committed when it returns.
            statement = message_rows.store_numbered(rows, now)
            numbered = await (await _execute(connection, statement, prepare=_may_prepare())).fetchall()
            messages.numbered_outcomes(rows, numbered, results, valid)
            return results
        except psycopg.Error as error:
            return await self._recover(error, batch, valid, results)

    async def _recover(
        self, error: Exception, batch: list[messages.NewMessage], valid: list[int], results: list
    ) -> Results:
        """Store the batch's valid messages on the threaded path, which sorts out message by message."""
        connection = self._connection
        if connection is None or connection.broken or connection.closed:
            # Nothing was committed: the statement's transaction ended with the connection.
            logger.warning("the message writer's database connection failed: %s", type(error).__name__)
            return self._lost(valid, results)
        stored = await database_sync_to_async(messages.store_messages)([batch[index] for index in valid])
        for index, outcome in zip(valid, stored):
            results[index] = outcome
        return results

    def _lost(self, valid: list[int], results: list) -> Results:
        """The connection is gone, and with it the batch's transaction: nothing of it was stored."""
        self._drop()
        for index in valid:
            results[index] = StoreFailed()
        return results

    async def _connect(self) -> psycopg.AsyncConnection:
        if self._connection is None or self._connection.closed:
            # Django's own parameters: the same server, credentials, options and adapters.
            params = django_connection.get_connection_params()
            params.pop("cursor_factory", None)
            params["application_name"] = APPLICATION_NAME
            self._connection = await psycopg.AsyncConnection.connect(**params, autocommit=True)
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None and not self._connection.closed:
            self._connection.pgconn.finish()
        self._connection = None

