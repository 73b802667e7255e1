"""Shared helpers of the monitoring tests (this module has no tests of its own).

- :func:`start` -- a chat server (not conformance mode) with the ops token set.
- :func:`scrape` / :func:`sample` -- ``/metrics`` parsed with
  ``prometheus_client``'s own parser.
- :class:`TcpProxy` -- a switchable TCP forwarder, to make PostgreSQL or
  Redis unreachable for one server and bring it back.
- :func:`staff_token` -- an API token of a staff user (a superuser by default) in a server's database.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO_ROOT, ServerProcess, free_port
from tests.integration.chat_client import server_python

OPS_TOKEN = "ops-token-for-tests-0123456789abcdef"


def monitoring_env(**env: Any) -> dict[str, Any]:
    env.setdefault("CHAT_OPS_TOKEN", OPS_TOKEN)
    return env


def start(server_factory: Any, backend: Any, **env: Any) -> ServerProcess:
    """A chat server with monitoring; ``env`` values of ``None`` remove a variable."""
    return server_factory(backend, conformance=False, **monitoring_env(**env))


# --- HTTP ---------------------------------------------------------------------------------------


def http(
    server: ServerProcess | str,
    path: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> tuple[int, dict[str, str], bytes]:
    """GET ``path``: ``(status, headers, body)``, whatever the status."""
    base = server if isinstance(server, str) else server.url
    request = urllib.request.Request(base + path, headers=dict(headers or {}))
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def get_json(server: ServerProcess | str, path: str, token: str | None = OPS_TOKEN) -> tuple[int, Any]:
    status, _, body = http(server, path, token=token)
    return status, json.loads(body) if body else None


async def aget_json(server: ServerProcess | str, path: str, token: str | None = OPS_TOKEN) -> tuple[int, Any]:
    return await asyncio.to_thread(get_json, server, path, token)


# --- /metrics -----------------------------------------------------------------------------------


class Scrape:
    """``/metrics`` parsed: ``value(name, **labels)`` sums every sample matching the labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self.samples = [sample for family in self.families.values() for sample in family.samples]

    def value(self, name: str, **labels: str) -> float:
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and all(sample.labels.get(key) == want for key, want in labels.items())
        )

    def by_label(self, name: str, label: str) -> dict[str, float]:
        result: dict[str, float] = {}
        for sample in self.samples:
            if sample.name == name:
                key = sample.labels.get(label, "")
                result[key] = result.get(key, 0.0) + sample.value
        return result

    def series(self, name: str) -> list[dict[str, str]]:
        return [sample.labels for sample in self.samples if sample.name == name]


def scrape(server: ServerProcess | str, token: str | None = None) -> Scrape:
    status, headers, body = http(server, "/metrics", token=token)
    assert status == 200, (status, body[:500])
    content_type = {name.lower(): value for name, value in headers.items()}.get("content-type", "")  # uvicorn: lower case
    assert content_type.startswith("text/plain"), headers
    return Scrape(body.decode())


async def ascrape(server: ServerProcess | str) -> Scrape:
    return await asyncio.to_thread(scrape, server)


def delta(after: Scrape, before: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1) -> Any:
    """Call ``check`` (sync; run in a thread) until it returns truthy; the last value otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(interval)


# --- credentials ----------------------------------------------------------------------------------

_STAFF_SCRIPT = """
import django
django.setup()
from django.contrib.auth import get_user_model
from security.models import ApiToken
user, _ = get_user_model().objects.get_or_create(username={username!r})
user.is_staff = True
user.is_superuser = {superuser!r}
user.set_password({password!r})
user.save()
print(ApiToken.issue(user, name="monitoring-tests")[1])
"""


def staff_token(
    server: ServerProcess, username: str = "ops-staff", password: str = "staff-password-123", *, superuser: bool = True
) -> str:
    """A staff user (with ``password``, for the admin login; a superuser unless told) and an API token for it."""
    script = _STAFF_SCRIPT.format(username=username, password=password, superuser=superuser)
    return server_python(server, "-c", script)


# --- a switchable TCP forwarder -------------------------------------------------------------------


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to a target; :meth:`disable` refuses and cuts every connection.

    Runs its own event loop on a thread, so sync and async tests can use it.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.enable()

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def enable(self) -> None:
        self._run(self._listen())

    def disable(self) -> None:
        self._run(self._stop())

    def close(self) -> None:
        self.disable()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def url(self, url: str) -> str:
        """``url`` with its host and port replaced by this proxy's."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = (userinfo + "@" if userinfo else "") + f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                sink.transport.abort()
                self._writers.discard(sink)

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


def closed_port() -> int:
    """A port nothing listens on (connecting is refused at once)."""
    return free_port()


def artifact_dir() -> Path:
    path = REPO_ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
