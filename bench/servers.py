"""The servers the benchmark measures, started as production runs them, and stopped.

Part of the benchmark (``bench/run.py``).

- **Ours** in a :class:`Layout`: one uvicorn worker with the in-process
  layer (no ``REDIS_URL``: production's single-worker layout), one worker
  on Redis, or several workers on Redis, each a uvicorn process on its own
  port behind nginx with the shipped site (``deploy/nginx/chat.conf``), as
  ``deploy/systemd/chat@.service`` runs them (``docs/deployment.md``).
  Every worker gets ``DATABASE_URL`` on a fresh copy of a database migrated
  once per run (:class:`Fixture`: the bench users and their API tokens are
  made once, then each start clones the template), ``DJANGO_DEBUG=0`` and
  the per-user abuse limits raised out of the way (:data:`LIMITS_OFF`).
- **The reference**: ``bench/reference_server.py`` (python-socketio on
  uvicorn with the same settings), in memory or with ``AsyncRedisManager``.

A :class:`Deployment` is what a measurement talks to: the URL clients use
(the worker, or nginx), the processes whose CPU counts as the server's, and
the others it costs (PostgreSQL's backends of the bench database, Redis,
nginx).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from nginx import Nginx
from procstat import CpuClock, log, named_cpu, tree_cpu

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable

#: Production's WebSocket protocol for ours under uvicorn (see docs/deployment.md).
CORKED_WS = "channels_socketio.transport.uvicorn_websocket:CorkedWebSocketProtocol"
#: The ASGI servers ours can run under (``--ours-server``).
OURS_SERVERS = ("daphne", "uvicorn")


@dataclass(frozen=True)
class Layout:
    """How ours (or the reference) is deployed for a measurement."""

    key: str
    title: str
    workers: int = 1
    redis: bool = False
    reference: bool = False


INPROCESS = Layout("ours", "ours, in-process layer, 1 worker")
REDIS_1 = Layout("redis-1", "ours, Redis, 1 worker", redis=True)
REDIS_2 = Layout("redis-2", "ours, Redis, 2 workers behind nginx", workers=2, redis=True)
REFERENCE = Layout("reference", "python-socketio, in-process", reference=True)
REFERENCE_REDIS = Layout("reference-redis", "python-socketio + AsyncRedisManager, 1 worker", redis=True, reference=True)


# --- processes ----------------------------------------------------------------------------


def niced(nice: int) -> Callable[[], None] | None:
    """preexec_fn giving a child (and all its threads) the --nice priority (negative needs root)."""
    if not nice:
        return None

    def apply() -> None:
        with contextlib.suppress(OSError):
            os.nice(nice)

    return apply


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port} within {timeout:.0f} s")


def http_get(url: str, timeout: float = 10.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Server:
    """One server process."""

    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_problems(self) -> dict[str, Any]:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        lines = text.splitlines()
        bad = [line for line in lines if " ERROR " in line or "Traceback" in line or " CRITICAL " in line]
        return {"errorLines": len(bad), "firstErrors": bad[:5], "logLines": len(lines)}


@dataclass
class Deployment:
    """What a measurement talks to: a URL, the server's processes, and what else it costs."""

    layout: Layout
    workers: list[Server]
    url: str
    cpu: CpuClock
    proxy: Nginx | None = None
    #: Ours: one API token per bench user.
    tokens: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.layout.key

    @property
    def pids(self) -> list[int]:
        return [worker.pid for worker in self.workers]

    def log_problems(self) -> dict[str, Any]:
        per_worker = [worker.log_problems() for worker in self.workers]
        out = {
            "errorLines": sum(p["errorLines"] for p in per_worker),
            "firstErrors": [line for p in per_worker for line in p["firstErrors"]][:5],
            "logLines": sum(p["logLines"] for p in per_worker),
        }
        if self.proxy is not None:
            errors = [line for line in self.proxy.error_lines() if "[error]" in line or "[crit]" in line]
            out["nginxErrorLines"] = len(errors)
            out["nginxFirstErrors"] = errors[:3]
        return out

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        for worker in self.workers:
            stop_process(worker.proc)


# --- the database and the bench users -----------------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def flush_redis(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=5).flushdb()


#: migrate, then one API token per bench user (moderators of the bench workspace,
#: so they may join each other's sessions), in one process to save a Django start.
SETUP_SCRIPT = """
import io, os, sys, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
for i in range(int(sys.argv[1])):
    out = io.StringIO()
    call_command("chat_token", f"bench-user-{i:04d}", workspace="bench", role="moderator", create=True,
                 name="bench", stdout=out)
    print(out.getvalue().strip())
"""


#: The bench measures capacity, not the abuse limits: per-user budgets are
#: raised far above the load (the limiter's own cost is still paid per event).
#: Clients may share users (--users), so the per-user connection cap goes too;
#: and every client connects from 127.0.0.1, standing for many addresses, so
#: the per-address caps (handshakes not yet authenticated, failed connects) go too.
LIMITS_OFF = {
    "CHAT_MESSAGE_RATE_LIMIT": "1000000",
    "CHAT_JOIN_RATE_LIMIT": "1000000",
    "CHAT_TYPING_RATE_LIMIT": "1000000",
    "CHAT_PRESENCE_RATE_LIMIT": "1000000",
    "CHAT_HISTORY_RATE_LIMIT": "1000000",
    "CHAT_REACTION_RATE_LIMIT": "1000000",
    "CHAT_READ_RATE_LIMIT": "1000000",
    "CHAT_CONNECTION_LIMIT": "1000000",
    "CHAT_PENDING_SESSIONS_PER_ADDRESS": "1000000",
    "CHAT_CONNECT_FAILURE_LIMIT": "1000000",
}


class Fixture:
    """The bench database, migrated and holding the bench users once per run; every start gets a fresh copy.

    PostgreSQL copies a template database in about a second, where migrating
    and making 2,000 users and tokens takes half a minute.
    """

    def __init__(self, pg_url: str, db_name: str) -> None:
        self.pg_url = pg_url
        self.db_name = db_name
        self.template = f"{db_name}_template"
        self.tokens: list[str] = []

    @property
    def database_url(self) -> str:
        return with_database(self.pg_url, self.db_name)

    def _admin(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(with_database(self.pg_url, "postgres"), autocommit=True, connect_timeout=5) as conn:
            for statement in statements:
                conn.execute(statement)

    def prepare(self, users: int, env: dict[str, str]) -> list[str]:
        """Migrate the template and make ``users`` bench users with their tokens (once)."""
        if len(self.tokens) >= users:
            return self.tokens
        log(f"bench database: migrate and {users} users with API tokens (once)")
        self._admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)', f'CREATE DATABASE "{self.template}"')
        made = subprocess.run(
            [PYTHON, "-c", SETUP_SCRIPT, str(users)],
            cwd=ROOT,
            env={**env, "DATABASE_URL": with_database(self.pg_url, self.template), "REDIS_URL": ""},
            check=True,
            timeout=600,
            capture_output=True,
            text=True,
        )
        tokens = [line.strip() for line in made.stdout.splitlines() if line.strip()]
        if len(tokens) != users:
            raise RuntimeError(f"expected {users} tokens, got {len(tokens)}: {made.stderr[-500:]}")
        self.tokens = tokens
        return tokens

    def fresh(self) -> None:
        """The bench database, a new copy of the template."""
        self._admin(
            f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)',
            f'CREATE DATABASE "{self.db_name}" TEMPLATE "{self.template}"',
        )

    def drop(self) -> None:
        with contextlib.suppress(Exception):
            self._admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')


# --- ours -------------------------------------------------------------------------------------


def ours_env(args: Any, database_url: str, redis: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(DATABASE_URL=database_url, DJANGO_DEBUG="0", PYTHONUNBUFFERED="1")
    env.update(LIMITS_OFF)
    env["REDIS_URL"] = args.redis_url if redis else ""
    for item in args.ours_env:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def ours_command(server: str, port: int, ws: str = CORKED_WS) -> list[str]:
    if server == "uvicorn":
        return [
            str(Path(PYTHON).with_name("uvicorn")), "chatsite.asgi:application", "--host", "127.0.0.1",
            "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--ws", ws,
            "--ws-per-message-deflate", "false", "--lifespan", "off", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    return [str(Path(PYTHON).with_name("daphne")), "-b", "127.0.0.1", "-p", str(port), "chatsite.asgi:application"]


def start_ours(args: Any, workdir: Path, layout: Layout, fixture: Fixture, users: int) -> Deployment:
    """Ours in ``layout``, on a fresh copy of the bench database (and a flushed Redis database)."""
    env = ours_env(args, fixture.database_url, layout.redis)
    tokens = fixture.prepare(users, env)[:users]
    fixture.fresh()
    if layout.redis:
        flush_redis(args.redis_url)
    workers = []
    try:
        for index in range(layout.workers):
            port = free_port()
            log(f"{layout.key}: starting {args.ours_server} worker {index + 1}/{layout.workers} on {port}")
            log_path = workdir / f"server-{layout.key}-{index}.log"
            proc = subprocess.Popen(
                ours_command(args.ours_server, port, args.ours_ws),
                cwd=ROOT,
                env=env,
                stdout=open(log_path, "w"),
                stderr=subprocess.STDOUT,
                preexec_fn=niced(args.nice),
            )
            workers.append(Server(layout.key, proc, port, log_path))
            wait_for_port(port, proc)
            http_get(f"{workers[-1].url}/bench-ready")
        extra = {"postgres": named_cpu("postgres", f" {fixture.db_name} ")}
        if layout.redis:
            extra["redis"] = named_cpu("redis-server")
        proxy = None
        url = workers[0].url
        if layout.workers > 1:
            proxy = Nginx(workdir / f"nginx-{layout.key}", free_port(), [w.port for w in workers])
            proxy.start(niced(args.nice))
            extra["nginx"] = tree_cpu(proxy.pid)
            url = proxy.url
        return Deployment(layout, workers, url, CpuClock([w.pid for w in workers], extra), proxy, tokens)
    except BaseException:
        for worker in workers:
            stop_process(worker.proc)
        raise


# --- the reference ------------------------------------------------------------------------


def start_reference(args: Any, workdir: Path, layout: Layout = REFERENCE) -> Deployment:
    port = free_port()
    log(f"{layout.key}: starting python-socketio on uvicorn on {port}")
    log_path = workdir / f"server-{layout.key}.log"
    cmd = [PYTHON, str(BENCH / "reference_server.py"), "--port", str(port), "--ws", args.ws]
    extra = {}
    if layout.redis:
        flush_redis(args.redis_url)
        cmd += ["--redis-url", args.redis_url]
        extra["redis"] = named_cpu("redis-server")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, preexec_fn=niced(args.nice)
    )
    server = Server(layout.key, proc, port, log_path)
    try:
        wait_for_port(port, proc)
    except BaseException:
        stop_process(proc)
        raise
    return Deployment(layout, [server], server.url, CpuClock([server.pid], extra))


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="chat-bench-"))
