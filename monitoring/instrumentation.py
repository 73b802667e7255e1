"""django-prometheus wiring, applied to a settings module by one call.

``chatsite/settings.py`` ends with::

    from monitoring.instrumentation import instrument_settings
    instrument_settings(globals())

which adds the ``django_prometheus`` app, its two middlewares (first and
last, so request latency covers every other middleware), and swaps the
database and cache backends for instrumented subclasses of the same
backends (request, database and cache metrics at ``/metrics``).  It is
idempotent and leaves backends it does not know unchanged.
"""

from __future__ import annotations

from typing import Any, MutableMapping

BEFORE = "django_prometheus.middleware.PrometheusBeforeMiddleware"
AFTER = "django_prometheus.middleware.PrometheusAfterMiddleware"

DATABASE_ENGINES = {
    f"django.db.backends.{name}": f"django_prometheus.db.backends.{name}" for name in ("sqlite3", "postgresql", "mysql")
}
CACHE_BACKENDS = {
    "django.core.cache.backends.locmem.LocMemCache": "monitoring.cache.LocMemCache",
    "django.core.cache.backends.redis.RedisCache": "monitoring.cache.RedisCache",
}


def instrument_settings(namespace: MutableMapping[str, Any]) -> None:
    apps = list(namespace.get("INSTALLED_APPS", []))
    if "django_prometheus" not in apps:
        apps.append("django_prometheus")
    namespace["INSTALLED_APPS"] = apps

    middleware = [entry for entry in namespace.get("MIDDLEWARE", []) if entry not in (BEFORE, AFTER)]
    namespace["MIDDLEWARE"] = [BEFORE, *middleware, AFTER]

    for database in namespace.get("DATABASES", {}).values():
        engine = database.get("ENGINE", "")
        database["ENGINE"] = DATABASE_ENGINES.get(engine, engine)

    for cache in namespace.get("CACHES", {}).values():
        backend = cache.get("BACKEND", "")
        cache["BACKEND"] = CACHE_BACKENDS.get(backend, backend)
