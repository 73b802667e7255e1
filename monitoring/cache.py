"""Django's own cache backends, counting gets, hits, misses and failures with django-prometheus's metrics.

django-prometheus ships a Redis backend built on ``django-redis`` (not a
dependency here) and a local-memory one that turns cached falsy values into
misses; these wrap Django's built-in backends instead and export the same
``django_cache_get_total``, ``django_cache_get_hits_total``,
``django_cache_get_misses_total`` and ``django_cache_get_fail_total``.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import locmem, redis
from django_prometheus.cache.metrics import (
    django_cache_get_fail_total,
    django_cache_get_total,
    django_cache_hits_total,
    django_cache_misses_total,
)

_MISSING = object()


class _Instrumented:
    metrics_backend = ""

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        django_cache_get_total.labels(backend=self.metrics_backend).inc()
        try:
            value = super().get(key, _MISSING, version)  # type: ignore[misc]
        except Exception:
            django_cache_get_fail_total.labels(backend=self.metrics_backend).inc()
            raise
        if value is _MISSING:
            django_cache_misses_total.labels(backend=self.metrics_backend).inc()
            return default
        django_cache_hits_total.labels(backend=self.metrics_backend).inc()
        return value


class LocMemCache(_Instrumented, locmem.LocMemCache):
    metrics_backend = "locmem"


class RedisCache(_Instrumented, redis.RedisCache):
    metrics_backend = "redis"
