"""The embeddable widget on another site: one-time socket tokens from the host page, launcher and inline modes."""

from __future__ import annotations

import http.server
import json
import re
import threading

import pytest

from tests.browser.support import check_accessibility, shot

HOST_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Example shop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body {{ font: 16px system-ui; margin: 0; padding: 32px; background: #f8fafc; color: #0f172a; }}</style>
</head><body>
<main><h1>Example shop</h1><p>Questions? Our support chat is in the corner.</p><div id="chat-here"></div></main>
<script>
  // The host page's own backend trades its credentials for one-time socket tokens.
  window.getChatToken = () => fetch("/__host__/token", {{ method: "POST" }}).then(r => r.json()).then(d => d.token);
</script>
<script src="{server}/widget.js" async {attributes}></script>
</body></html>
"""


class HostSite:
    """Another website on this machine (http://localhost:PORT, another origin and site than the chat server).

    It serves one page embedding the widget and, like a real host's backend, a token endpoint that
    trades its own API credentials for one-time socket tokens.
    """

    def __init__(self, server) -> None:
        self.server = server
        self.page_html = ""
        self.token_user = "guest"
        self.token_calls = 0
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._send(200, "text/html; charset=utf-8", site.page_html.encode())

            def do_POST(self) -> None:
                if self.path != "/__host__/token":
                    self._send(404, "text/plain", b"not found")
                    return
                site.token_calls += 1
                token = site.server.socket_token(site.token_user)
                self._send(200, "application/json", json.dumps({"token": token}).encode())

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://localhost:{self.httpd.server_address[1]}"

    def open(self, page, attributes: str) -> None:
        self.page_html = HOST_PAGE.format(server=self.server.url, attributes=attributes)
        page.goto(f"{self.url}/__host__/")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def host_site(chat_server):
    site = HostSite(chat_server)
    yield site
    site.close()


def widget_frame(page):
    page.wait_for_function("() => document.querySelector('[data-chat-widget]')")
    for _ in range(100):
        frame = next((f for f in page.frames if "/embed/" in f.url), None)
        if frame is not None:
            return frame
        page.wait_for_timeout(100)
    raise AssertionError("the widget's iframe never appeared")


def wait_frame(frame, predicate: str, arg=None, timeout: float = 30_000) -> None:
    """wait_for_function, polling on a timer: a closed widget's iframe is not rendered, so it gets no frames."""
    frame.wait_for_function(predicate, arg=arg, polling=100, timeout=timeout)


def wait_banner(frame, state: str, timeout: float = 30_000) -> None:
    wait_frame(frame, "(s) => document.querySelector('[data-connection-banner]').dataset.state === s", state, timeout)


def frame_messages(frame):
    return frame.evaluate(
        "() => [...document.querySelectorAll('[data-message-list] > li')].map(li => "
        "({text: li.querySelector('.msg__body').innerText, state: li.dataset.state, id: li.dataset.id}))"
    )


def wait_frame_message(frame, text: str, state: str | None = None) -> None:
    wait_frame(
        frame,
        """([text, state]) => [...document.querySelectorAll('[data-message-list] > li')].some(li =>
             li.querySelector('.msg__body').innerText === text && (!state || li.dataset.state === state))""",
        [text, state],
    )


def test_launcher_widget_with_one_time_tokens(chat_server, open_user, new_context, host_site):
    context = new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    first_token = chat_server.socket_token("guest")
    host_site.open(
        page,
        f'data-workspace="demo" data-session="shop-support-1" data-title="Support" '
        f'data-token="{first_token}" data-token-callback="getChatToken"',
    )
    frame = widget_frame(page)
    wait_frame(frame, "() => window.chatApp?.room?.status === 'joined' && window.chatApp.room.initialLoaded")
    assert host_site.token_calls == 0  # the first connection used data-token

    launcher = page.get_by_role("button", name="Open chat")
    assert launcher.get_attribute("aria-expanded") == "false"
    launcher.click()
    assert page.get_by_role("button", name="Close chat").get_attribute("aria-expanded") == "true"
    wait_frame(frame, "() => document.activeElement?.id === 'composer-input'")
    frame.fill("#composer-input", "Hi, I have a question about my order")
    frame.press("#composer-input", "Enter")
    wait_frame_message(frame, "Hi, I have a question about my order", "sent")

    demo = open_user("demo")  # support staff on the site itself
    demo.open_session("shop-support-1")
    assert demo.wait_message("Hi, I have a question about my order")["author"] == "guest"
    demo.send("Hello! Which order number?")
    wait_frame_message(frame, "Hello! Which order number?", "stored")
    shot(page, "widget-open")

    violations = check_accessibility(frame, "widget-frame")
    assert not violations, json.dumps(violations, indent=2)

    # Escape closes it, focus back on the launcher; new messages count on the badge.
    frame.focus("#composer-input")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Open chat").wait_for()
    assert page.evaluate("() => document.activeElement?.matches('[data-chat-widget]')")
    demo.send("It will arrive tomorrow.")
    page.get_by_role("button", name="Open chat (1 new)").wait_for()
    shot(page, "widget-unread")

    # A restart: the widget reconnects with a fresh token from the host page's callback.
    chat_server.stop()
    wait_banner(frame, "reconnecting")
    chat_server.start_again()
    wait_banner(frame, "connected")
    assert host_site.token_calls >= 1
    page.get_by_role("button", name=re.compile("^Open chat")).click()
    frame.fill("#composer-input", "Thanks!")
    frame.press("#composer-input", "Enter")
    wait_frame_message(frame, "Thanks!", "sent")
    demo.wait_message("Thanks!", state="stored", timeout=20_000)
    texts = [m["text"] for m in frame_messages(frame)]
    assert texts == [
        "Hi, I have a question about my order",
        "Hello! Which order number?",
        "It will arrive tomorrow.",
        "Thanks!",
    ], texts


def test_inline_widget_and_a_refused_token(chat_server, new_context, host_site):
    context = new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(30_000)
    host_site.open(
        page,
        'data-workspace="demo" data-session="inline-1" data-mode="inline" data-target="#chat-here" '
        'data-height="520px" data-token="sock_not-a-real-token"',
    )
    frame = widget_frame(page)
    # A token the server refuses (and no callback to get another): the widget says so and stops.
    wait_banner(frame, "failed")
    assert "could not sign you in" in frame.inner_text("[data-connection-text]")
    shot(page, "widget-inline-refused")

    page.close()
    page = context.new_page()
    host_site.open(
        page,
        'data-workspace="demo" data-session="inline-1" data-mode="inline" data-target="#chat-here" '
        f'data-height="520px" data-token="{chat_server.socket_token("guest")}" data-theme="dark"',
    )
    frame = widget_frame(page)
    wait_frame(frame, "() => window.chatApp?.room?.status === 'joined'")
    frame.fill("#composer-input", "Inline and dark")
    frame.press("#composer-input", "Enter")
    wait_frame_message(frame, "Inline and dark", "sent")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "widget-inline-dark-phone")
    violations = check_accessibility(frame, "widget-inline-dark")
    assert not violations, json.dumps(violations, indent=2)
