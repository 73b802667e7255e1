"""The JavaScript client's example app (``clients/js/example``) for the browser tests.

- :func:`build_example` -- ``npm run build:example:strict`` in ``clients/js``:
  the packages, then the example as a development build, so React's strict
  mode really runs every effect twice.
- :class:`ExampleServer` -- ``vite preview`` of that build, proxying the chat
  server's paths to a test's server (the way ``npm run example`` does for
  ``make run``), on a free port.
- :class:`ExamplePage` -- what a test does on the page, in the words of the UI,
  plus a record of every Socket.IO packet the page sent (polling bodies and
  WebSocket frames) and of every Engine.IO handshake it made.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT, free_port, require_service

JS_ROOT = REPO_ROOT / "clients" / "js"
EXAMPLE_BUILD = JS_ROOT / "example" / "dist-strict"
VITE = JS_ROOT / "node_modules" / "vite" / "bin" / "vite.js"
DEFAULT_TIMEOUT_MS = 30_000

#: Every message on screen, as the DOM shows it.
MESSAGES_JS = """() => [...document.querySelectorAll('.rtc__messages > li')].map(li => ({
  id: li.dataset.id,
  seq: li.dataset.seq ? Number(li.dataset.seq) : null,
  state: li.dataset.state,
  sender: li.dataset.senderType,
  mine: li.dataset.mine === 'true',
  author: li.querySelector('.rtc-msg__author')?.textContent ?? '',
  text: (li.querySelector('.rtc-msg__body')?.textContent ?? '').trim(),
  status: li.querySelector('.rtc-msg__status')?.textContent ?? '',
}))"""

#: Records every text and state an agent's reply goes through, as the DOM shows it.
STREAM_RECORDER_JS = """() => {
  const seen = window.__streamed = [];
  const snap = () => {
    for (const li of document.querySelectorAll('.rtc__messages > li[data-sender-type=agent]')) {
      const entry = { id: li.dataset.id, state: li.dataset.state, text: (li.querySelector('.rtc-msg__body')?.textContent ?? '').trim() };
      const last = seen.findLast(e => e.id === entry.id);
      if (!last || last.state !== entry.state || last.text !== entry.text) seen.push(entry);
    }
  };
  new MutationObserver(snap).observe(document.querySelector('.rtc'), { subtree: true, childList: true, characterData: true, attributes: true });
  snap();
}"""


def js_available() -> tuple[bool, str]:
    if shutil.which("node") is None:
        return False, "no `node` on PATH (Node 20.19+ is needed)"
    if not VITE.exists():
        return False, "clients/js/node_modules is missing (make install runs npm ci there)"
    return True, ""


def build_example() -> Path:
    """Build the packages and the example (development build: strict mode's double effects run)."""
    require_service("clients/js", *js_available())
    done = subprocess.run(
        ["npm", "run", "build:example:strict"], cwd=JS_ROOT, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the example failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return EXAMPLE_BUILD


class ExampleServer:
    """``vite preview`` of the built example, proxying to ``chat_url``."""

    def __init__(self, chat_url: str, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [
            "node", str(VITE), "preview", "--config", "example/vite.config.ts", "--outDir", "dist-strict",
            "--host", "127.0.0.1", "--port", str(self.port), "--strictPort", "--bypass-lock",
        ]  # fmt: skip
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=JS_ROOT,
                env={**os.environ, "CHAT_SERVER": chat_url},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vite preview exited with {self.process.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"vite preview did not answer within 30 s:\n{log_path.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


class ExamplePage:
    def __init__(self, page: Any, app: ExampleServer, username: str) -> None:
        self.page = page
        self.app = app
        self.username = username
        self.errors: list[str] = []
        self.packets: list[str] = []
        self.handshakes: list[str] = []
        page.set_default_timeout(DEFAULT_TIMEOUT_MS)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", self._on_request)
        page.on("websocket", lambda ws: ws.on("framesent", self._on_frame))

    def _on_request(self, request: Any) -> None:
        if "/socket.io/" not in request.url:
            return
        if "sid=" not in request.url:
            self.handshakes.append(request.url)
        if request.method == "POST" and request.post_data:
            self.packets.extend(request.post_data.split("\x1e"))

    def _on_frame(self, payload: Any) -> None:
        if isinstance(payload, str):
            self.packets.append(payload)

    def sent(self, event: str, containing: str = "") -> list[str]:
        """The Socket.IO packets the page sent for ``event`` (whose text contains ``containing``)."""
        marker = f'["{event}"'
        return [packet for packet in self.packets if marker in packet and containing in packet]

    # --- navigation ---

    def open(self, session: str, agent: str | None = "echo", password: str | None = None) -> ExamplePage:
        query = f"?session={session}&agent={agent or ''}"
        self.page.goto(f"{self.app.url}/{query}")
        if self.page.locator("#username").count():
            self.page.fill("#username", self.username)
            self.page.fill("#password", password or self.username)
            self.page.click("form button[type=submit]")
        self.wait_joined()
        return self

    def wait_joined(self) -> None:
        self.page.wait_for_selector(".rtc[data-status=joined][data-loaded=true]")

    def wait_connection(self, state: str, timeout: float = DEFAULT_TIMEOUT_MS) -> None:
        self.page.wait_for_selector(f".rtc__connection[data-state={state}]", state="attached", timeout=timeout)

    # --- chatting ---

    def send(self, text: str) -> None:
        self.page.fill(".rtc__input", text)
        self.page.press(".rtc__input", "Enter")

    def messages(self) -> list[dict[str, Any]]:
        return self.page.evaluate(MESSAGES_JS)

    def message(self, text: str) -> Any:
        """The locator of the message whose body is exactly ``text``."""
        return self.page.locator(".rtc__messages > li").filter(
            has=self.page.locator(".rtc-msg__body", has_text=re.compile(rf"^{re.escape(text)}$"))
        )

    def wait_message(self, text: str, state: str | None = None, timeout: float = DEFAULT_TIMEOUT_MS) -> dict[str, Any]:
        """Wait until a message with body ``text`` is shown (in ``state``, if given); returns it."""
        self.page.wait_for_function(
            """([text, state]) => [...document.querySelectorAll('.rtc__messages > li')].some(li =>
                 (li.querySelector('.rtc-msg__body')?.textContent ?? '').trim() === text && (!state || li.dataset.state === state))""",
            arg=[text, state],
            timeout=timeout,
        )
        return next(m for m in self.messages() if m["text"] == text and (state is None or m["state"] == state))

    def presence(self) -> dict[str, str]:
        return self.page.evaluate(
            "() => Object.fromEntries([...document.querySelectorAll('.rtc__person')]"
            ".map(li => [li.dataset.user, li.dataset.status]))"
        )

    def record_streams(self) -> None:
        self.page.evaluate(STREAM_RECORDER_JS)

    def streamed(self) -> list[dict[str, Any]]:
        return self.page.evaluate("() => window.__streamed ?? []")

    def strict_mount_effects(self) -> int:
        return self.page.evaluate("() => window.__strictMountEffects ?? 0")
