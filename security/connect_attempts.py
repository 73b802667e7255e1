"""Failed CONNECTs per client address: past the limit, an address is refused before authenticating.

Why: a refused CONNECT leaves the Engine.IO connection open, so without a
limit a client could guess tokens (or make the server ask the external
verifier) as fast as it can send ``40{...}``.  Only failures count, so a
busy office behind one address connects freely as long as its tokens work.

Counts live on the rate limiter's backend (:mod:`security.ratelimit`:
per process, or Redis shared by every worker) in a sliding window of
``window_s``; its clock is injectable like the limiter's.
"""

from __future__ import annotations

from security.errors import TooManyFailedConnects
from security.ratelimit import RateLimiter, Rule

WINDOW_S = 60.0


class FailedConnects:
    """``await check(address)`` before authenticating, ``await failed(address)`` after a refusal."""

    def __init__(self, limiter: RateLimiter, limit: int, *, window_s: float = WINDOW_S) -> None:
        self.limiter = limiter
        self.rule = Rule(limit, window_s)

    @staticmethod
    def _key(address: str | None) -> str:
        return f"connect-failed:{address or 'unknown'}"

    async def check(self, address: str | None) -> None:
        """Raise :class:`TooManyFailedConnects` when ``address`` used up its failures in the window."""
        decision = await self.limiter.peek(self._key(address), self.rule)
        if not decision.allowed:
            raise TooManyFailedConnects(decision.retry_after_ms)

    async def failed(self, address: str | None) -> None:
        await self.limiter.hit(self._key(address), self.rule)
