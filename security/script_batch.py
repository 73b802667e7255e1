"""Lua scripts called during one turn of the event loop go to Redis together, in one pipeline.

Every chat message costs a worker two scripts (its sender's rate limit with
the penalty, and the repeat tracker), and every other event one.  Sent one
by one, each is a connection taken from the pool, a write, a read and a
turn of the event loop; under load they are most of what Redis costs a
worker.  :class:`ScriptBatch` queues the calls and sends what has queued in
one pipeline (``EVALSHA`` each, no transaction: each script is atomic on its
own), one pipeline at a time: under light load every call goes alone and
at once, under heavy load a round trip serves a whole turn's calls.

A script Redis does not have cached (a restart, ``SCRIPT FLUSH``) is sent
again by itself, which loads it.  A failed round trip fails every call of
its pipeline with the error, for the caller to handle (the rate limiter
fails open).
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

#: Most calls in one pipeline (a bound on the reply a worker waits for).
MAX_PIPELINE = 500

_Call = tuple[AsyncScript, list[Any], list[Any], "asyncio.Future[Any]"]


class ScriptBatch:
    def __init__(self, client: Any) -> None:
        self.client = client
        self._queued: list[_Call] = []
        self._sending: asyncio.Task[None] | None = None

    def register(self, source: str) -> AsyncScript:
        return self.client.register_script(source)

    async def run(self, script: AsyncScript, keys: list[Any], args: list[Any]) -> Any:
        """The script's reply, sent in the next pipeline; raises what Redis or the connection raised."""
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        self._queued.append((script, keys, args, reply))
        if self._sending is None or self._sending.done():
            self._sending = loop.create_task(self._send(), name="redis-script-batch")
        return await reply

    async def _send(self) -> None:
        while self._queued:
            batch, self._queued = self._queued[:MAX_PIPELINE], self._queued[MAX_PIPELINE:]
            try:
                replies = await self._pipeline(batch)
            except BaseException as error:  # the round trip failed: so did every call in it
                for *_, reply in batch:
                    if not reply.done():
                        reply.set_exception(error if isinstance(error, Exception) else ConnectionError("cancelled"))
                if not isinstance(error, Exception):
                    raise
                continue
            for (script, keys, args, reply), outcome in zip(batch, replies):
                if isinstance(outcome, NoScriptError):
                    outcome = await self._alone(script, keys, args)
                if reply.done():
                    continue  # its caller was cancelled
                if isinstance(outcome, Exception):
                    reply.set_exception(outcome)
                else:
                    reply.set_result(outcome)

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            for script, keys, args, _ in batch:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            return await pipe.execute(raise_on_error=False)

    @staticmethod
    async def _alone(script: AsyncScript, keys: list[Any], args: list[Any]) -> Any:
        """One call sent by itself: redis-py loads the script when Redis does not have it."""
        try:
            return await script(keys=keys, args=args)
        except Exception as error:
            return error
