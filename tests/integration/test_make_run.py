"""``make run``: one command that migrates, creates the demo data and serves the production protocol.

It serves with uvicorn and the flags production uses (``docs/deployment.md``),
less what only matters behind nginx, and without an access log: request
paths carry Parlant tokens, so no path may reach the log.  ``SERVER=daphne``
serves the same application with daphne, which stays supported.
"""

from __future__ import annotations

import secrets
import shlex
import subprocess
import urllib.error
import urllib.request

import aiohttp
import pytest

from tests.conftest import REPO_ROOT, SERVERS, ServerProcess, _base_env, free_port
from tests.integration import deployment_docs as documented
from tests.integration.clients import RawEngine

#: Production flags that make run leaves out: keep-alive is tuned for nginx, and a
#: local server should stop at once on Ctrl-C.
NOT_FOR_ONE_LOCAL_PROCESS = {"--host", "--port", "--timeout-keep-alive", "--timeout-graceful-shutdown"}


def _make_env(**settings: str) -> dict[str, str]:
    """The runner's environment for a make of our own (not a sub-make of ``make test``)."""
    env = _base_env(**settings)
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    return env


def _flags(command: list[str]) -> dict[str, str | None]:
    """``--flag value`` pairs (a flag followed by another flag has the value None)."""
    flags: dict[str, str | None] = {}
    for index, arg in enumerate(command):
        if arg.startswith("--"):
            following = command[index + 1] if index + 1 < len(command) else None
            flags[arg] = None if following is None or following.startswith("--") else following
    return flags


def test_make_run_serves_uvicorn_with_the_production_protocol_and_flags():
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", "PORT=8123"],
        cwd=REPO_ROOT,
        env=_make_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [line for line in dry_run.splitlines() if "chatsite.asgi:application" in line]
    command = shlex.split(line)
    assert command[:3] == ["exec", ".venv/bin/uvicorn", "chatsite.asgi:application"], command
    production = _flags(documented.production_command())
    served = _flags(command)
    assert {flag: served.get(flag, "missing") for flag in production if flag not in NOT_FOR_ONE_LOCAL_PROCESS} == {
        flag: value for flag, value in production.items() if flag not in NOT_FOR_ONE_LOCAL_PROCESS
    }
    assert "--no-access-log" in served and (served["--host"], served["--port"]) == ("127.0.0.1", "8123")


@pytest.fixture(params=SERVERS)
def make_run(request, tmp_path):
    """``make run`` on a free port, on a database of its own (the checkout's db.sqlite3 stays untouched)."""
    port = free_port()
    env = _make_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    command = ["make", "--no-print-directory", "run", f"PORT={port}", f"SERVER={request.param}"]
    server = ServerProcess(command, env, port, tmp_path / "make-run.log")
    try:
        yield request.param, server.start(timeout=180)  # the first run may install the virtualenv
    finally:
        server.stop()


def _status(url: str) -> int:
    request = urllib.request.Request(url)
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


async def test_make_run_migrates_creates_the_demo_and_logs_no_request_path(make_run):
    server_name, server = make_run
    # The page (anonymous: to the login page), the login page, the widget's script.
    assert _status(f"{server.url}/") == 302
    assert _status(f"{server.url}/login/") == 200
    assert _status(f"{server.url}/static/vendor/socket.io.min.js") == 200
    # Paths a client controls: an unknown page, and a Parlant URL carrying a token.
    secret = secrets.token_hex(8)
    assert _status(f"{server.url}/no-such-page-{secret}") == 404
    assert _status(f"{server.url}/parlant/sessions/sock_{secret}/events") in (401, 403, 404)
    # The Socket.IO handshake over polling, then a WebSocket through the served protocol.
    async with aiohttp.ClientSession() as http:
        raw = RawEngine(http, server.url)
        handshake = await raw.handshake()
        assert handshake["upgrades"] == ["websocket"] and handshake["sid"]
        ws = await raw.websocket()
        assert (await ws.receive_str(timeout=5)).startswith("0{")
        await ws.close()

    log = server.log_text()
    assert f"Open http://127.0.0.1:{server.port}/ and log in as demo/demo" in log
    assert "Demo data ready" in log, "make run creates the demo data"
    assert ("Uvicorn running on" in log) == (server_name == "uvicorn"), log
    for path in ("/socket.io/", "/login/", "/static/", secret):
        assert path not in log, f"the log shows a request path ({path}):\n{log}"
