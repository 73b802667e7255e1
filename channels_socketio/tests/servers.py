"""Real server processes for the engine's tests: the conformance application under uvicorn or daphne."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = "channels_socketio.conformance_app:application"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One process serving the conformance application; stopped by :meth:`stop`."""

    def __init__(self, kind: str, log: Path, redis_url: str = "", extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if kind == "uvicorn":
            command = [sys.executable, "-m", "uvicorn", APP, "--port", str(self.port), "--lifespan", "off"]
        elif kind == "uvicorn-corked":  # as production runs it
            command = [sys.executable, "-m", "uvicorn", APP, "--port", str(self.port), "--lifespan", "off"]
            command += ["--ws", "channels_socketio.transport.uvicorn_websocket:CorkedWebSocketProtocol"]
        else:
            command = [sys.executable, "-m", "daphne", "-p", str(self.port), APP]
        # Nothing of the chat's configuration: only what the application itself reads.
        env = {key: value for key, value in os.environ.items() if not key.startswith(("CHAT_", "DJANGO_"))}
        env.update(SIO_REDIS_URL=redis_url, PYTHONUNBUFFERED="1", **(extra_env or {}))
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        self._wait()

    def _wait(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/engine.io/?EIO=4&transport=polling", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
