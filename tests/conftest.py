"""The harness every integration test uses: real server processes, backends, Node.

Nothing here runs for a test that does not ask for it: unit tests under
``tests/unit`` import no fixture below and never start a process or touch
a database.

- :func:`require_service` -- a missing PostgreSQL, Redis or Node skips a
  test locally and fails it in CI (``CI=true``), so CI can never go green by
  skipping.
- ``backend`` -- ``embedded`` (a fresh copy of a migrated SQLite file per
  server, in-memory channel layer) or ``services`` (one PostgreSQL database
  per pytest session, Redis); servers started on the same ``services``
  backend share both, which is how multi-process tests work.
- ``server_factory`` / ``module_server_factory`` -- start real ``daphne``
  processes (or ``uvicorn``, the production server: ``server="uvicorn"``) on
  free ports and stop them at teardown, whatever happened.
- :func:`run_node` -- run a Node script with a JSON document on stdin and
  return the JSON it prints.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
NODE_CLIENT = REPO_ROOT / "node_modules" / "socket.io-client" / "package.json"
SIO_DRIVER = REPO_ROOT / "tests" / "js" / "sio_driver.mjs"

POSTGRES_URL = os.environ.get("CHAT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
IN_CI = os.environ.get("CI", "").lower() == "true"

#: Variables of the test runner's environment that must not leak into a
#: server: each server gets exactly the configuration its test asks for.
_SERVER_ENV_PREFIXES = ("CHAT_", "DJANGO_", "DATABASE_URL", "REDIS_URL")

STARTUP_TIMEOUT_S = 20.0

#: The ASGI servers a test can run the application under: daphne (``make
#: run``) and uvicorn as production runs it (``docs/deployment.md``,
#: ``deploy/systemd/chat@.service``).
SERVERS = ("daphne", "uvicorn")

#: uvicorn's options in production, less the address.  The access log stays
#: on: tests find which worker served a request in it.
UVICORN_OPTIONS = [
    "--loop", "uvloop", "--http", "httptools", "--ws", "channels_socketio.transport.uvicorn_websocket:CorkedWebSocketProtocol",
    "--ws-per-message-deflate", "false", "--lifespan", "off", "--timeout-graceful-shutdown", "3",
]  # fmt: skip


# --- services ----------------------------------------------------------------------


def require_service(name: str, available: bool, reason: str = "") -> None:
    """Skip the test locally, fail it in CI, when a service it needs is missing."""
    if available:
        return
    message = f"{name} is not available" + (f": {reason}" if reason else "")
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing service is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_available() -> tuple[bool, str]:
    if shutil.which("node") is None:
        return False, "no `node` on PATH (Node 20+ is needed)"
    if not NODE_CLIENT.exists():
        return False, "node_modules/socket.io-client is missing (run `npm ci`)"
    return True, ""


def run_node(script_path: str | Path, args_json: Any, timeout: float = 30.0) -> Any:
    """Run ``node <script>`` with ``args_json`` as JSON on stdin; return the JSON it prints."""
    require_service("node", *node_available())
    try:
        done = subprocess.run(
            ["node", str(script_path)],
            input=json.dumps(args_json),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO_ROOT,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"node {script_path} did not finish in {timeout}s; stderr:\n{error.stderr}", pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"node {script_path} exited with {done.returncode}; stderr:\n{done.stderr}", pytrace=False)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"node {script_path} printed no JSON:\n{done.stdout}\nstderr:\n{done.stderr}", pytrace=False)


async def arun_node(script_path: str | Path, args_json: Any, timeout: float = 30.0) -> Any:
    """:func:`run_node` without blocking the event loop (other clients keep answering pings)."""
    return await asyncio.to_thread(run_node, script_path, args_json, timeout)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Check a marked test's services before any of its fixtures starts a server."""
    if item.get_closest_marker("node"):
        require_service("node", *node_available())
    if item.get_closest_marker("services"):
        require_service("postgresql", *_postgres_reachable())
        require_service("redis", *_redis_reachable())


# --- server processes ---------------------------------------------------------------


class ServerProcess:
    """A real server process (daphne, uvicorn, or ``make conformance``) on 127.0.0.1."""

    def __init__(
        self, command: list[str], env: dict[str, str], port: int, log_path: Path, cwd: Path = REPO_ROOT
    ) -> None:
        self.command = command
        self.env = env
        self.port = port
        self.log_path = log_path
        #: The checkout, where the code is imported from; an installed server runs elsewhere.
        self.cwd = cwd
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        #: Set by stop()/kill(): the process ending is then expected.
        self.stopping = False

    @classmethod
    def daphne(cls, env: dict[str, str], log_path: Path, port: int | None = None) -> ServerProcess:
        port = port or free_port()
        command = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "chatsite.asgi:application"]
        return cls(command, env, port, log_path)

    @classmethod
    def uvicorn(cls, env: dict[str, str], log_path: Path, port: int | None = None) -> ServerProcess:
        port = port or free_port()
        command = [PYTHON, "-m", "uvicorn", "chatsite.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
        return cls(command + UVICORN_OPTIONS, env, port, log_path)

    @classmethod
    def of(cls, server: str, env: dict[str, str], log_path: Path, port: int | None = None) -> ServerProcess:
        """A ``daphne`` or ``uvicorn`` process (:data:`SERVERS`)."""
        if server not in SERVERS:
            raise ValueError(f"unknown server {server!r}; one of {SERVERS}")
        return getattr(cls, server)(env, log_path, port)

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> ServerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: stop() reaches children too (make -> daphne).
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode} while starting\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer /healthz within {timeout}s\n{self.log_tail()}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _signal(self, sig: int) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        self.stopping = True
        if self.process is None or self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL at once, as when a worker is lost."""
        self.stopping = True
        if self.process is not None and self.process.poll() is None:
            self._signal(signal.SIGKILL)
            self.process.wait(5)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"

    def __repr__(self) -> str:
        return f"<ServerProcess {self.url} pid={self.process.pid if self.process else None}>"


#: Every server currently running; their log tails are attached to failing tests.
_RUNNING: list[ServerProcess] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in list(_RUNNING):
            report.sections.append((f"server log {server.url}", server.log_tail()))


# --- backends -----------------------------------------------------------------------


@dataclass
class Backend:
    """Where a server keeps its data and how its workers talk to each other."""

    name: str
    #: Environment shared by every server of this backend.
    env: dict[str, str] = field(default_factory=dict)
    #: Embedded only: the migrated SQLite file each server gets a copy of.
    sqlite_template: Path | None = None

    def server_env(self, workdir: Path) -> dict[str, str]:
        if self.sqlite_template is None:
            return dict(self.env)
        database = workdir / "db.sqlite3"
        shutil.copyfile(self.sqlite_template, database)
        return {**self.env, "DATABASE_URL": f"sqlite:///{database}"}


#: Test servers let agents call the fake LLM providers on 127.0.0.1, which the
#: defaults refuse (``chat.agents.network``); pass ``CHAT_AGENT_...=None`` to a
#: server factory to get the defaults back.
AGENTS_MAY_CALL_LOOPBACK = {"CHAT_AGENT_ALLOWED_HOSTS": "127.0.0.1,localhost", "CHAT_AGENT_ALLOW_PRIVATE_NETWORKS": "1"}


def _base_env(**overrides: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(_SERVER_ENV_PREFIXES)}
    env.update(DJANGO_SETTINGS_MODULE="chatsite.settings", PYTHONUNBUFFERED="1")
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _manage(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="session")
def embedded_backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    """SQLite migrated once per session; every server gets its own copy."""
    template = tmp_path_factory.mktemp("embedded") / "template.sqlite3"
    _manage("migrate", "--noinput", env=_base_env(DATABASE_URL=f"sqlite:///{template}"))
    return Backend("embedded", env={"REDIS_URL": ""}, sqlite_template=template)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@functools.cache
def _postgres_reachable() -> tuple[bool, str]:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return True, ""
    except Exception as error:  # any failure means "not usable here"
        return False, f"PostgreSQL at {POSTGRES_URL}: {error}".strip()


def _redis_client() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=5)


@functools.cache
def _redis_reachable() -> tuple[bool, str]:
    try:
        _redis_client().ping()
        return True, ""
    except Exception as error:
        return False, f"Redis at {REDIS_URL}: {error}"


@pytest.fixture(scope="session")
def services_backend() -> Iterator[Backend]:
    """One fresh PostgreSQL database for the session, and a flushed Redis database."""
    require_service("postgresql", *_postgres_reachable())
    require_service("redis", *_redis_reachable())

    import psycopg

    name = f"chat_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        database_url = _with_database(POSTGRES_URL, name)
        _manage("migrate", "--noinput", env=_base_env(DATABASE_URL=database_url))
        _redis_client().flushdb()
        yield Backend("services", env={"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL})
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _backend(request: pytest.FixtureRequest) -> Backend:
    return request.getfixturevalue(f"{request.param}_backend")


BACKENDS = ["embedded", pytest.param("services", marks=pytest.mark.services)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return _backend(request)


@pytest.fixture(scope="module", params=BACKENDS)
def module_backend(request: pytest.FixtureRequest) -> Backend:
    """Like ``backend``, for module-scoped servers shared by a module's tests."""
    return _backend(request)


# --- server factories -----------------------------------------------------------------


class ServerFactory:
    """Starts daphne (or uvicorn) servers; :meth:`stop_all` stops every one it started."""

    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir
        self.servers: list[ServerProcess] = []

    def __call__(
        self, backend: Backend, conformance: bool = True, server: str = "daphne", **env: str | None
    ) -> ServerProcess:
        workdir = self.tmp_dir / f"server{len(self.servers)}"
        workdir.mkdir()
        server_env = _base_env(**backend.server_env(workdir))
        server_env.update(AGENTS_MAY_CALL_LOOPBACK)
        if conformance:
            server_env["CHAT_CONFORMANCE"] = "1"
        for key, value in env.items():
            if value is None:
                server_env.pop(key, None)
            else:
                server_env[key] = str(value)
        process = None
        for _attempt in range(3):  # a free port can be taken before the server binds it
            process = ServerProcess.of(server, server_env, workdir / f"{server}.log")
            self.servers.append(process)
            try:
                process.start()
            except RuntimeError:
                if "address already in use" in process.log_text().lower():
                    continue
                raise
            _RUNNING.append(process)
            return process
        raise RuntimeError(f"could not find a free port\n{process.log_tail() if process else ''}")

    def stop_all(self) -> None:
        died = []
        for server in self.servers:
            if not server.stopping and server.process is not None and not server.alive:
                died.append(server)
            server.stop()
            if server in _RUNNING:
                _RUNNING.remove(server)
        if died:
            tails = "\n".join(
                f"{server!r} exited with {server.process.returncode}\n{server.log_tail()}" for server in died
            )
            pytest.fail(f"a server died during the test:\n{tails}", pytrace=False)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """``server_factory(backend, conformance=True, server="daphne", **env)`` -> a started :class:`ServerProcess`."""
    factory = ServerFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """The same, for servers shared by the tests of one module."""
    factory = ServerFactory(tmp_path_factory.mktemp("servers"))
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="session")
def node() -> None:
    """Request it to require Node and the official client (skip locally, fail in CI)."""
    require_service("node", *node_available())
