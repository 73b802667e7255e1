"""The HTTP APIs' request rate, per user (per address when anonymous), shared by every worker.

Layer: chat services.  Both HTTP surfaces count against it: the REST API
through its DRF throttle (:mod:`chat.api.throttling`) and the
Parlant-compatible facade (:mod:`chat.parlant.consumer`).  The counters
are django-ratelimit's, in the default cache (Redis with the services
backend, so the limit holds across workers).

The rate is ``settings.CHAT.api_rate_limit`` (django-ratelimit syntax,
``"120/m"`` by default; empty disables it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django_ratelimit.core import get_usage

from security.models import SecurityEvent, SecurityEventType

logger = logging.getLogger(__name__)

GROUP = "chat-api"


@dataclass(frozen=True)
class ApiCaller:
    """Who is calling, as the rate and its security event need it (never a token)."""

    user: Any  # a user, or AnonymousUser
    ip: str
    user_agent: str
    surface: str  # "rest" or "parlant"
    path: str

    @property
    def key(self) -> str:
        return f"user:{self.user.pk}" if self.user.is_authenticated else f"anon:{self.ip}"


def hit(caller: ApiCaller, *, count: bool = True) -> int | None:
    """Count one request: ``None`` when allowed, else the seconds until the caller may retry.

    ``count=False`` only asks whether the caller is already over the rate.
    """
    rate = settings.CHAT.api_rate_limit
    if not rate:
        return None
    usage = get_usage(caller, group=GROUP, key=lambda _group, who: who.key, rate=rate, increment=count)
    if usage is None or not usage["should_limit"]:
        return None
    if count and usage["count"] == usage["limit"] + 1:
        _record(caller, rate)
    # time_left is -1 when the cache could not count: still refuse, but say "soon".
    return max(1, int(usage["time_left"]))


def _record(caller: ApiCaller, rate: str) -> None:
    """One security event per caller and window: the first refused request."""
    try:
        SecurityEvent.objects.create(
            type=SecurityEventType.RATE_LIMIT_EXCEEDED,
            user=caller.user if caller.user.is_authenticated else None,
            ip=caller.ip or None,
            user_agent=caller.user_agent[:300],
            detail={"surface": caller.surface, "rate": rate, "path": caller.path[:200]},
        )
    except Exception:
        logger.exception("could not record a rate-limit security event")
