"""Rate limiting of the REST API with django-ratelimit, per user, answered 429 with ``Retry-After``.

Layer: REST API.

DRF runs authenticate -> permissions -> throttles on every request; this
throttle plugs django-ratelimit's counters (in the default cache: Redis with
the services backend, so the limit holds across workers) into that last
step.  DRF then raises ``Throttled``, which the error handler answers with
``{"error", "code": "rate_limited", "retryAfter": ms}`` and a ``Retry-After``
header in seconds.

The rate is ``settings.CHAT.api_rate_limit`` (django-ratelimit syntax,
``"120/m"`` by default; empty disables it), shared by every endpoint.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

DEFAULT_RATE = "120/m"
GROUP = "chat-api"


def api_rate() -> str:
    return getattr(settings.CHAT, "api_rate_limit", DEFAULT_RATE)


def user_key(group: str, request: Any) -> str:
    user = request.user
    return f"user:{user.pk}" if user.is_authenticated else f"anon:{request.META.get('REMOTE_ADDR', '')}"


class ApiRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.retry_after_s = 1

    def allow_request(self, request: Any, view: Any) -> bool:
        rate = api_rate()
        if not rate:
            return True
        usage = get_usage(request, group=GROUP, key=user_key, rate=rate, increment=True)
        if usage is None or not usage["should_limit"]:
            return True
        # time_left is -1 when the cache could not count: still refuse, but say "soon".
        self.retry_after_s = max(1, int(usage["time_left"]))
        if usage["count"] == usage["limit"] + 1:
            _record(request, rate)
        return False

    def wait(self) -> float:
        return float(self.retry_after_s)


def _record(request: Any, rate: str) -> None:
    """One security event per user and window: the first refused request."""
    from security.models import SecurityEvent, SecurityEventType

    try:
        SecurityEvent.objects.create(
            type=SecurityEventType.RATE_LIMIT_EXCEEDED,
            user=request.user if request.user.is_authenticated else None,
            ip=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            detail={"surface": "rest", "rate": rate, "path": request.path[:200]},
        )
    except Exception:
        logger.exception("could not record a rate-limit security event")
