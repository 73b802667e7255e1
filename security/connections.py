"""At most ``CHAT_CONNECTION_LIMIT`` simultaneous connections per user, across every worker.

Why: each socket holds memory, a heartbeat and room memberships on some
worker, so one account (or one stolen token) must not be able to open
thousands.  The count has to be shared by all workers and must survive a
worker dying without releasing its connections.

How: each user has a set of ``connection_id -> expiry`` entries.  A worker
:meth:`~ConnectionTracker.acquire`\\ s an entry when a socket connects (refused
when the user already has ``limit`` live entries), :meth:`~ConnectionTracker.release`\\ s
it on disconnect, and its heartbeat calls :meth:`~ConnectionTracker.refresh`
every ``ttl / 3`` to push the expiry of the connections it owns forward.
Entries of a worker that died are not refreshed, expire within ``ttl`` and
stop counting: the limit heals itself.

- :class:`RedisConnectionTracker` -- a sorted set per user
  (``<prefix>conn:<user_id>``, score = expiry in ms), updated by Lua
  scripts so acquire is atomic across workers; the key itself has a TTL.
- :class:`MemoryConnectionTracker` -- the same in one process (the
  embedded, single-worker mode).

Re-acquiring an id the user already holds succeeds (idempotent).  A
refresh re-adds an owned entry that expired while its worker was stalled,
because the connection is in fact alive; that can put the user over the
limit for a while, during which new connections are refused.

If Redis is unreachable, acquire fails open (allows, logged at most once a
minute), like the rate limiter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Iterable

from django.conf import settings

from security.errors import ConnectionLimitExceeded
from security.ratelimit import DEFAULT_PREFIX, REDIS_FAILURES, BackendUnavailable, Clock, backend_down, redis_client

logger = logging.getLogger(__name__)



class ConnectionTracker:
    """The public API; subclasses store the entries.

    The tracker remembers which connections *this* worker acquired (and for
    which user), so the heartbeat needs only :meth:`refresh` with no arguments.
    """

    def __init__(self, *, limit: int | None = None, ttl_s: float | None = None, clock: Clock = time.time) -> None:
        self.limit = int(settings.CHAT.connection_limit) if limit is None else limit
        self.ttl_s = float(settings.CHAT.connection_ttl_s) if ttl_s is None else ttl_s
        if self.limit < 1 or self.ttl_s <= 0:
            raise ValueError("the connection limit must be at least 1 and the TTL positive")
        self.clock = clock
        #: connection id -> user id, for the connections this worker holds.
        self.owned: dict[str, str] = {}
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def ttl_ms(self) -> int:
        return max(1, int(round(self.ttl_s * 1000)))

    @property
    def heartbeat_interval_s(self) -> float:
        return self.ttl_s / 3

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def acquire(self, user_id: Any, connection_id: str) -> bool:
        """Count ``connection_id`` for ``user_id``; False when the user is already at the limit."""
        user = str(user_id)
        try:
            ok = await self._acquire(user, connection_id, self._now_ms())
        except BackendUnavailable as error:
            backend_down(error)
            ok = True
        if ok:
            self.owned[connection_id] = user
        return ok

    async def acquire_or_raise(self, user_id: Any, connection_id: str) -> None:
        """:meth:`acquire`, raising :class:`ConnectionLimitExceeded` (a ``ConnectionRefused``) when refused."""
        if not await self.acquire(user_id, connection_id):
            raise ConnectionLimitExceeded(self.limit)

    async def release(self, user_id: Any, connection_id: str) -> None:
        """Forget ``connection_id`` (on disconnect).  Never raises: an entry left behind expires by itself."""
        self.owned.pop(connection_id, None)
        try:
            await self._release(str(user_id), connection_id)
        except BackendUnavailable as error:
            backend_down(error)

    async def refresh(self, connection_ids: Iterable[str] | None = None) -> int:
        """Push the expiry of owned connections (all when ``None``) forward; returns how many were refreshed."""
        ids = list(self.owned) if connection_ids is None else [cid for cid in connection_ids if cid in self.owned]
        if not ids:
            return 0
        try:
            await self._refresh([(self.owned[cid], cid) for cid in ids], self._now_ms())
        except BackendUnavailable as error:
            backend_down(error)
            return 0
        return len(ids)

    async def count(self, user_id: Any) -> int:
        """Live connections of ``user_id`` across all workers (expired entries excluded)."""
        try:
            return await self._count(str(user_id), self._now_ms())
        except BackendUnavailable as error:
            backend_down(error)
            return 0

    def start_heartbeat(self) -> None:
        """Refresh owned connections every ``ttl / 3`` on the running loop (idempotent)."""
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="connection-heartbeat")

    async def stop_heartbeat(self) -> None:
        task, self._heartbeat = self._heartbeat, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval_s)
            try:
                await self.refresh()
            except Exception:  # never let the heartbeat die
                logger.exception("connection heartbeat failed; retrying next round")

    # Storage, implemented by subclasses; raise BackendUnavailable when the store is unreachable.
    async def _acquire(self, user: str, connection_id: str, now_ms: int) -> bool:
        raise NotImplementedError

    async def _release(self, user: str, connection_id: str) -> None:
        raise NotImplementedError

    async def _refresh(self, entries: list[tuple[str, str]], now_ms: int) -> None:
        raise NotImplementedError

    async def _count(self, user: str, now_ms: int) -> int:
        raise NotImplementedError


class MemoryConnectionTracker(ConnectionTracker):
    """Entries in this process only (embedded mode: one worker)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._entries: dict[str, dict[str, int]] = {}

    def _live(self, user: str, now_ms: int) -> dict[str, int]:
        entries = self._entries.get(user, {})
        for cid in [cid for cid, expiry in entries.items() if expiry <= now_ms]:
            del entries[cid]
        if not entries:
            self._entries.pop(user, None)
        return entries

    async def _acquire(self, user: str, connection_id: str, now_ms: int) -> bool:
        entries = self._live(user, now_ms)
        if connection_id not in entries and len(entries) >= self.limit:
            return False
        self._entries.setdefault(user, entries)[connection_id] = now_ms + self.ttl_ms
        return True

    async def _release(self, user: str, connection_id: str) -> None:
        entries = self._entries.get(user)
        if entries is not None:
            entries.pop(connection_id, None)
            if not entries:
                del self._entries[user]

    async def _refresh(self, entries: list[tuple[str, str]], now_ms: int) -> None:
        for user, connection_id in entries:
            self._entries.setdefault(user, {})[connection_id] = now_ms + self.ttl_ms

    async def _count(self, user: str, now_ms: int) -> int:
        return len(self._live(user, now_ms))


_ACQUIRE_LUA = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local member = ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if not redis.call('ZSCORE', key, member) and redis.call('ZCARD', key) >= limit then
  return 0
end
redis.call('ZADD', key, now + ttl, member)
redis.call('PEXPIRE', key, ttl)
return 1
"""


class RedisConnectionTracker(ConnectionTracker):
    """Entries in Redis, shared by every worker: one sorted set per user, scored by expiry (ms)."""

    def __init__(self, client: Any, *, prefix: str = DEFAULT_PREFIX, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client
        self.prefix = prefix
        self._acquire_script = client.register_script(_ACQUIRE_LUA)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX, timeout_s: float = 1.0, **kwargs: Any):
        return cls(redis_client(url, timeout_s), prefix=prefix, **kwargs)

    def _key(self, user: str) -> str:
        return f"{self.prefix}conn:{user}"

    async def _acquire(self, user: str, connection_id: str, now_ms: int) -> bool:
        try:
            return bool(
                await self._acquire_script(
                    keys=[self._key(user)], args=[now_ms, self.ttl_ms, self.limit, connection_id]
                )
            )
        except REDIS_FAILURES as error:
            raise BackendUnavailable(str(error)) from error

    async def _release(self, user: str, connection_id: str) -> None:
        try:
            await self.client.zrem(self._key(user), connection_id)
        except REDIS_FAILURES as error:
            raise BackendUnavailable(str(error)) from error

    async def _refresh(self, entries: list[tuple[str, str]], now_ms: int) -> None:
        expiry = now_ms + self.ttl_ms
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for user, connection_id in entries:
                    pipe.zadd(self._key(user), {connection_id: expiry})
                    pipe.pexpire(self._key(user), self.ttl_ms)
                await pipe.execute()
        except REDIS_FAILURES as error:
            raise BackendUnavailable(str(error)) from error

    async def _count(self, user: str, now_ms: int) -> int:
        try:
            return int(await self.client.zcount(self._key(user), f"({now_ms}", "+inf"))
        except REDIS_FAILURES as error:
            raise BackendUnavailable(str(error)) from error

    async def aclose(self) -> None:
        await self.stop_heartbeat()
        await self.client.aclose()


def connections_from_settings(*, prefix: str = DEFAULT_PREFIX, clock: Clock = time.time) -> ConnectionTracker:
    """Redis when ``settings.CHAT.redis_url`` is set (a limit across all workers), else per process."""
    url = settings.CHAT.redis_url
    if url:
        return RedisConnectionTracker.from_url(url, prefix=prefix, clock=clock)
    return MemoryConnectionTracker(clock=clock)
