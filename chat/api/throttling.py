"""The REST API's rate limit as a DRF throttle: answered 429 with ``Retry-After``.

Layer: REST API.

DRF runs authenticate -> permissions -> throttles on every request; this
throttle counts the request against the HTTP APIs' shared rate
(:mod:`chat.services.api_rate`).  DRF then raises ``Throttled``, which the
error handler answers with ``{"error", "code": "rate_limited", "retryAfter": ms}``
and a ``Retry-After`` header in seconds.
"""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import BaseThrottle

from chat.services import api_rate


class ApiRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.retry_after_s = 1

    def allow_request(self, request: Any, view: Any) -> bool:
        caller = api_rate.ApiCaller(
            user=request.user,
            ip=request.META.get("REMOTE_ADDR", ""),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            surface="rest",
            path=request.path,
        )
        retry_after_s = api_rate.hit(caller)
        if retry_after_s is None:
            return True
        self.retry_after_s = retry_after_s
        return False

    def wait(self) -> float:
        return float(self.retry_after_s)
