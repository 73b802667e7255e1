"""Reachability of what the server depends on: the database and the channel layer (Redis).

Each check has a hard timeout and never raises; it returns a
:class:`CheckResult`.  The last result of each is kept in :data:`last` (for
the health history the probe records) and exported as
``chat_dependency_up``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from monitoring import metrics

logger = logging.getLogger(__name__)

TIMEOUT_S = 3.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    latency_ms: float
    backend: str
    error: str = ""
    checked_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The last result of each check, by name.
last: dict[str, CheckResult] = {}


def _record(result: CheckResult) -> CheckResult:
    last[result.name] = result
    metrics.DEPENDENCY_UP.labels(result.name).set(1 if result.ok else 0)
    return result


def _error_text(error: BaseException) -> str:
    """The kind of failure, never a connection string or password."""
    if isinstance(error, asyncio.TimeoutError):
        return "timeout"
    return type(error).__name__


def _database_ping() -> str:
    from django.db import connections

    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return connection.vendor
    finally:
        # Checks run on pool threads; never leave a connection behind on one.
        connection.close()


async def check_database() -> CheckResult:
    vendor = settings.DATABASES["default"].get("ENGINE", "").rsplit(".", 1)[-1]
    started = time.monotonic()
    try:
        vendor = await asyncio.wait_for(sync_to_async(_database_ping, thread_sensitive=False)(), TIMEOUT_S)
        error = ""
    except Exception as exc:  # unreachable, refused, timed out, misconfigured
        error = _error_text(exc)
    latency = (time.monotonic() - started) * 1000
    return _record(CheckResult("database", not error, round(latency, 2), vendor, error, time.time()))


def _redis_url() -> str | None:
    """The Redis the channel layer uses, or ``None`` for a layer without one."""
    layer = settings.CHANNEL_LAYERS.get("default", {})
    if "redis" not in layer.get("BACKEND", "").lower():
        return None
    hosts = layer.get("CONFIG", {}).get("hosts") or []
    host = hosts[0] if hosts else getattr(settings.CHAT, "redis_url", "")
    if isinstance(host, dict):
        host = host.get("address", "")
    if isinstance(host, (tuple, list)):
        host = f"redis://{host[0]}:{host[1]}"
    return str(host)


async def check_channel_layer() -> CheckResult:
    """Redis answers PING (Redis layer); the in-memory layer round-trips a message."""
    url = _redis_url()
    started = time.monotonic()
    error = ""
    if url is None:
        backend = "memory"
        try:
            from channels.layers import get_channel_layer

            layer = get_channel_layer()
            channel = await layer.new_channel("monitoring.")
            await layer.send(channel, {"type": "monitoring.ping"})
            await asyncio.wait_for(layer.receive(channel), TIMEOUT_S)
        except Exception as exc:
            error = _error_text(exc)
    else:
        backend = "redis"
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
        try:
            await asyncio.wait_for(client.ping(), TIMEOUT_S)
        except Exception as exc:
            error = _error_text(exc)
        finally:
            try:
                await client.aclose()
            except Exception:
                pass
    latency = (time.monotonic() - started) * 1000
    return _record(CheckResult("channel_layer", not error, round(latency, 2), backend, error, time.time()))


async def check_dependencies() -> dict[str, CheckResult]:
    """Both checks, concurrently."""
    database, layer = await asyncio.gather(check_database(), check_channel_layer())
    return {"database": database, "channel_layer": layer}
