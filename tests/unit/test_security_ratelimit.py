"""security.ratelimit with the memory backend and a fake clock: windows, retry_after, penalties."""

from __future__ import annotations

import logging

import pytest

from chat.errors import ChatError, wire_error
from security import ratelimit
from security.errors import RateLimited
from security.ratelimit import (
    BackendUnavailable,
    Decision,
    LogThrottle,
    MemoryBackend,
    Penalties,
    PenaltyPolicy,
    RateLimiter,
    RedisBackend,
    Rule,
    limiter_from_settings,
    rules_from_settings,
)
from tests.unit.security_support import FakeClock, override_chat

pytestmark = pytest.mark.usefixtures("default_security_settings")


def make_limiter(clock: FakeClock, **kwargs) -> RateLimiter:
    return RateLimiter(MemoryBackend(), clock=clock, **kwargs)


# --- rules ------------------------------------------------------------------------------------


def test_rule_validation_and_tightening() -> None:
    with pytest.raises(ValueError):
        Rule(0, 60)
    with pytest.raises(ValueError):
        Rule(1, 0)
    rule = Rule(30, 60)
    assert rule.window_ms == 60_000
    assert rule.tightened(0, 0.5) is rule
    assert [rule.tightened(level, 0.5).limit for level in (1, 2, 3, 4, 5, 6)] == [15, 7, 3, 1, 1, 1]


def test_default_rules() -> None:
    rules = rules_from_settings()
    assert rules == {
        "join": Rule(20, 60),
        "send": Rule(30, 60),
        "typing": Rule(60, 60),
        "presence": Rule(30, 60),
        "history": Rule(60, 60),
        "upload": Rule(20, 60),
    }


def test_rules_from_settings(settings) -> None:
    override_chat(settings, message_rate_limit=5, typing_rate_limit=0)
    rules = rules_from_settings()
    assert rules["send"] == Rule(5, 60)
    assert rules["typing"] == Rule(1, 60)  # never below 1
    assert rules["join"] == Rule(20, 60)


# --- the sliding window -------------------------------------------------------------------------


async def test_window_allows_limit_then_denies_with_exact_retry_after(clock: FakeClock) -> None:
    limiter = make_limiter(clock, penalties=False)
    rule = Rule(3, 10)
    decisions = []
    for _ in range(3):
        decisions.append(await limiter.hit("k", rule))
        clock.advance(1)
    assert [(d.allowed, d.remaining, d.retry_after_ms) for d in decisions] == [(True, 2, 0), (True, 1, 0), (True, 0, 0)]
    # t=3: the first hit (t=0) leaves the window at t=10.
    denied = await limiter.hit("k", rule)
    assert (denied.allowed, denied.retry_after_ms, denied.remaining, denied.limit) == (False, 7_000, 0, 3)
    clock.advance(6.5)  # t=9.5
    assert (await limiter.hit("k", rule)).retry_after_ms == 500
    clock.advance(0.5)  # t=10: exactly when the first hit expires
    assert (await limiter.hit("k", rule)).allowed
    # t=10: hits at 1, 2, 10 in the window; the next slot opens when t=1 expires, at t=11.
    assert (await limiter.hit("k", rule)).retry_after_ms == 1_000


async def test_window_is_sliding_not_fixed(clock: FakeClock) -> None:
    limiter = make_limiter(clock, penalties=False)
    rule = Rule(2, 10)
    clock.advance(9)
    assert (await limiter.hit("k", rule)).allowed
    assert (await limiter.hit("k", rule)).allowed
    clock.advance(2)  # a fixed window would have reset at t=10
    denied = await limiter.hit("k", rule)
    assert not denied.allowed and denied.retry_after_ms == 8_000


async def test_denied_hits_are_not_counted(clock: FakeClock) -> None:
    limiter = make_limiter(clock, penalties=False)
    rule = Rule(1, 10)
    assert (await limiter.hit("k", rule)).allowed
    for _ in range(20):
        clock.advance(0.4)
        assert not (await limiter.hit("k", rule)).allowed
    clock.advance(2)  # t=10: only the one allowed hit ever counted
    assert (await limiter.hit("k", rule)).allowed


async def test_keys_are_independent(clock: FakeClock) -> None:
    limiter = make_limiter(clock, penalties=False)
    rule = Rule(1, 60)
    assert (await limiter.hit("send:1", rule)).allowed
    assert (await limiter.hit("send:2", rule)).allowed
    assert (await limiter.hit("typing:1", rule)).allowed
    assert not (await limiter.hit("send:1", rule)).allowed


async def test_check_raises_rate_limited(clock: FakeClock) -> None:
    limiter = make_limiter(clock, rules={"send": Rule(2, 60)}, penalties=False)
    first = await limiter.check("send", 42)
    assert isinstance(first, Decision) and first.remaining == 1
    await limiter.check("send", 42)
    clock.advance(15)
    with pytest.raises(RateLimited) as caught:
        await limiter.check("send", 42)
    error = caught.value
    assert isinstance(error, ChatError)
    assert error.code == "rate_limited" and error.retry_after_ms == 45_000
    assert error.as_payload() == {"error": RateLimited.default_message, "code": "rate_limited", "retryAfter": 45_000}
    assert wire_error(error).http_status == 429
    await limiter.check("send", 43)  # another user


async def test_unknown_operation(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        await make_limiter(clock).check("teleport", 1)


async def test_memory_backend_is_bounded() -> None:
    backend = MemoryBackend(max_keys=3)
    for key in "abcd":
        await backend.hit(key, 1, 60_000, 0)
    assert list(backend._windows) == ["b", "c", "d"]
    await backend.hit("b", 5, 60_000, 1)  # touching a key makes it recent
    await backend.hit("e", 1, 60_000, 2)
    assert list(backend._windows) == ["d", "b", "e"]


# --- penalties --------------------------------------------------------------------------------------


async def test_repeated_denials_tighten_the_limit_step_by_step(clock: FakeClock) -> None:
    policy = PenaltyPolicy(strikes=3, strike_window_s=60, factor=0.5, max_level=3, quiet_period_s=300)
    limiter = make_limiter(clock, rules={"send": Rule(8, 60)}, penalty_policy=policy)
    for _ in range(8):
        await limiter.check("send", "u")
    levels = []
    for _ in range(12):
        with pytest.raises(RateLimited):
            await limiter.check("send", "u")
        levels.append(await limiter.penalties.level("u"))
    assert levels == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3]  # three strikes per level, capped at max_level
    # The tightened limit applies to every operation of the user, not to other users.
    decision = await limiter.hit("history:u", Rule(8, 60), subject="u")
    assert (decision.limit, decision.penalty_level, decision.remaining) == (1, 3, 0)
    assert (await limiter.hit("history:v", Rule(8, 60), subject="v")).limit == 8


async def test_penalties_relax_one_level_per_quiet_period(clock: FakeClock) -> None:
    policy = PenaltyPolicy(strikes=1, strike_window_s=60, factor=0.5, max_level=3, quiet_period_s=300)
    limiter = make_limiter(clock, rules={"send": Rule(8, 60)}, penalty_policy=policy)
    for _ in range(3):
        await limiter.strike("u")  # e.g. three blocked messages
    assert await limiter.penalties.level("u") == 3
    assert (await limiter.hit("send:u", Rule(8, 60), subject="u")).limit == 1
    clock.advance(299)
    assert await limiter.penalties.level("u") == 3
    clock.advance(1)
    assert await limiter.penalties.level("u") == 2
    assert (await limiter.hit("send:u", Rule(8, 60), subject="u")).limit == 2
    clock.advance(300)
    assert await limiter.penalties.level("u") == 1
    clock.advance(300)
    assert await limiter.penalties.level("u") == 0
    assert (await limiter.hit("send:u", Rule(8, 60), subject="u")).limit == 8


async def test_a_strike_restarts_the_quiet_clock(clock: FakeClock) -> None:
    policy = PenaltyPolicy(strikes=2, strike_window_s=60, max_level=3, quiet_period_s=300)
    penalties = Penalties(MemoryBackend(), policy, clock=clock)
    await penalties.strike("u")
    assert await penalties.strike("u") == 1
    clock.advance(250)
    assert await penalties.strike("u") == 1  # one strike: no new level, but the clock restarts
    clock.advance(250)
    assert await penalties.level("u") == 1
    clock.advance(50)
    assert await penalties.level("u") == 0


async def test_strikes_outside_the_window_do_not_add_up(clock: FakeClock) -> None:
    penalties = Penalties(MemoryBackend(), PenaltyPolicy(strikes=3, strike_window_s=60), clock=clock)
    for _ in range(5):
        assert await penalties.strike("u") == 0
        clock.advance(31)  # at most two strikes in any 60 s
    assert await penalties.level("u") == 0


async def test_level_decays_before_a_new_level_is_added(clock: FakeClock) -> None:
    policy = PenaltyPolicy(strikes=1, strike_window_s=60, max_level=3, quiet_period_s=100)
    penalties = Penalties(MemoryBackend(), policy, clock=clock)
    await penalties.strike("u")
    await penalties.strike("u")
    clock.advance(250)  # two quiet periods: level 2 -> 0
    assert await penalties.strike("u") == 1


async def test_tightened_limit_counts_earlier_hits(clock: FakeClock) -> None:
    policy = PenaltyPolicy(strikes=1, strike_window_s=60, max_level=3, quiet_period_s=600)
    limiter = make_limiter(clock, penalty_policy=policy)
    rule = Rule(8, 60)
    for second in range(6):
        clock.now = 1_700_000_000.0 + second
        assert (await limiter.hit("k", rule, subject="u")).allowed
    await limiter.strike("u")  # limit 8 -> 4 with 6 hits in the window
    clock.now = 1_700_000_010.0
    denied = await limiter.hit("k", rule, subject="u")
    # 6 hits at t=0..5, limit 4: three must expire, i.e. the one at t=2 (at t=62).
    assert (denied.allowed, denied.limit, denied.retry_after_ms) == (False, 4, 52_000)


async def test_penalties_can_be_disabled(clock: FakeClock) -> None:
    limiter = make_limiter(clock, rules={"send": Rule(1, 60)}, penalties=False)
    assert limiter.penalties is None
    await limiter.check("send", "u")
    for _ in range(10):
        with pytest.raises(RateLimited):
            await limiter.check("send", "u")
    assert await limiter.strike("u") == 0


def test_penalty_policy_validation() -> None:
    for bad in ({"strikes": 0}, {"factor": 0}, {"factor": 1.5}, {"quiet_period_s": 0}, {"max_level": -1}):
        with pytest.raises(ValueError):
            PenaltyPolicy(**bad)
    assert PenaltyPolicy().decayed(3, 0, 10**9) == 0


def test_penalty_policy_from_settings(settings) -> None:
    override_chat(settings, penalty_strikes=5, penalty_strike_window_s=30, penalty_quiet_s=60, penalty_max_level=2)
    policy = ratelimit.penalty_policy_from_settings()
    assert (policy.strikes, policy.strike_window_s, policy.quiet_period_s, policy.max_level) == (5, 30, 60, 2)


# --- failure handling -------------------------------------------------------------------------------


class DownBackend(MemoryBackend):
    async def hit(self, *args):
        raise BackendUnavailable("connection refused")

    async def strike(self, *args):
        raise BackendUnavailable("connection refused")

    async def penalty(self, *args):
        raise BackendUnavailable("connection refused")


async def test_fails_open_when_the_backend_is_down(clock: FakeClock, caplog) -> None:
    ratelimit._backend_log = LogThrottle()
    limiter = RateLimiter(DownBackend(), clock=clock, rules={"send": Rule(1, 60)})
    with caplog.at_level(logging.WARNING, logger="security.ratelimit"):
        for _ in range(5):
            decision = await limiter.check("send", "u")
            assert decision.allowed
        assert await limiter.strike("u") == 0
    assert sum("failing open" in record.message for record in caplog.records) == 1


async def test_can_fail_closed(clock: FakeClock) -> None:
    limiter = RateLimiter(DownBackend(), clock=clock, rules={"send": Rule(1, 60)}, fail_open=False)
    with pytest.raises(RateLimited) as caught:
        await limiter.check("send", "u")
    assert caught.value.retry_after_ms == 1_000


def test_log_throttle() -> None:
    clock = FakeClock(0)
    throttle = LogThrottle(60, clock=clock)
    assert throttle.should_log("a") == (True, 0)
    assert throttle.should_log("a") == (False, 0)
    assert throttle.should_log("a") == (False, 0)
    assert throttle.should_log("b") == (True, 0)
    clock.advance(60)
    assert throttle.should_log("a") == (True, 2)


# --- construction from settings -------------------------------------------------------------------


def test_limiter_from_settings_uses_memory_without_redis(settings) -> None:
    override_chat(settings, redis_url="")
    limiter = limiter_from_settings()
    assert isinstance(limiter.backend, MemoryBackend)
    assert limiter.rules["send"] == Rule(30, 60)
    assert limiter.penalties is not None and limiter.penalties.policy == PenaltyPolicy()


async def test_limiter_from_settings_uses_redis_when_configured(settings) -> None:
    override_chat(settings, redis_url="redis://127.0.0.1:6379/10")
    limiter = limiter_from_settings()  # connects lazily: nothing is sent here
    assert isinstance(limiter.backend, RedisBackend)
    assert limiter.backend.prefix == ratelimit.DEFAULT_PREFIX
    await limiter.backend.aclose()


# --- failed CONNECTs per address (issue #17: "failed CONNECTs can be retried without limit") --------


async def test_peek_does_not_count(clock: FakeClock) -> None:
    limiter = make_limiter(clock, penalties=False)
    rule = Rule(2, 10)
    assert (await limiter.peek("k", rule)).allowed
    await limiter.hit("k", rule)
    clock.advance(1)
    await limiter.hit("k", rule)
    for _ in range(3):
        decision = await limiter.peek("k", rule)
        assert (decision.allowed, decision.retry_after_ms) == (False, 9_000)
    clock.advance(9)
    assert (await limiter.peek("k", rule)).allowed
    assert (await limiter.hit("k", rule)).allowed


async def test_failed_connects_can_not_be_retried_without_limit(clock: FakeClock) -> None:
    from security.connect_attempts import FailedConnects
    from security.errors import TooManyFailedConnects

    attempts = FailedConnects(make_limiter(clock, penalties=False), 3)
    for _ in range(3):
        await attempts.check("10.0.0.1")
        await attempts.failed("10.0.0.1")
        clock.advance(1)
    with pytest.raises(TooManyFailedConnects) as refused:
        await attempts.check("10.0.0.1")
    assert refused.value.as_payload()["retryAfter"] == 57_000 and refused.value.code == "too_many_failed_connects"
    assert wire_error(refused.value).http_status == 429
    await attempts.check("10.0.0.2")  # per address
    clock.advance(57)
    await attempts.check("10.0.0.1")
