"""The real ``parlant-chat-react`` widget (npm, unchanged) against our Parlant-compatible API.

The page (``tests/browser/parlant_page/``) is built once per test run with
the project's pinned esbuild from ``node_modules`` and served by another
site on loopback (``http://localhost:PORT``, another origin than the chat
server, which allows it through ``CHAT_ALLOWED_ORIGINS``).  The widget gets
its token the only way it can: inside its ``server`` URL.  A
python-socketio client in the same session (a support person, ``demo``)
sees the widget user's message and the echo agent's streamed reply, and
answers; the widget shows that too.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import socketio

from tests.browser.support import shot
from tests.conftest import REPO_ROOT, node_available, require_service

PAGE = REPO_ROOT / "tests" / "browser" / "parlant_page"
ESBUILD = REPO_ROOT / "node_modules" / ".bin" / "esbuild"
WIDGET_PACKAGE = REPO_ROOT / "node_modules" / "parlant-chat-react" / "package.json"


# --- the page ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def parlant_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``main.jsx`` bundled with the pinned esbuild (once per run), next to ``index.html``."""
    require_service("node", *node_available())
    missing = [str(path.relative_to(REPO_ROOT)) for path in (ESBUILD, WIDGET_PACKAGE) if not path.exists()]
    require_service("parlant-chat-react and esbuild", not missing, f"missing {missing} (run `npm ci`)")
    out = tmp_path_factory.mktemp("parlant-page")
    done = subprocess.run(
        [
            str(ESBUILD),
            str(PAGE / "main.jsx"),
            "--bundle",
            "--format=iife",
            "--jsx=automatic",
            '--define:process.env.NODE_ENV="production"',
            "--minify",
            f"--outdir={out}",
            "--log-level=warning",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"esbuild failed:\n{done.stdout}\n{done.stderr}"
    shutil.copyfile(PAGE / "index.html", out / "index.html")
    return out


class PageSite:
    """Another website on loopback serving the built page; ``config`` becomes ``window.parlantConfig``."""

    def __init__(self, root: Path) -> None:
        self.config: dict[str, Any] = {}
        site = self
        types = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.split("?", 1)[0].lstrip("/") or "index.html"
                if name == "config.js":
                    body = f"window.parlantConfig = {json.dumps(site.config)};".encode()
                    self._send(200, "text/javascript", body)
                    return
                file = root / name
                if "/" in name or not file.is_file():
                    self._send(404, "text/plain", b"not found")
                    return
                self._send(200, types.get(file.suffix, "application/octet-stream"), file.read_bytes())

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://localhost:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def page_site(parlant_bundle: Path):
    site = PageSite(parlant_bundle)
    yield site
    site.close()


# --- a socket user ---------------------------------------------------------------------------------------


class SocketUser:
    """python-socketio's (threaded) client, recording every event; long-polling, no asyncio loop needed."""

    def __init__(self, url: str, token: str) -> None:
        self.events: list[tuple[str, Any]] = []
        self.sio = socketio.Client(reconnection=False)

        @self.sio.on("*")
        def any_event(event: str, *args: Any) -> None:
            self.events.append((event, args[0] if len(args) == 1 else args))

        self.sio.connect(url, auth={"token": token}, transports=["polling"], wait_timeout=10)

    def join(self, session: str) -> None:
        ack = self.sio.call("chat:join-session", {"sessionId": session, "workspaceId": "demo"}, timeout=10)
        assert ack.get("ok") is True, ack

    def send(self, session: str, content: str) -> None:
        message = {"id": f"s-{uuid.uuid4().hex[:10]}", "sessionId": session, "content": content}
        ack = self.sio.call("chat:send-message", {"message": message}, timeout=10)
        assert ack.get("ok") is True, ack

    def named(self, name: str) -> list[Any]:
        return [data for event, data in list(self.events) if event == name]

    def wait_for(self, name: str, predicate: Any, timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [data for data in self.named(name) if predicate(data)]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no {name} matching within {timeout}s; got {self.events}")

    def close(self) -> None:
        self.sio.disconnect()


# --- the widget on the page ---------------------------------------------------------------------------------

#: Messages the widget shows: who it says they are from, and their text (the body, not the name above it).
WIDGET_MESSAGES_JS = """() => [...document.querySelectorAll('[role=list] [role=group]')].map(g => ({
  from: g.getAttribute('aria-label'), text: g.querySelector('[aria-live]').innerText.trim() }))"""

#: Records what the widget shows over time (its status line and the texts it shows).
RECORDER_JS = """() => {
  window.__seen = [];
  const snap = () => window.__seen.push({ t: performance.now(), typing: document.body.innerText.includes('Typing...'),
    texts: [...document.querySelectorAll('[role=list] [role=group] [aria-live]')].map(b => b.innerText.trim()) });
  new MutationObserver(snap).observe(document.body, { subtree: true, childList: true, characterData: true });
  snap();
}"""


def widget_texts(page: Any) -> list[str]:
    return [m["text"] for m in page.evaluate(WIDGET_MESSAGES_JS)]


def wait_widget_text(page: Any, text: str, timeout: float = 30_000) -> None:
    page.wait_for_function(
        "(text) => [...document.querySelectorAll('[role=list] [role=group] [aria-live]')].some(b => b.innerText.trim() === text)",
        arg=text,
        timeout=timeout,
    )


def type_message(page: Any, text: str) -> None:
    box = page.get_by_role("textbox", name="Type your message")
    box.fill(text)
    box.press("Enter")


def open_widget(context: Any, site: PageSite, config: dict[str, Any]) -> tuple[Any, list[str]]:
    site.config = config
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{site.url}/index.html")
    page.wait_for_function("() => window.parlantMounted === true")
    page.get_by_role("textbox", name="Type your message").wait_for()
    return page, errors


def parlant_post(server: Any, path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
    """A Parlant API call with ``Authorization: Bearer`` (how a non-widget client signs in)."""
    request = urllib.request.Request(
        f"{server.url}/parlant/demo/{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return json.loads(response.read())


def test_the_parlant_widget_chats_with_the_echo_agent_and_socket_users(chat_server_factory, new_context, page_site):
    server = chat_server_factory(CHAT_ALLOWED_ORIGINS=page_site.url)
    # The echo agent answers a word every 150 ms, so the reply streams for a while even on a loaded machine.
    server.shell("from chat.models import Agent\nAgent.objects.filter(key='echo').update(config={'delay_ms': 150})")
    context = new_context(viewport={"width": 1000, "height": 900})
    context.route("https://fonts.googleapis.com/**", lambda route: route.abort())  # the widget's web font: offline

    # The shop's backend opens a Parlant session for its customer (guest) and hands the widget a one-time token.
    session = parlant_post(
        server, "sessions", {"agent_id": "echo", "title": "Order question"}, server.api_token("guest")
    )
    assert session["agent_id"] == "echo" and session["customer_id"] == "guest"
    support = SocketUser(server.url, server.api_token("demo"))
    try:
        support.join(session["id"])
        server_url = f"{server.url}/parlant/demo/t/{server.socket_token('guest')}"
        page, errors = open_widget(
            context, page_site, {"server": server_url, "agentId": "echo", "sessionId": session["id"]}
        )
        page.wait_for_function("() => document.body.innerText.includes('Echo agent')")  # read from /agents/echo
        page.evaluate(RECORDER_JS)

        type_message(page, "Hello from the widget")
        reply = "Echo: Hello from the widget"
        wait_widget_text(page, reply)
        shown = page.evaluate(WIDGET_MESSAGES_JS)
        assert [m["text"] for m in shown][-2:] == ["Hello from the widget", reply], shown
        assert shown[-2]["from"] == "Message from You" and shown[-1]["from"] == "Message from Echo agent", shown
        # While the reply streamed the widget said the agent was typing, then showed the reply.
        seen = page.evaluate("() => window.__seen")
        typing_at = next((s["t"] for s in seen if s["typing"]), None)
        reply_at = next(s["t"] for s in seen if reply in s["texts"])
        assert typing_at is not None and typing_at < reply_at, seen

        # The support person's socket saw both, live: the message, the reply's chunks, the stored reply.
        mine = support.wait_for("chat:message-received", lambda m: m["content"] == "Hello from the widget")
        assert mine["userName"] == "guest" and mine["senderType"] == "user" and mine["sessionId"] == session["id"]
        stored = support.wait_for("chat:message-received", lambda m: m["content"] == reply)
        assert stored["senderType"] == "agent"
        chunks = [c for c in support.named("chat:agent-stream-chunk") if c["messageId"] == stored["id"]]
        assert len(chunks) >= 3 and chunks[-1]["isComplete"] is True, chunks
        assert "".join(c["chunk"] for c in chunks) == reply

        # ...and answers: the widget shows it.
        support.send(session["id"], "A person from support here.")
        wait_widget_text(page, "A person from support here.")
        shot(page, "parlant-widget")
        texts = widget_texts(page)
        assert texts[-3:] == ["Hello from the widget", reply, "A person from support here."], texts
        assert errors == [], errors
    finally:
        support.close()


def test_the_parlant_widget_creates_its_session_on_the_first_message(chat_server_factory, new_context, page_site):
    server = chat_server_factory(CHAT_ALLOWED_ORIGINS=page_site.url)
    context = new_context(viewport={"width": 1000, "height": 900})
    context.route("https://fonts.googleapis.com/**", lambda route: route.abort())
    server_url = f"{server.url}/parlant/demo/t/{server.socket_token('guest')}"
    page, errors = open_widget(context, page_site, {"server": server_url, "agentId": "echo"})

    type_message(page, "Is anyone there?")
    wait_widget_text(page, "Echo: Is anyone there?")
    session_id = page.evaluate("() => window.parlantSessionId")
    assert isinstance(session_id, str) and session_id
    # The session is ours, like any other: its owner reads it over the REST API.
    status, body = server.rest("GET", f"workspaces/demo/sessions/{session_id}/messages/", user="guest")
    assert status == 200, body
    assert [(m["senderType"], m["content"]) for m in body["results"]] == [
        ("user", "Is anyone there?"),
        ("agent", "Echo: Is anyone there?"),
    ]
    shot(page, "parlant-widget-new-session")
    assert errors == [], errors
