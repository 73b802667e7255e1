"""Benchmark: the overhead the agent bridge adds per chunk, from the backend yielding it to the clients receiving it.

    .venv/bin/python bench/agent_overhead.py                      # embedded and services, websocket
    .venv/bin/python bench/agent_overhead.py --quick              # a few seconds, embedded only
    .venv/bin/python bench/agent_overhead.py --backend services --transport polling --sessions 4
    .venv/bin/python bench/agent_overhead.py --quick --tools      # with a tool-call event after every chunk

How it measures.  A real server is started through
``python -m bench.agent_server``, which registers the ``clock`` backend
below in that process only: uvicorn with production's settings (uvloop,
httptools, the corked WebSocket protocol of ``deploy/Dockerfile``), or
daphne with ``--server daphne``.  The two write a chunk to its sockets at
different moments (the corked protocol when the event loop next runs its
ready callbacks, daphne's Twisted transports after the loop's next poll),
so their figures are not comparable with each other.  ``clock``
yields ``--chunks`` chunks ``--interval-ms`` apart, and each chunk's text is
the wall-clock time (``time.time()``) at the instant it is yielded.  Every
client (python-socketio, in this process, on the same machine and clock)
notes ``time.time()`` when each ``chat:agent-stream-chunk`` arrives; the
difference is everything the bridge adds: the runner, the channel layer
(in-memory or Redis), the fan-out to the socket, Socket.IO/Engine.IO
encoding, the transport, and the client's decoding.  It is not the
backend's own time (that is what the interval simulates).

With ``--tools`` the backend also yields a tool-call step after every
chunk (a call every 10 chunks: ``started``, ``running``..., ``completed``),
whose ``argumentsDelta`` is again the time it was yielded, so the stream
carries twice the events; the chunks' overhead is then measured among
them, and the ``chat:agent-tool-call`` events' own overhead is reported
beside it (``tool_overhead_ms``).

``--sessions`` sessions run at once, each with ``--clients`` clients and
``--runs`` user messages one after another.  Reported: percentiles of the
per-chunk overhead over all clients and chunks, chunks lost (must be 0),
and how long each run took beyond the backend's own time.  Results are
printed and written to ``bench/results/agent_overhead.json`` (``--out``).

Needs PostgreSQL and Redis for ``--backend services`` (``--pg-url``,
``--redis-url``); everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
WORKSPACE = "agentbench"


# --- the backend, loaded by the server process ----------------------------------------------


class ClockBackend:
    """``{"chunks": 50, "interval_ms": 20, "tools": false}``: each chunk is ``"<time.time() when yielded>|<index> "``.

    It has the :class:`~chat.agents.backends.base.AgentBackend` interface
    without importing it, so this file loads without Django.
    """

    name = "clock"

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    async def stream(self, context: Any) -> AsyncIterator[str]:
        chunks = int(self.config.get("chunks", 50))
        interval = float(self.config.get("interval_ms", 20)) / 1000
        tools = bool(self.config.get("tools"))
        if tools:
            from chat.agents.steps import ToolCallDelta  # the server process has Django loaded
        for index in range(chunks):
            await asyncio.sleep(interval)
            yield f"{time.time():.6f}|{index} "
            if tools:
                last = index % 10 == 9 or index == chunks - 1
                status = "started" if index % 10 == 0 else "completed" if last else "running"
                yield ToolCallDelta(f"call-{index // 10}", "clock_tool", f"{time.time():.6f}|", status)


# --- server -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"manage.py {args[0]} failed:\n{done.stderr[-2000:]}")
    return done.stdout


SETUP = """
import io, json
from django.core.management import call_command
spec = json.loads({spec!r})
tokens = []
for i in range(spec["users"]):
    out = io.StringIO()
    call_command("chat_token", f"bench{{i}}", workspace=spec["workspace"], role="moderator", create=True, stdout=out)
    tokens.append(out.getvalue().strip())
call_command("chat_agent", spec["workspace"], "clock", backend="clock", any_backend=True,
             config=json.dumps(spec["config"]), stdout=io.StringIO())
print(json.dumps(tokens))
"""


@contextmanager
def database(backend: str, pg_url: str, redis_url: str) -> Iterator[dict[str, str]]:
    if backend == "embedded":
        with tempfile.TemporaryDirectory(prefix="agentbench-") as tmp:
            yield {"DATABASE_URL": f"sqlite:///{tmp}/db.sqlite3", "REDIS_URL": ""}
        return
    import psycopg
    import redis

    name = f"chat_agentbench_{os.getpid()}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url(redis_url).flushdb()
    try:
        yield {"DATABASE_URL": urlunsplit(urlsplit(pg_url)._replace(path=f"/{name}")), "REDIS_URL": redis_url}
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Server:
    url: str
    tokens: list[str]
    process: subprocess.Popen[bytes]


@contextmanager
def server(backend: str, args: argparse.Namespace, users: int) -> Iterator[Server]:
    with database(backend, args.pg_url, args.redis_url) as db_env:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "DJANGO_", "DATABASE_URL", "REDIS_URL"))
        }
        env.update(db_env)
        env.update(
            DJANGO_SETTINGS_MODULE="chatsite.settings",
            DJANGO_DEBUG="0",
            PYTHONUNBUFFERED="1",
            CHAT_MESSAGE_RATE_LIMIT="1000000",
            CHAT_JOIN_RATE_LIMIT="1000000",
            CHAT_HISTORY_RATE_LIMIT="1000000",
            CHAT_SPAM_MAX_REPEATS="1000000",
            CHAT_CONNECTION_LIMIT="100000",
        )
        manage(env, "migrate", "--noinput")
        spec = {
            "workspace": WORKSPACE,
            "users": users,
            "config": {"chunks": args.chunks, "interval_ms": args.interval_ms, "tools": args.tools},
        }
        tokens = json.loads(manage(env, "shell", "-c", SETUP.format(spec=json.dumps(spec))).strip().splitlines()[-1])
        port = free_port()
        log = open(Path(tempfile.gettempdir()) / f"agentbench-{port}.log", "wb")
        command = [PYTHON, "-m", "bench.agent_server", args.server, "127.0.0.1", str(port)]
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"server exited; see {log.name}")
                try:
                    with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"server did not start; see {log.name}") from None
                    time.sleep(0.1)
            yield Server(url, tokens, process)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


# --- clients ------------------------------------------------------------------------------------


@dataclass
class Samples:
    overhead_ms: list[float] = field(default_factory=list)
    #: ``--tools``: the same for each chat:agent-tool-call event.
    tool_overhead_ms: list[float] = field(default_factory=list)
    tool_events: int = 0
    run_extra_ms: list[float] = field(default_factory=list)
    #: From sending the user message to the backend yielding its first chunk, less one interval.
    start_ms: list[float] = field(default_factory=list)
    #: From the last chunk's arrival to the final chunk's (storing the reply happens in between).
    finish_ms: list[float] = field(default_factory=list)
    lost: int = 0
    received: int = 0


async def run_session(url: str, tokens: list[str], session: str, args: argparse.Namespace, samples: Samples) -> None:
    import socketio

    transports = ["polling"] if args.transport == "polling" else ["websocket"]
    clients = []
    inboxes: list[dict[str, list[tuple[float, dict]]]] = []
    for token in tokens:
        client = socketio.AsyncClient(reconnection=False)
        inbox: dict[str, list[tuple[float, dict]]] = {}

        def on_chunk(payload: dict, inbox=inbox) -> None:
            inbox.setdefault(payload["messageId"], []).append((time.time(), payload))

        def on_tool(payload: dict) -> None:
            yielded_at = float(payload["argumentsDelta"].split("|", 1)[0])
            samples.tool_overhead_ms.append((time.time() - yielded_at) * 1000)
            samples.tool_events += 1

        client.on("chat:agent-stream-chunk", on_chunk)
        client.on("chat:agent-tool-call", on_tool)
        await client.connect(url, transports=transports, auth={"token": token}, wait_timeout=10)
        ack = await client.call(
            "chat:join-session", {"sessionId": session, "workspaceId": WORKSPACE, "agentId": "clock"}
        )
        assert ack.get("ok"), ack
        clients.append(client)
        inboxes.append(inbox)
    backend_ms = args.chunks * args.interval_ms
    try:
        for run in range(args.runs):
            key = f"{session}-m{run}"
            started = time.time()
            ack = await clients[0].call(
                "chat:send-message", {"message": {"id": key, "sessionId": session, "content": "tick"}}
            )
            assert ack.get("ok"), ack
            reply = f"agent-{key}"
            deadline = time.monotonic() + backend_ms / 1000 + 30
            while not all(any(p["isComplete"] for _, p in inbox.get(reply, [])) for inbox in inboxes):
                if time.monotonic() > deadline:
                    raise SystemExit(f"run {key} did not complete")
                await asyncio.sleep(0.005)
            for inbox in inboxes:
                got = inbox.pop(reply)
                final_at = next(t for t, p in got if p["isComplete"])
                data = [(t, p) for t, p in got if not p["isComplete"]]
                samples.received += len(data)
                samples.lost += args.chunks - len(data)
                for received_at, payload in data:
                    yielded_at = float(payload["chunk"].split("|", 1)[0])
                    samples.overhead_ms.append((received_at - yielded_at) * 1000)
                samples.run_extra_ms.append((final_at - started) * 1000 - backend_ms)
                if data:
                    first_yield = min(float(p["chunk"].split("|", 1)[0]) for _, p in data)
                    samples.start_ms.append((first_yield - started) * 1000 - args.interval_ms)
                    samples.finish_ms.append((final_at - max(t for t, _ in data)) * 1000)
    finally:
        for client in clients:
            await client.disconnect()


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "p50": pick(0.50),
        "p90": pick(0.90),
        "p99": pick(0.99),
        "p99.9": pick(0.999),
        "max": round(ordered[-1], 2),
        "mean": round(statistics.fmean(ordered), 2),
    }


async def measure(url: str, tokens: list[str], args: argparse.Namespace) -> Samples:
    samples = Samples()
    per = args.clients
    await asyncio.gather(
        *(
            run_session(url, tokens[i * per : (i + 1) * per], f"bench-{int(time.time())}-{i}", args, samples)
            for i in range(args.sessions)
        )
    )
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["embedded", "services", "both"], default="both")
    parser.add_argument("--transport", choices=["websocket", "polling"], default="websocket")
    parser.add_argument(
        "--server",
        choices=["uvicorn", "daphne"],
        default="uvicorn",
        help="the ASGI server: production's uvicorn (uvloop, corked WebSocket protocol) or daphne",
    )
    parser.add_argument("--sessions", type=int, default=1, help="sessions streaming at once")
    parser.add_argument("--clients", type=int, default=5, help="clients in each session")
    parser.add_argument("--runs", type=int, default=20, help="user messages per session, one after another")
    parser.add_argument("--chunks", type=int, default=50, help="chunks per reply")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="the backend's time between chunks")
    parser.add_argument("--quick", action="store_true", help="embedded only, 5 runs of 20 chunks")
    parser.add_argument("--tools", action="store_true", help="a tool-call event after every chunk")
    parser.add_argument(
        "--pg-url", default=os.environ.get("CHAT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--redis-url", default=os.environ.get("CHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/10"))
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "agent_overhead.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.backend, args.runs, args.chunks = "embedded", 5, 20
    backends = ["embedded", "services"] if args.backend == "both" else [args.backend]
    report: dict[str, Any] = {
        "what": "ms from the backend yielding a chunk to a client receiving it (chat:agent-stream-chunk)",
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "pg_url", "redis_url")},
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "results": {},
    }
    print(f"{'backend':<10} {'transport':<10} {'chunks':>7} {'lost':>5}   p50    p90    p99  p99.9    max   (ms/chunk)")
    for backend in backends:
        with server(backend, args, args.sessions * args.clients) as running:
            samples = asyncio.run(measure(running.url, running.tokens, args))
        result = {
            "chunks_received": samples.received,
            "chunks_lost": samples.lost,
            "overhead_ms": percentiles(samples.overhead_ms),
            "tool_events": samples.tool_events,
            "tool_overhead_ms": percentiles(samples.tool_overhead_ms),
            "run_beyond_backend_ms": percentiles(samples.run_extra_ms),
            "start_ms": percentiles(samples.start_ms),
            "finish_ms": percentiles(samples.finish_ms),
        }
        report["results"][backend] = result
        o = result["overhead_ms"]
        print(
            f"{backend:<10} {args.transport:<10} {samples.received:>7} {samples.lost:>5} "
            f"{o['p50']:>6} {o['p90']:>6} {o['p99']:>6} {o['p99.9']:>6} {o['max']:>6}"
        )
        r = result["run_beyond_backend_ms"]
        print(f"{'':<10} whole run beyond the backend's own time: p50 {r['p50']} ms, p99 {r['p99']} ms")
        if samples.tool_events:
            t = result["tool_overhead_ms"]
            print(f"{'':<10} {samples.tool_events} tool-call events: p50 {t['p50']} ms, p99 {t['p99']} ms")
        st, fi = result["start_ms"], result["finish_ms"]
        print(
            f"{'':<10} send -> first chunk yielded: p50 {st['p50']} ms; last chunk -> final chunk: p50 {fi['p50']} ms"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}")
    if any(r["chunks_lost"] for r in report["results"].values()):
        raise SystemExit("chunks were lost")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
