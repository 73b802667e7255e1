"""The server as it is deployed: the wheel, installed without extras, serving the production command.

``docs/deployment.md`` (*Install*) gives the install commands, the migration
and the production command; ``deploy/Dockerfile`` and the systemd units run
the same ones (``test_deploy.py`` checks that).  Here they are run as
written:

1. a copy of the files a clone holds (tracked, plus new files not ignored:
   what the image's build context holds) becomes the working directory of
   the *Install* block, which runs line by line with a fresh virtualenv's
   ``python3`` first on ``PATH``: ``npm ci --omit=dev``, the wheel built
   from the copy, the wheel installed **without extras**.  pip's cache is
   left on (``make install`` filled it), so this takes seconds, not minutes;
2. from an empty directory (so nothing of the checkout can be imported),
   the documented migration on a fresh PostgreSQL database, the demo data
   and a token with the installed ``python -m chatsite``;
3. the documented production command (uvicorn, the corked WebSocket
   protocol) on a free port, with PostgreSQL and Redis as in production;
4. the official client (``tests/js/sio_driver.mjs``) logs in with the
   token, is upgraded to WebSocket, joins a session with the echo agent,
   sends, and gets the agent's streamed reply; the page's static files and
   the vendored client come from the wheel; ``/metrics`` counts it all.

A runtime import that only an extra provides fails step 2 or 3 here (and
``tests/unit/test_dependencies.py`` fails on it before anything runs).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import (
    POSTGRES_URL,
    REDIS_URL,
    REPO_ROOT,
    SIO_DRIVER,
    ServerProcess,
    _base_env,
    _with_database,
    free_port,
    run_node,
)
from tests.integration import deployment_docs as documented
from tests.integration.chat_client import RELAXED_SECURITY

pytestmark = [pytest.mark.services, pytest.mark.node]

#: Installing every dependency from pip's cache takes about 20 s here; a cold cache, minutes.
STEP_TIMEOUT_S = 600


def _step(command: str | list[str], *, cwd: Path, env: dict[str, str], timings: dict[str, float]) -> str:
    """Run one documented command (a shell line, or an argument list); fail with its output."""
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", command] if isinstance(command, str) else command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
    )
    label = command if isinstance(command, str) else " ".join(command)
    timings[label] = round(time.monotonic() - started, 1)
    if done.returncode != 0:
        pytest.fail(f"`{label}` exited with {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}", pytrace=False)
    return done.stdout


def _environment(venv: Path, **settings: str) -> dict[str, str]:
    """The test runner's environment with the virtualenv first on PATH and only ``settings`` of ours."""
    env = _base_env(**settings)
    for name in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "PYTHONHOME", "PIP_NO_CACHE_DIR", "PIP_REQUIRE_VIRTUALENV"):
        env.pop(name, None)  # the documented commands must need none of these
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _copy_of_the_checkout(target: Path) -> None:
    """The files a commit of the work tree would hold: tracked ones, and new ones not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not there
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """A fresh virtualenv with the wheel installed as docs/deployment.md says; the time each step took."""
    work = tmp_path_factory.mktemp("packaging")
    checkout, venv = work / "checkout", work / "venv"
    _copy_of_the_checkout(checkout)
    timings: dict[str, float] = {}
    _step([sys.executable, "-m", "venv", str(venv)], cwd=work, env=_base_env(), timings=timings)
    env = _environment(venv)
    for command in documented.install_commands():
        _step(command, cwd=checkout, env=env, timings=timings)
    return venv, timings


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"chat_packaging_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(POSTGRES_URL, name)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_installed_environment_has_no_extras(installed, tmp_path):
    venv, timings = installed
    env = _environment(venv)
    check = subprocess.run(["python3", "-m", "pip", "check"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    for extra_only in ("pytest", "socketio", "schemathesis", "playwright"):
        probe = subprocess.run(["python3", "-c", f"import {extra_only}"], cwd=tmp_path, env=env, capture_output=True)
        assert probe.returncode != 0, f"{extra_only} (an extra's) is installed: the check would prove nothing"
    print(f"install steps (s): {timings}")


def test_the_wheel_installed_without_extras_serves_the_chat(installed, database, tmp_path):
    venv, _ = installed
    run_dir = tmp_path / "run"  # empty: the code can only come from the virtualenv
    run_dir.mkdir()
    env = _environment(
        venv,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_hex(32),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database,
        REDIS_URL=REDIS_URL,
        # This Redis database is shared with other tests' servers, whose users have the same ids.
        **RELAXED_SECURITY,
    )
    timings: dict[str, float] = {}
    where = _step(["python3", "-c", "import chat; print(chat.__file__)"], cwd=run_dir, env=env, timings=timings)
    assert Path(where.strip()).is_relative_to(venv), where

    _step(documented.migrate_command(), cwd=run_dir, env=env, timings=timings)
    _step(["python3", "-m", "chatsite", "setup_demo"], cwd=run_dir, env=env, timings=timings)
    token = _step(
        ["python3", "-m", "chatsite", "chat_token", "demo", "--workspace", "demo"], cwd=run_dir, env=env, timings=timings
    ).strip()
    assert token.startswith("chat_"), token

    command = documented.production_command()
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    server = ServerProcess(command, env, port, tmp_path / "uvicorn.log", cwd=run_dir)
    try:
        server.start(timeout=60)
        assert "Uvicorn running on" in server.log_text(), server.log_tail()

        # What the chat page loads comes from the wheel: its templates, static files and the client.
        status, _, page = _get(f"{server.url}/login/")
        assert status == 200 and b"<form" in page
        status, content_type, script = _get(f"{server.url}/static/vendor/socket.io.min.js")
        assert status == 200 and content_type.startswith("text/javascript") and b"Socket.IO v" in script[:200]
        status, _, _ = _get(f"{server.url}/static/chat/app.js")
        assert status == 200

        session, message = f"pkg-{secrets.token_hex(4)}", f"m-{secrets.token_hex(4)}"
        steps = [
            {"do": "connect", "auth": {"token": token}, "timeoutMs": 10000},
            {"do": "waitUpgrade", "timeoutMs": 10000},
            {"do": "emit", "event": "chat:join-session", "args": [{"sessionId": session, "workspaceId": "demo", "agentId": "echo"}]},
            {"do": "wait", "event": "chat:join-session-success", "timeoutMs": 10000},
            {"do": "emit", "event": "chat:send-message", "args": [{"message": {"id": message, "sessionId": session, "content": "hello from the wheel"}}]},
            {"do": "wait", "event": "chat:message-sent", "timeoutMs": 10000},
            {"do": "wait", "event": "chat:agent-stream-chunk", "timeoutMs": 10000},
            # The sender does not get its own message back: the first one received is the agent's reply.
            {"do": "wait", "event": "chat:message-received", "timeoutMs": 15000},
        ]  # fmt: skip
        out = run_node(SIO_DRIVER, {"url": server.url, "steps": steps}, timeout=60)
        connected, upgraded, _, joined, _, sent, chunk, reply = out["results"]
        assert connected == {"connected": True}, out
        assert upgraded == {"transport": "websocket"}, out
        assert joined["args"][0]["sessionId"] == session and joined["args"][0]["agentId"] == "echo", joined
        assert sent["args"][0]["messageId"] == message and sent["args"][0]["seq"] == 1, sent
        assert chunk["args"][0]["sessionId"] == session, chunk
        reply = reply["args"][0]
        assert (reply["senderType"], reply["content"], reply["seq"]) == ("agent", "Echo: hello from the wheel", 2)

        status, _, metrics = _get(f"{server.url}/metrics")
        metrics_text = metrics.decode()
        assert status == 200
        assert 'chat_agent_runs_total{backend="echo"} 1.0' in metrics_text, metrics_text[:2000]
        assert re.search(r'^chat_session_joins_total\{workspace="[^"]+"\} 1\.0$', metrics_text, re.MULTILINE)
        log = server.log_text()
        assert "Traceback" not in log, server.log_tail()
        assert "/socket.io/" not in log and session not in log, f"a request path in the log:\n{log}"
    finally:
        server.stop()
    print(f"steps (s): {timings}")
