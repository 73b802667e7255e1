"""Per-operation rate limits with adaptive penalties, shared by every worker when Redis is configured.

Why: a chat socket is a cheap way to make the server do work (store a
message, fan it out, query history), so each operation a client can trigger
has a budget per user.  The seed asks for "per-operation rate limits,
adaptive thresholds, client-side backoff recommendations": the first is
:class:`Rule` per operation, the second :class:`Penalties`, the third the
``retryAfter`` (ms) of :class:`~security.errors.RateLimited`.

Algorithm: a *sliding-window log*.  A hit is allowed when fewer than
``limit`` hits were allowed in the last ``window`` (exactly, not an
approximation: at most ``limit`` hits in *any* window); denied hits are not
counted.  ``retry_after_ms`` is exact: the time until enough old hits leave
the window for one more to fit.  Memory per key is at most ``limit``
timestamps, which is small for chat-sized limits.

Backends, behind :class:`LimiterBackend`:

- :class:`MemoryBackend` -- per process (the embedded, single-worker mode),
  bounded by a least-recently-used cap on the number of keys.
- :class:`RedisBackend` -- one Lua script per operation, so each hit is
  atomic and every worker process shares the counts; every key has a TTL.
  The scripts of one event-loop turn share one round trip
  (:mod:`security.script_batch`).
  Times come from the workers' wall clocks (``time.time``), so the hosts
  of one deployment are assumed NTP-synchronised.

If Redis is unreachable the limiter *fails open* (allows, and logs at most
once a minute): a Redis outage degrades protection, not the chat.

Adaptive thresholds (:class:`Penalties`): every denied hit, and every
content block the caller reports with :meth:`RateLimiter.strike`, is a
*strike* against the user.  ``strikes`` strikes within ``strike_window_s``
raise the user's penalty level by one (at most ``max_level``); at level
``n`` every limit of that user is multiplied by ``factor ** n`` (halved per
level by default, never below 1).  Each strike restarts the quiet clock;
each full ``quiet_period_s`` without a strike lowers the level by one, so
the limits relax step by step once the user behaves.

The clock is injectable (``clock=``, a callable returning seconds, like
DRF throttles' ``timer``) so tests can move time.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Protocol

import redis.asyncio
from django.conf import settings
from redis.exceptions import RedisError

from monitoring import metrics
from security.errors import RateLimited
from security.script_batch import ScriptBatch

logger = logging.getLogger(__name__)

Clock = Callable[[], float]

DEFAULT_PREFIX = "chat:sec:"
#: The ``settings.CHAT`` attribute holding each operation's per-minute limit.
LIMIT_SETTINGS: Mapping[str, str] = {
    "join": "join_rate_limit",
    "send": "message_rate_limit",
    "typing": "typing_rate_limit",
    "presence": "presence_rate_limit",
    "history": "history_rate_limit",
    "upload": "upload_rate_limit",
}


class BackendUnavailable(Exception):
    """The shared store (Redis) could not be reached; the caller decides to fail open or closed."""


# --- rules and decisions -------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """At most ``limit`` hits in any window of ``window_s`` seconds."""

    limit: int
    window_s: float

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("a rule's limit must be at least 1")
        if self.window_s <= 0:
            raise ValueError("a rule's window must be positive")

    @property
    def window_ms(self) -> int:
        return max(1, int(round(self.window_s * 1000)))

    def tightened(self, level: int, factor: float) -> Rule:
        """The rule at penalty ``level``: the limit times ``factor ** level``, at least 1."""
        if level <= 0:
            return self
        return replace(self, limit=max(1, math.floor(self.limit * factor**level)))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    #: 0 when allowed; otherwise how long until a retry can succeed.
    retry_after_ms: int
    #: Hits still allowed in the current window after this one.
    remaining: int
    #: The limit that was applied (after any penalty).
    limit: int
    penalty_level: int = 0

    def error(self) -> RateLimited:
        return RateLimited(self.retry_after_ms)

    def raise_if_denied(self) -> None:
        if not self.allowed:
            raise self.error()


@dataclass(frozen=True)
class PenaltyPolicy:
    #: Strikes within ``strike_window_s`` that raise the penalty level by one.
    strikes: int = 3
    strike_window_s: float = 60.0
    #: Each level multiplies every limit of the user by this.
    factor: float = 0.5
    max_level: int = 3
    #: Each full quiet period without a strike lowers the level by one.
    quiet_period_s: float = 300.0

    def __post_init__(self) -> None:
        if self.strikes < 1 or self.max_level < 0 or not 0 < self.factor <= 1:
            raise ValueError("invalid penalty policy")
        if self.strike_window_s <= 0 or self.quiet_period_s <= 0:
            raise ValueError("penalty periods must be positive")

    @property
    def strike_window_ms(self) -> int:
        return max(1, int(round(self.strike_window_s * 1000)))

    @property
    def quiet_ms(self) -> int:
        return max(1, int(round(self.quiet_period_s * 1000)))

    def decayed(self, level: int, last_strike_ms: int, now_ms: int) -> int:
        """The level left after the quiet periods elapsed since the last strike."""
        if level <= 0:
            return 0
        idle = max(0, now_ms - last_strike_ms)
        return max(0, level - idle // self.quiet_ms)


# --- backends ------------------------------------------------------------------------------


class LimiterBackend(Protocol):
    async def hit(self, key: str, limit: int, window_ms: int, now_ms: int) -> tuple[bool, int, int]:
        """Atomically count a hit: ``(allowed, retry_after_ms, remaining)``."""

    async def peek(self, key: str, limit: int, window_ms: int, now_ms: int) -> tuple[bool, int]:
        """Whether a hit would be allowed now, without counting one: ``(allowed, retry_after_ms)``."""

    async def strike(self, subject: str, now_ms: int, policy: PenaltyPolicy) -> int:
        """Record a strike; return the subject's penalty level afterwards."""

    async def penalty(self, subject: str) -> tuple[int, int]:
        """The stored ``(level, last_strike_ms)``, not yet decayed; ``(0, 0)`` when none."""

    async def penalized_hit(
        self, key: str, subject: str, rule: Rule, now_ms: int, policy: PenaltyPolicy
    ) -> tuple[bool, int, int, int, int]:
        """In one step: ``subject``'s decayed level tightens ``rule``, the hit is counted, a denial is a strike.

        Returns ``(allowed, retry_after_ms, remaining, applied_limit, level)``.
        """


class MemoryBackend:
    """Per-process counters; at most ``max_keys`` keys of each kind (least recently used evicted).

    Every method runs without awaiting, so on one event loop each call is
    atomic.  Counts are not shared between processes.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._windows: OrderedDict[str, deque[int]] = OrderedDict()
        self._strikes: OrderedDict[str, deque[int]] = OrderedDict()
        self._levels: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def _entry(self, table: OrderedDict[str, Any], key: str, factory: Callable[[], Any]) -> Any:
        value = table.get(key)
        if value is None:
            value = table[key] = factory()
            while len(table) > self.max_keys:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
        return value

    async def hit(self, key: str, limit: int, window_ms: int, now_ms: int) -> tuple[bool, int, int]:
        log: deque[int] = self._entry(self._windows, key, deque)
        cutoff = now_ms - window_ms
        while log and log[0] <= cutoff:
            log.popleft()
        count = len(log)
        if count < limit:
            log.append(now_ms)
            return True, 0, limit - count - 1
        # The hit at index count - limit must leave the window before count drops below limit.
        return False, max(1, log[count - limit] + window_ms - now_ms), 0

    async def peek(self, key: str, limit: int, window_ms: int, now_ms: int) -> tuple[bool, int]:
        log = self._windows.get(key)
        if log is None:
            return True, 0
        cutoff = now_ms - window_ms
        while log and log[0] <= cutoff:
            log.popleft()
        if len(log) < limit:
            return True, 0
        return False, max(1, log[len(log) - limit] + window_ms - now_ms)

    async def strike(self, subject: str, now_ms: int, policy: PenaltyPolicy) -> int:
        level, last = self._levels.get(subject, (0, 0))
        level = policy.decayed(level, last, now_ms)
        strikes: deque[int] = self._entry(self._strikes, subject, deque)
        cutoff = now_ms - policy.strike_window_ms
        while strikes and strikes[0] <= cutoff:
            strikes.popleft()
        strikes.append(now_ms)
        if len(strikes) >= policy.strikes:
            level = min(policy.max_level, level + 1)
            strikes.clear()
        self._entry(self._levels, subject, lambda: (0, 0))
        self._levels[subject] = (level, now_ms)
        return level

    async def penalty(self, subject: str) -> tuple[int, int]:
        return self._levels.get(subject, (0, 0))

    async def penalized_hit(
        self, key: str, subject: str, rule: Rule, now_ms: int, policy: PenaltyPolicy
    ) -> tuple[bool, int, int, int, int]:
        level = policy.decayed(*self._levels.get(subject, (0, 0)), now_ms)
        limit = rule.tightened(level, policy.factor).limit
        allowed, retry, remaining = await self.hit(key, limit, rule.window_ms, now_ms)
        if not allowed:
            await self.strike(subject, now_ms, policy)
        return allowed, retry, remaining, limit, level


_HIT_LUA = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, window)
  return {1, 0, limit - count - 1}
end
local entry = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
local retry = tonumber(entry[2]) + window - now
if retry < 1 then retry = 1 end
return {0, retry, 0}
"""

#: _HIT_LUA without counting the hit.
_PEEK_LUA = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  return {1, 0}
end
local entry = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
local retry = tonumber(entry[2]) + window - now
if retry < 1 then retry = 1 end
return {0, retry}
"""

#: The subject's penalty level, read and decayed: one level less per quiet period since its last strike.
_DECAYED_LEVEL_LUA = """
local state = redis.call('HMGET', state_key, 'level', 'last')
local level = tonumber(state[1] or '0')
local last = tonumber(state[2] or '0')
if level > 0 then
  local idle = now - last
  if idle < 0 then idle = 0 end
  level = level - math.floor(idle / quiet)
  if level < 0 then level = 0 end
end
"""

#: A strike: counted in the strike window; enough of them raise ``level`` one step (at most ``max_level``).
_STRIKE_STEPS_LUA = """
redis.call('ZREMRANGEBYSCORE', strikes_key, '-inf', now - strike_window)
redis.call('ZADD', strikes_key, now, member)
if redis.call('ZCARD', strikes_key) >= needed then
  level = level + 1
  if level > max_level then level = max_level end
  redis.call('DEL', strikes_key)
else
  redis.call('PEXPIRE', strikes_key, strike_window)
end
redis.call('HSET', state_key, 'level', level, 'last', now)
redis.call('PEXPIRE', state_key, quiet * (max_level + 1))
"""

_STRIKE_LUA = (
    """
local strikes_key = KEYS[1]
local state_key = KEYS[2]
local now = tonumber(ARGV[1])
local strike_window = tonumber(ARGV[2])
local needed = tonumber(ARGV[3])
local max_level = tonumber(ARGV[4])
local quiet = tonumber(ARGV[5])
local member = ARGV[6]
"""
    + _DECAYED_LEVEL_LUA
    + _STRIKE_STEPS_LUA
    + "return level\n"
)

#: _HIT_LUA after the penalty: the subject's decayed level tightens the limit,
#: and a denied hit is a strike (_STRIKE_LUA's steps), all in one round trip.
_PENALIZED_HIT_LUA = (
    """
local key = KEYS[1]
local strikes_key = KEYS[2]
local state_key = KEYS[3]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local base_limit = tonumber(ARGV[3])
local factor = tonumber(ARGV[4])
local strike_window = tonumber(ARGV[5])
local needed = tonumber(ARGV[6])
local max_level = tonumber(ARGV[7])
local quiet = tonumber(ARGV[8])
local member = ARGV[9]
"""
    + _DECAYED_LEVEL_LUA
    + """
local limit = base_limit
if level > 0 then
  limit = math.floor(base_limit * factor ^ level)
  if limit < 1 then limit = 1 end
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  return {1, 0, limit - count - 1, limit, level}
end
local entry = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
local retry = tonumber(entry[2]) + window - now
if retry < 1 then retry = 1 end
local decayed = level
"""
    + _STRIKE_STEPS_LUA
    + "return {0, retry, 0, limit, decayed}\n"
)

#: What a broken or unreachable Redis raises (redis-py wraps most in RedisError).
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)


#: Connections a worker's limiter (or connection tracker) keeps to Redis.  A burst of checks (2,000
#: clients connecting at once) waits up to the timeout for one of them rather than failing open.
REDIS_POOL_SIZE = 50


def redis_client(url: str, timeout_s: float) -> redis.asyncio.Redis:
    """A client whose pool blocks (up to ``timeout_s``) when all its connections are in use."""
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_POOL_SIZE,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )
    return redis.asyncio.Redis(connection_pool=pool)


class RedisBackend:
    """Counters in Redis shared by every worker; each operation is one atomic Lua script.

    Keys (all with a TTL): ``<prefix>rl:<key>`` (a sorted set of hit times),
    ``<prefix>pen:{<subject>}:strikes`` and ``<prefix>pen:{<subject>}:state``
    (the braces keep a subject's two keys in one Redis Cluster slot).
    """

    def __init__(self, client: Any, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        #: The calls of one event-loop turn share a round trip (:mod:`security.script_batch`).
        self.scripts = ScriptBatch(client)
        self._hit = self.scripts.register(_HIT_LUA)
        self._peek = self.scripts.register(_PEEK_LUA)
        self._strike = self.scripts.register(_STRIKE_LUA)
        self._penalized_hit = self.scripts.register(_PENALIZED_HIT_LUA)
        self._member_prefix = secrets.token_hex(4)
        self._counter = itertools.count()

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX, timeout_s: float = 1.0) -> RedisBackend:
        return cls(redis_client(url, timeout_s), prefix=prefix)

    def _member(self, now_ms: int) -> str:
        return f"{now_ms}:{self._member_prefix}:{next(self._counter)}"

    async def hit(self, key: str, limit: int, window_ms: int, now_ms: int) -> tuple[bool, int, int]:
        try:
            allowed, retry, remaining = await self.scripts.run(
                self._hit, [f"{self.prefix}rl:{key}"], [now_ms, window_ms, limit, self._member(now_ms)]
            )
        except REDIS_FAILURES as error:
            raise BackendUnavailable(str(error)) from error
        return bool(allowed), int(retry), int(remaining)

    async def peek(self, key: str, limit: int, window_ms: int, now_ms: int) -> tuple[bool, int]:
        try:
            allowed, retry = await self.scripts.run(self._peek, [f"{self.prefix}rl:{key}"], [now_ms, window_ms, limit])
        except REDIS_FAILURES as error:
            raise BackendUnavailable(str(error)) from error
        return bool(allowed), int(retry)

    def _penalty_keys(self, subject: str) -> list[str]:
        base = f"{self.prefix}pen:{{{subject}}}"
        return [f"{base}:strikes", f"{base}:state"]

    async def strike(self, subject: str, now_ms: int, policy: PenaltyPolicy) -> int:
        args = [
            now_ms,
            policy.strike_window_ms,
            policy.strikes,
            policy.max_level,
            policy.quiet_ms,
            self._member(now_ms),
        ]
        try:
            return int(await self.scripts.run(self._strike, self._penalty_keys(subject), args))
        except REDIS_FAILURES as error:
            raise BackendUnavailable(str(error)) from error

    async def penalty(self, subject: str) -> tuple[int, int]:
        try:
            level, last = await self.client.hmget(self._penalty_keys(subject)[1], "level", "last")
        except REDIS_FAILURES as error:
            raise BackendUnavailable(str(error)) from error
        return int(level or 0), int(last or 0)

    async def penalized_hit(
        self, key: str, subject: str, rule: Rule, now_ms: int, policy: PenaltyPolicy
    ) -> tuple[bool, int, int, int, int]:
        keys = [f"{self.prefix}rl:{key}", *self._penalty_keys(subject)]
        args = [
            now_ms,
            rule.window_ms,
            rule.limit,
            policy.factor,
            policy.strike_window_ms,
            policy.strikes,
            policy.max_level,
            policy.quiet_ms,
            self._member(now_ms),
        ]
        try:
            allowed, retry, remaining, limit, level = await self.scripts.run(self._penalized_hit, keys, args)
        except REDIS_FAILURES as error:
            raise BackendUnavailable(str(error)) from error
        return bool(allowed), int(retry), int(remaining), int(limit), int(level)

    async def aclose(self) -> None:
        await self.client.aclose()


# --- limiter -------------------------------------------------------------------------------


class LogThrottle:
    """Log a recurring condition at most once per ``interval_s`` per key, counting what was suppressed."""

    def __init__(self, interval_s: float = 60.0, clock: Clock = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def should_log(self, key: str) -> tuple[bool, int]:
        """``(log now?, how many were suppressed since the last log)``."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False, 0
        self._last[key] = now
        if len(self._last) > 10_000:  # keys are a small fixed set in practice; never grow unbounded
            self._last = {key: now}
            self._suppressed.clear()
        return True, self._suppressed.pop(key, 0)


_backend_log = LogThrottle()


def backend_down(error: BaseException) -> None:
    log, suppressed = _backend_log.should_log("rate-limit-backend")
    if log:
        logger.warning("rate limit backend unavailable (%s); failing open (%d similar suppressed)", error, suppressed)


class Penalties:
    """Strikes and penalty levels per subject (a user), kept on the limiter's backend."""

    def __init__(self, backend: LimiterBackend, policy: PenaltyPolicy | None = None, *, clock: Clock = time.time):
        self.backend = backend
        self.policy = policy or PenaltyPolicy()
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def strike(self, subject: str | int, *, now_ms: int | None = None) -> int:
        """Count a strike against ``subject``; returns the level afterwards (0 if the backend is down)."""
        now = self._now_ms() if now_ms is None else now_ms
        try:
            return await self.backend.strike(str(subject), now, self.policy)
        except BackendUnavailable as error:
            backend_down(error)
            return 0

    async def level(self, subject: str | int, *, now_ms: int | None = None) -> int:
        now = self._now_ms() if now_ms is None else now_ms
        try:
            level, last = await self.backend.penalty(str(subject))
        except BackendUnavailable as error:
            backend_down(error)
            return 0
        return self.policy.decayed(level, last, now)


class RateLimiter:
    """``await limiter.check("send", user.pk)`` in a handler; raises :class:`RateLimited` when over.

    ``rules`` maps operation names to :class:`Rule` (defaults:
    :func:`rules_from_settings`).  ``penalty_policy=None`` uses the default
    policy; ``penalties=False`` disables adaptive thresholds.
    """

    def __init__(
        self,
        backend: LimiterBackend | None = None,
        *,
        rules: Mapping[str, Rule] | None = None,
        penalty_policy: PenaltyPolicy | None = None,
        penalties: bool = True,
        clock: Clock = time.time,
        fail_open: bool = True,
    ) -> None:
        self.backend: LimiterBackend = backend if backend is not None else MemoryBackend()
        self.rules: dict[str, Rule] = dict(rules if rules is not None else rules_from_settings())
        self.clock = clock
        self.fail_open = fail_open
        self.penalties: Penalties | None = Penalties(self.backend, penalty_policy, clock=clock) if penalties else None

    def rule(self, operation: str) -> Rule:
        try:
            return self.rules[operation]
        except KeyError:
            raise ValueError(f"no rate limit rule for operation {operation!r}") from None

    async def hit(self, key: str, rule: Rule, *, subject: str | int | None = None) -> Decision:
        """Count one hit on ``key``.  With ``subject``, its penalty tightens the rule and a denial is a strike.

        One backend call either way (one Redis round trip).
        """
        now = int(self.clock() * 1000)
        try:
            if subject is not None and self.penalties is not None:
                allowed, retry_after, remaining, limit, level = await self.backend.penalized_hit(
                    key, str(subject), rule, now, self.penalties.policy
                )
            else:
                allowed, retry_after, remaining = await self.backend.hit(key, rule.limit, rule.window_ms, now)
                limit, level = rule.limit, 0
        except BackendUnavailable as error:
            backend_down(error)
            if self.fail_open:
                return Decision(True, 0, rule.limit, rule.limit, 0)
            return Decision(False, 1000, 0, rule.limit, 0)
        return Decision(allowed, retry_after, remaining, limit, level)

    async def peek(self, key: str, rule: Rule) -> Decision:
        """Whether a hit on ``key`` would be allowed now, without counting it (``remaining`` is not computed)."""
        now = int(self.clock() * 1000)
        try:
            allowed, retry_after = await self.backend.peek(key, rule.limit, rule.window_ms, now)
        except BackendUnavailable as error:
            backend_down(error)
            allowed, retry_after = self.fail_open, 0 if self.fail_open else 1000
        return Decision(allowed, retry_after, 0, rule.limit, 0)

    async def check(self, operation: str, subject: str | int) -> Decision:
        """Count a hit of ``operation`` by ``subject`` (a user id); raise :class:`RateLimited` if denied."""
        decision = await self.hit(f"{operation}:{subject}", self.rule(operation), subject=subject)
        metrics.rate_limit_checked(operation, decision.allowed)
        decision.raise_if_denied()
        return decision

    async def strike(self, subject: str | int) -> int:
        """Report misbehaviour other than a denied hit (e.g. a blocked message); returns the new level."""
        if self.penalties is None:
            return 0
        return await self.penalties.strike(subject)


# --- settings ------------------------------------------------------------------------------


def rules_from_settings() -> dict[str, Rule]:
    """One rule per operation, each ``<n>`` per 60 s, ``n`` from ``settings.CHAT.<op>_rate_limit``."""
    return {operation: Rule(max(1, int(getattr(settings.CHAT, name))), 60.0) for operation, name in LIMIT_SETTINGS.items()}


def penalty_policy_from_settings() -> PenaltyPolicy:
    defaults = PenaltyPolicy()
    return PenaltyPolicy(
        strikes=int(settings.CHAT.penalty_strikes),
        strike_window_s=float(settings.CHAT.penalty_strike_window_s),
        factor=defaults.factor,
        max_level=int(settings.CHAT.penalty_max_level),
        quiet_period_s=float(settings.CHAT.penalty_quiet_s),
    )


def backend_from_settings(*, prefix: str = DEFAULT_PREFIX) -> LimiterBackend:
    """Redis when ``settings.CHAT.redis_url`` is set (shared by all workers), else per-process memory."""
    url = settings.CHAT.redis_url
    if url:
        return RedisBackend.from_url(url, prefix=prefix)
    return MemoryBackend()


def limiter_from_settings(*, backend: LimiterBackend | None = None, clock: Clock = time.time) -> RateLimiter:
    """The limiter the server uses: create one per process (its Redis client belongs to one event loop)."""
    return RateLimiter(
        backend if backend is not None else backend_from_settings(),
        rules=rules_from_settings(),
        penalty_policy=penalty_policy_from_settings(),
        clock=clock,
    )
