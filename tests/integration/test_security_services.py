"""The security services against real backends.

Redis (127.0.0.1:6379, database 10, a random key prefix per test): two
limiter / tracker instances with their own clients stand for two worker
processes.  A missing Redis skips these tests locally and fails them in CI
(``CI=true``).

The database (pytest-django's test database, SQLite by default): security
events are really written, including while the database fails and recovers.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import time
from typing import AsyncIterator

import pytest
import redis.asyncio
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import OperationalError

from chat.models import Workspace
from security import events
from security.connections import RedisConnectionTracker
from security.content import RepeatTracker
from security.errors import RateLimited, SpamDetected
from security.events import EventRecorder
from security.models import SecurityEvent, SecurityEventType
from security.ratelimit import MemoryBackend, PenaltyPolicy, RateLimiter, RedisBackend, Rule

REDIS_URL = os.environ.get("CHAT_TEST_SECURITY_REDIS_URL", "redis://127.0.0.1:6379/10")
IN_CI = os.environ.get("CI") == "true"


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _client() -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A fresh key prefix on a reachable Redis; its keys are deleted afterwards."""
    probe = _client()
    try:
        await probe.ping()
    except Exception as error:
        await probe.aclose()
        message = f"Redis at {REDIS_URL} is not available: {error}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: a missing service is a failure, not a skip)", pytrace=False)
        pytest.skip(message)
    prefix = f"test:security:{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        keys = [key async for key in probe.scan_iter(match=f"{prefix}*")]
        if keys:
            await probe.delete(*keys)
        await probe.aclose()


@pytest.fixture
async def workers(redis_prefix: str) -> AsyncIterator[tuple[RedisBackend, RedisBackend]]:
    """Two backends with separate connections, as two worker processes would have."""
    first, second = RedisBackend(_client(), prefix=redis_prefix), RedisBackend(_client(), prefix=redis_prefix)
    yield first, second
    await first.aclose()
    await second.aclose()


# --- rate limits shared through Redis ----------------------------------------------------------------


@pytest.mark.services
async def test_two_workers_share_one_window(workers) -> None:
    clock = FakeClock()
    a, b = (RateLimiter(backend, clock=clock, penalties=False) for backend in workers)
    rule = Rule(5, 10)
    allowed = []
    for n in range(5):
        limiter = a if n % 2 == 0 else b
        allowed.append((await limiter.hit("send:1", rule)).allowed)
        clock.advance(1)
    assert allowed == [True] * 5
    # t=5: both workers see the user at the limit; the hit at t=0 frees a slot at t=10.
    for limiter in (a, b):
        decision = await limiter.hit("send:1", rule)
        assert (decision.allowed, decision.retry_after_ms, decision.remaining) == (False, 5_000, 0)
    assert (await b.hit("send:2", rule)).allowed  # another user
    clock.advance(5)
    assert (await a.hit("send:1", rule)).allowed
    assert not (await b.hit("send:1", rule)).allowed


@pytest.mark.services
async def test_failed_connects_are_shared_by_workers(workers) -> None:
    """Issue #17 ("failed CONNECTs can be retried without limit"): the count is per address, across workers."""
    from security.connect_attempts import FailedConnects
    from security.errors import TooManyFailedConnects

    clock = FakeClock()
    a, b = (FailedConnects(RateLimiter(backend, clock=clock, penalties=False), 4) for backend in workers)
    for n in range(4):
        await (a if n % 2 else b).check("10.0.0.1")
        await (a if n % 2 else b).failed("10.0.0.1")
        clock.advance(1)
    for worker in (a, b):
        with pytest.raises(TooManyFailedConnects) as refused:
            await worker.check("10.0.0.1")
        assert refused.value.retry_after_ms == 56_000
    await a.check("10.0.0.2")
    clock.advance(56)
    await b.check("10.0.0.1")


@pytest.mark.services
async def test_keys_expire(workers, redis_prefix: str) -> None:
    limiter = RateLimiter(workers[0], penalties=False)
    await limiter.hit("send:1", Rule(5, 2))
    probe = workers[0].client
    ttl = await probe.pttl(f"{redis_prefix}rl:send:1")
    assert 0 < ttl <= 2_000


@pytest.mark.services
async def test_concurrent_hits_never_exceed_the_limit(workers) -> None:
    a, b = (RateLimiter(backend, penalties=False) for backend in workers)
    rule = Rule(10, 60)
    decisions = await asyncio.gather(*(limiter.hit("burst", rule) for limiter in (a, b) for _ in range(25)))
    assert sum(decision.allowed for decision in decisions) == 10


@pytest.mark.services
async def test_penalties_are_shared_and_relax(workers) -> None:
    clock = FakeClock()
    policy = PenaltyPolicy(strikes=2, strike_window_s=60, factor=0.5, max_level=2, quiet_period_s=100)
    a, b = (
        RateLimiter(backend, clock=clock, penalty_policy=policy, rules={"send": Rule(8, 60)}) for backend in workers
    )
    await a.strike("u")
    assert await b.strike("u") == 1  # the second strike, on another worker, raises the level
    decision = await a.check("send", "u")
    assert (decision.limit, decision.penalty_level) == (4, 1)
    for _ in range(3):
        await b.check("send", "u")
    with pytest.raises(RateLimited):
        await a.check("send", "u")  # 4 hits used up the halved limit; this denial is a strike
    with pytest.raises(RateLimited):
        await b.check("send", "u")  # the second strike: level 2
    assert await a.penalties.level("u") == 2
    clock.advance(100)
    assert await b.penalties.level("u") == 1
    clock.advance(100)
    assert await a.penalties.level("u") == 0


def _count_round_trips(backend: RedisBackend) -> list[int]:
    """Every pipeline the backend sends (one round trip each), as the number of commands in it."""
    sent: list[int] = []
    pipeline = backend.client.pipeline

    def counting_pipeline(*args, **kwargs):
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute

        async def counted(*a, **kw):
            sent.append(len(pipe.command_stack))
            return await execute(*a, **kw)

        pipe.execute = counted
        return pipe

    backend.client.pipeline = counting_pipeline
    return sent


@pytest.mark.services
async def test_a_check_with_its_penalty_is_one_redis_round_trip(workers) -> None:
    backend = workers[0]
    limiter = RateLimiter(backend, rules={"send": Rule(3, 60)})
    await limiter.check("send", "warm-up")  # Redis caches the script (a first EVALSHA may have to load it)
    round_trips = _count_round_trips(backend)
    for _ in range(5):  # allowed, allowed, allowed, then denied with a strike, twice
        try:
            await limiter.check("send", "u")
        except RateLimited:
            pass
    assert round_trips == [1] * 5


@pytest.mark.services
async def test_the_checks_of_one_event_loop_turn_share_a_round_trip(workers) -> None:
    """Issue #19: under load, a worker's rate-limit and repeat checks go to Redis in pipelines, not one by one."""
    backend = workers[0]
    limiter = RateLimiter(backend, rules={"send": Rule(30, 60)}, penalties=True)
    tracker = RepeatTracker(backend, max_repeats=2, window_s=60)
    await limiter.check("send", "warm-up")
    await tracker.check("warm-up", "hello")
    round_trips = _count_round_trips(backend)

    async def send(user: int) -> bool:
        try:
            await limiter.check("send", f"u{user % 5}")
            await tracker.check(user % 5, "the same words")
        except (RateLimited, SpamDetected):
            return False
        return True

    outcomes = await asyncio.gather(*(send(user) for user in range(200)))
    # 5 users x 30 sends allowed by the limit; of those, 2 per user pass the repeat tracker.
    assert sum(outcomes) == 10
    assert sum(round_trips) == 200 + 150  # every check made, each once
    assert len(round_trips) <= 4, round_trips  # in a few pipelines, not 350 round trips


@pytest.mark.services
async def test_a_script_redis_does_not_have_is_loaded(workers) -> None:
    """After a Redis restart the cached scripts are gone: each call is sent again by itself, which loads it."""
    batch = workers[0].scripts
    never_sent = batch.register(f"-- {secrets.token_hex(8)}\nreturn ARGV[1] .. KEYS[1]")
    replies = await asyncio.gather(*(batch.run(never_sent, [f"k{n}"], [f"v{n}"]) for n in range(3)))
    assert replies == [b"v0k0", b"v1k1", b"v2k2"]


@pytest.mark.services
async def test_the_one_script_decides_as_the_memory_backend_does(workers) -> None:
    """The same hits, strikes and quiet periods give the same decisions on Redis and in memory."""
    policy = PenaltyPolicy(strikes=2, strike_window_s=5, factor=0.5, max_level=3, quiet_period_s=7)
    rules = {"send": Rule(6, 4)}
    redis_clock, memory_clock = FakeClock(), FakeClock()
    on_redis = RateLimiter(workers[0], clock=redis_clock, penalty_policy=policy, rules=rules)
    in_memory = RateLimiter(MemoryBackend(), clock=memory_clock, penalty_policy=policy, rules=rules)
    rng = random.Random(7)
    for step in range(400):
        action = rng.random()
        if action < 0.15:
            pause = rng.choice((0.1, 0.5, 1.0, 3.0, 8.0))
            redis_clock.advance(pause)
            memory_clock.advance(pause)
            continue
        if action < 0.2:
            assert await on_redis.strike("u") == await in_memory.strike("u"), step
            continue
        a, b = await on_redis.hit("send:u", rules["send"], subject="u"), await in_memory.hit(
            "send:u", rules["send"], subject="u"
        )
        assert a == b, step


@pytest.mark.services
async def test_repeat_tracker_is_shared(workers) -> None:
    clock = FakeClock()
    a, b = (RepeatTracker(backend, max_repeats=2, window_s=60, clock=clock) for backend in workers)
    await a.check(1, "spam spam")
    await b.check(1, "SPAM  spam")
    with pytest.raises(SpamDetected):
        await a.check(1, "spam spam")
    keys = [key async for key in workers[0].client.scan_iter(match=f"{workers[0].prefix}*")]
    assert keys and all(b"spam" not in key for key in keys)


@pytest.mark.services
async def test_unreachable_redis_fails_open() -> None:
    # Port 1 on the loopback: nothing listens there, so connecting fails at once.
    backend = RedisBackend.from_url("redis://127.0.0.1:1/0", timeout_s=0.5)
    limiter = RateLimiter(backend, rules={"send": Rule(1, 60)})
    for _ in range(3):
        assert (await limiter.check("send", "u")).allowed
    tracker = RedisConnectionTracker.from_url("redis://127.0.0.1:1/0", timeout_s=0.5, limit=1, ttl_s=5)
    assert await tracker.acquire(1, "a") and await tracker.acquire(1, "b")
    await backend.aclose()
    await tracker.aclose()


# --- connection limits shared through Redis ----------------------------------------------------------


@pytest.fixture
async def trackers(redis_prefix: str) -> AsyncIterator[list[RedisConnectionTracker]]:
    made: list[RedisConnectionTracker] = []

    def make(**kwargs) -> RedisConnectionTracker:
        tracker = RedisConnectionTracker(_client(), prefix=redis_prefix, **kwargs)
        made.append(tracker)
        return tracker

    yield make  # type: ignore[misc]
    for tracker in made:
        await tracker.aclose()


@pytest.mark.services
async def test_connection_limit_across_workers(trackers) -> None:
    a, b = trackers(limit=3, ttl_s=30), trackers(limit=3, ttl_s=30)
    assert await a.acquire(1, "a1") and await a.acquire(1, "a2")
    assert await b.acquire(1, "b1")
    assert not await b.acquire(1, "b2")
    assert not await a.acquire(1, "a3")
    assert await b.acquire(2, "other-user")
    assert await a.count(1) == 3 == await b.count(1)
    await a.release(1, "a1")
    assert await b.acquire(1, "b2")
    assert await a.acquire(1, "a2")  # re-acquiring an id it holds is idempotent


@pytest.mark.services
async def test_concurrent_acquires_respect_the_limit(trackers) -> None:
    a, b = trackers(limit=5, ttl_s=30), trackers(limit=5, ttl_s=30)
    results = await asyncio.gather(*(t.acquire(1, f"{n}-{id(t)}") for t in (a, b) for n in range(10)))
    assert sum(results) == 5


@pytest.mark.services
async def test_dead_workers_entries_heal_after_the_ttl(trackers, redis_prefix: str) -> None:
    dead, alive = trackers(limit=2, ttl_s=0.5), trackers(limit=2, ttl_s=0.5)
    assert await dead.acquire(1, "d1") and await dead.acquire(1, "d2")
    assert not await alive.acquire(1, "a1")
    # The "dead" worker never refreshes; its entries stop counting within the TTL.
    await asyncio.sleep(0.6)
    assert await alive.count(1) == 0
    assert await alive.acquire(1, "a1")
    ttl = await alive.client.pttl(f"{redis_prefix}conn:1")
    assert 0 < ttl <= 500


@pytest.mark.services
async def test_heartbeat_keeps_a_live_workers_entries(trackers) -> None:
    live, other = trackers(limit=1, ttl_s=0.3), trackers(limit=1, ttl_s=0.3)
    assert await live.acquire(1, "l1")
    live.start_heartbeat()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert not await other.acquire(1, "o1")
        await asyncio.sleep(0.05)
    await live.stop_heartbeat()
    await asyncio.sleep(0.4)
    assert await other.acquire(1, "o1")


# --- security events in the database -------------------------------------------------------------------


@pytest.fixture
async def recorder() -> AsyncIterator[EventRecorder]:
    rec = EventRecorder(backoff_initial_s=0.02, backoff_max_s=0.1)
    yield rec
    await rec.close(timeout=5)


def _rows() -> list[SecurityEvent]:
    return list(SecurityEvent.objects.order_by("id"))


def _make_user_and_workspace():
    user = get_user_model().objects.create_user("mallory", password="x" * 12)
    workspace = Workspace.objects.create(slug="acme", name="Acme")
    return user, workspace


SCOPE = {"type": "websocket", "client": ["198.51.100.7", 40000], "headers": [(b"user-agent", b"evil-bot/1.0")]}


async def test_events_are_written(transactional_db, recorder: EventRecorder) -> None:
    user, workspace = await database_sync_to_async(_make_user_and_workspace)()
    recorder.record(
        SecurityEventType.MESSAGE_BLOCKED,
        user=user,
        workspace=workspace,
        session_key="sess-1",
        scope=SCOPE,
        detail={"reason": "script_injection", "content": "<script>alert(1)</script>", "token": "chat_secretsecret"},
    )
    recorder.record(SecurityEventType.CONNECTION_LIMIT_EXCEEDED, user=user.pk, detail={"limit": 5})
    assert await recorder.flush(timeout=10)
    rows = await database_sync_to_async(_rows)()
    assert [row.type for row in rows] == ["message_blocked", "connection_limit_exceeded"]
    blocked = rows[0]
    assert (blocked.user_id, blocked.workspace_id, blocked.session_key) == (user.pk, workspace.pk, "sess-1")
    assert (blocked.ip, blocked.user_agent) == ("198.51.100.7", "evil-bot/1.0")
    assert blocked.detail == {"reason": "script_injection", "content": "[redacted]", "token": "[redacted]"}
    assert rows[1].detail == {"limit": 5} and rows[1].ip is None


async def test_events_survive_a_database_outage(transactional_db, recorder: EventRecorder, monkeypatch) -> None:
    real_write = events.write_rows
    failures = []

    def flaky_write(rows):
        if len(failures) < 2:
            failures.append(len(rows))
            raise OperationalError("database is locked")
        real_write(rows)

    monkeypatch.setattr(events, "write_rows", flaky_write)
    slowest = 0.0
    for n in range(20):
        start = time.perf_counter()
        recorder.record(SecurityEventType.RATE_LIMIT_EXCEEDED, scope=SCOPE, detail={"n": n})  # never raises
        slowest = max(slowest, time.perf_counter() - start)
        if n == 0:
            await asyncio.sleep(0.05)  # let the writer hit the failing database with the first event
    assert slowest < 0.005, "record() must not wait for the database"
    assert await recorder.flush(timeout=10)
    assert len(failures) == 2
    rows = await database_sync_to_async(_rows)()
    assert [row.detail["n"] for row in rows] == list(range(20))
    assert recorder.dropped == 0 and recorder.written == 20


async def test_event_of_a_deleted_user_is_kept_without_the_link(transactional_db, recorder: EventRecorder) -> None:
    user, _ = await database_sync_to_async(_make_user_and_workspace)()
    recorder.record(SecurityEventType.AUTHENTICATION_FAILED, user=user.pk + 1000, detail={"why": "no such user"})
    recorder.record(SecurityEventType.AUTHENTICATION_FAILED, user=user.pk)
    assert await recorder.flush(timeout=10)
    rows = await database_sync_to_async(_rows)()
    assert sorted((row.user_id or 0) for row in rows) == sorted([0, user.pk])


async def test_record_from_database_threads(transactional_db) -> None:
    """From sync code in a database thread: written there when no writer runs, else by the writer."""
    recorder = EventRecorder(backoff_initial_s=0.02)
    await database_sync_to_async(recorder.record)(SecurityEventType.AUTHENTICATION_FAILED, detail={"n": 1})
    assert await database_sync_to_async(SecurityEvent.objects.count)() == 1  # no writer yet: written at once
    recorder.record(SecurityEventType.AUTHENTICATION_FAILED, detail={"n": 2})  # starts the writer
    await database_sync_to_async(recorder.record)(SecurityEventType.AUTHENTICATION_FAILED, detail={"n": 3})
    assert await recorder.flush(timeout=10)
    rows = await database_sync_to_async(_rows)()
    assert [row.detail["n"] for row in rows] == [1, 2, 3]
    await recorder.close()


@pytest.mark.django_db
def test_housekeeping_forgets_socket_tokens_long_expired_but_keeps_recent_ones(django_user_model):
    from datetime import timedelta

    from django.utils import timezone

    from security.models import SocketToken

    user = django_user_model.objects.create_user("token-owner")
    old, _ = SocketToken.issue(user, 60)
    recent, _ = SocketToken.issue(user, 60)
    SocketToken.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(hours=2))
    SocketToken.objects.filter(pk=recent.pk).update(expires_at=timezone.now() - timedelta(minutes=5))
    assert SocketToken.purge_expired() == 1
    assert list(SocketToken.objects.values_list("pk", flat=True)) == [recent.pk]
