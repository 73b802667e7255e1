"""The JavaScript client and its React bindings in Chromium (``clients/js``).

The example app (``clients/js/example``: ChatSocketProvider around RealTimeChat,
in React's strict mode, as a development build so strict mode's double effects
really run) is served by ``vite preview`` in front of a real chat server, and
people chat through it: two users and the echo agent; a server restart in
the middle; a message written offline; an agent's reply streaming and
being stopped; a reply's steps, rating and regeneration, and an image
uploaded by one user and seen by the other.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.browser.conftest import ARTIFACTS, ChatServer
from tests.browser.example_app import ExamplePage, ExampleServer, build_example
from tests.browser.support import check_accessibility, shot
from tests.integration.attachment_files import png


@pytest.fixture(scope="session")
def example_build() -> Path:
    return build_example()


@pytest.fixture
def example_app(example_build: Path, chat_server: ChatServer, tmp_path: Path) -> Iterator[ExampleServer]:
    app = ExampleServer(chat_server.url, tmp_path / "vite-preview.log")
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture
def open_example(
    browser: Any, example_app: ExampleServer, request: pytest.FixtureRequest
) -> Iterator[Callable[..., ExamplePage]]:
    """``open_example("demo")`` -> an :class:`ExamplePage` in a browser context of its own."""
    contexts: list[Any] = []
    pages: list[ExamplePage] = []

    def open_page(username: str) -> ExamplePage:
        context = browser.new_context(viewport={"width": 1000, "height": 900})
        contexts.append(context)
        page = ExamplePage(context.new_page(), example_app, username)
        pages.append(page)
        return page

    yield open_page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        failures = ARTIFACTS / "failures"
        failures.mkdir(parents=True, exist_ok=True)
        for index, page in enumerate(pages):
            try:
                page.page.screenshot(path=str(failures / f"{request.node.name}-{index}-{page.username}.png"))
            except Exception:  # a closed page: nothing to show
                pass
    for context in contexts:
        context.close()
    errors = [f"{page.username}: {error}" for page in pages for error in page.errors]
    if errors and report is not None and report.passed:
        pytest.fail("uncaught errors in the pages' scripts:\n" + "\n".join(errors), pytrace=False)


def new_session() -> str:
    return f"rtc-{uuid.uuid4().hex[:10]}"


def share(server: ChatServer, session: str, username: str) -> None:
    status, body = server.rest("POST", f"workspaces/demo/sessions/{session}/share/", user="demo", body={"username": username})
    assert status in (200, 201), (status, body)


def stored(server: ChatServer, session: str) -> list[dict[str, Any]]:
    """The session's messages as the server stored them (REST), by seq."""
    status, body = server.rest("GET", f"workspaces/demo/sessions/{session}/messages/?limit=200", user="demo")
    assert status == 200, (status, body)
    return body["results"]


def shown(page: ExamplePage) -> list[tuple[int | None, str]]:
    return [(m["seq"], m["text"]) for m in page.messages()]


def assert_strict_and_one_connection(page: ExamplePage, joins: int = 1) -> None:
    """Strict mode ran the effects twice, and still: one Engine.IO connection, ``joins`` joins."""
    assert page.strict_mount_effects() == 2, "the example must run in strict mode (a development build)"
    assert len(page.handshakes) == 1, page.handshakes
    assert len(page.sent("chat:join-session")) == joins, page.sent("chat:join-session")


def test_two_users_and_the_echo_agent_chat(chat_server: ChatServer, open_example: Callable[..., ExamplePage]) -> None:
    session = new_session()
    demo = open_example("demo").open(session, agent="echo")
    share(chat_server, session, "guest")
    guest = open_example("guest").open(session, agent="echo")

    demo.send("Hello guest")
    for side in (demo, guest):
        side.wait_message("Echo: Hello guest", state="stored")
    guest.wait_message("Hello guest", state="stored")
    assert demo.message("Hello guest").get_attribute("data-state") == "sent"

    guest.send("Hello demo")
    for side in (demo, guest):
        side.wait_message("Echo: Hello demo", state="stored")
    demo.wait_message("Hello demo", state="stored")

    expected = [(1, "Hello guest"), (2, "Echo: Hello guest"), (3, "Hello demo"), (4, "Echo: Hello demo")]
    assert shown(demo) == expected
    assert shown(guest) == expected
    assert [(m["seq"], m["content"]) for m in stored(chat_server, session)] == expected
    # Who wrote what, from each side.
    by_text = {m["text"]: m for m in guest.messages()}
    assert by_text["Hello demo"]["author"] == "You" and by_text["Hello guest"]["author"] == "demo"
    assert by_text["Echo: Hello demo"]["author"] == "Echo agent"
    # Each sees the other: guest live (user-joined), demo from the REST presence on joining.
    demo.page.wait_for_function("() => document.querySelector('.rtc__person[data-user=guest]')")
    guest.page.wait_for_function("() => document.querySelector('.rtc__person[data-user=demo]')")

    for side in (demo, guest):
        assert_strict_and_one_connection(side)
        assert len(side.sent("chat:send-message")) == 1

    shot(demo.page, "js-client-two-users")
    violations = check_accessibility(demo.page, "js-client-chat")
    assert violations == [], json.dumps(violations, indent=2)


def test_server_restart_mid_conversation(chat_server: ChatServer, open_example: Callable[..., ExamplePage]) -> None:
    session = new_session()
    demo = open_example("demo").open(session, agent=None)
    share(chat_server, session, "guest")
    guest = open_example("guest").open(session, agent=None)

    demo.send("Before the restart (demo)")
    guest.wait_message("Before the restart (demo)", state="stored")
    guest.send("Before the restart (guest)")
    demo.wait_message("Before the restart (guest)", state="stored")

    chat_server.stop()
    for side in (demo, guest):
        side.wait_connection("reconnecting", timeout=15_000)
    # Written while the server is down: kept, waiting, sent once the connection is back.
    demo.send("Written while the server was down")
    waiting = demo.wait_message("Written while the server was down", state="pending")
    assert waiting["status"] == "Waiting for connection…"
    shot(demo.page, "js-client-reconnecting")

    # The guest's network stays out a little longer, so it misses what is sent meanwhile.
    guest.page.context.route("**/socket.io/**", lambda route: route.abort())
    chat_server.start_again()
    demo.wait_connection("connected", timeout=20_000)
    demo.wait_message("Written while the server was down", state="sent", timeout=15_000)
    demo.send("After the restart (demo)")
    demo.wait_message("After the restart (demo)", state="sent")

    guest.page.context.unroute("**/socket.io/**")
    guest.page.get_by_role("button", name="Retry now").click()
    guest.wait_connection("connected", timeout=20_000)
    guest.wait_message("After the restart (demo)", state="stored")
    guest.send("After the restart (guest)")
    demo.wait_message("After the restart (guest)", state="stored")

    expected = [
        (1, "Before the restart (demo)"),
        (2, "Before the restart (guest)"),
        (3, "Written while the server was down"),
        (4, "After the restart (demo)"),
        (5, "After the restart (guest)"),
    ]
    for side in (demo, guest):
        side.page.wait_for_function(f"() => document.querySelectorAll('.rtc__messages > li').length >= {len(expected)}")
        assert shown(side) == expected, shown(side)
        assert len({m["id"] for m in side.messages()}) == len(expected)
    assert [m["id"] for m in demo.messages()][2] == waiting["id"]
    assert [(m["seq"], m["content"]) for m in stored(chat_server, session)] == expected
    # The message written while the server was down went out once (the server was down, nothing to repeat).
    assert len(demo.sent("chat:send-message", "Written while the server was down")) == 1
    shot(guest.page, "js-client-after-restart")


def test_a_message_written_offline_is_sent_once_after_reconnecting(
    chat_server: ChatServer, open_example: Callable[..., ExamplePage]
) -> None:
    session = new_session()
    demo = open_example("demo").open(session, agent=None)
    demo.send("Online first")
    demo.wait_message("Online first", state="sent")

    context = demo.page.context
    context.set_offline(True)
    context.route("**/socket.io/**", lambda route: route.abort())  # and the open socket is gone
    demo.wait_connection("offline", timeout=60_000)
    demo.send("Written offline")
    waiting = demo.wait_message("Written offline", state="pending")
    assert waiting["status"] == "Waiting for connection…"
    demo.page.wait_for_timeout(1_500)
    assert demo.sent("chat:send-message", "Written offline") == []

    context.unroute("**/socket.io/**")
    context.set_offline(False)
    demo.wait_connection("connected", timeout=30_000)
    demo.wait_message("Written offline", state="sent", timeout=15_000)
    demo.page.wait_for_timeout(1_000)  # anything repeated would be in by now

    assert shown(demo) == [(1, "Online first"), (2, "Written offline")]
    assert len(demo.sent("chat:send-message", "Written offline")) == 1
    assert [(m["seq"], m["content"]) for m in stored(chat_server, session)] == [(1, "Online first"), (2, "Written offline")]
    assert [m["id"] for m in demo.messages()][1] == waiting["id"]


def test_the_agents_reply_streams_visibly_and_can_be_stopped(
    chat_server: ChatServer, open_example: Callable[..., ExamplePage]
) -> None:
    # The echo agent answers word by word, a chunk every 120 ms.
    chat_server.shell("from chat.models import Agent\nAgent.objects.filter(key='echo').update(config={'delay_ms': 120})")
    session = new_session()
    demo = open_example("demo").open(session, agent="echo")
    demo.record_streams()

    words = " ".join(f"word{i}" for i in range(12))
    demo.send(words)
    reply = demo.wait_message(f"Echo: {words}", state="stored")
    texts = [e["text"] for e in demo.streamed() if e["id"] == reply["id"] and e["state"] == "streaming"]
    assert len(texts) >= 5, texts  # it grew on screen, chunk by chunk
    assert all(later.startswith(earlier) and later != earlier for earlier, later in zip(texts, texts[1:])), texts
    assert texts[0] == "Echo:"

    long = " ".join(f"long{i}" for i in range(60))
    demo.send(long)
    demo.page.wait_for_function(
        """() => { const li = document.querySelector('.rtc__messages > li[data-state=streaming]');
                   return li && li.querySelector('.rtc-msg__body').textContent.split(' ').length >= 4; }"""
    )
    assert "Echo agent is typing" in demo.page.inner_text(".rtc__typing")
    streaming = demo.page.locator(".rtc__messages > li[data-state=streaming]")
    stopped_id = streaming.get_attribute("data-id")
    streaming.get_by_role("button", name="Stop the reply").click()
    demo.page.wait_for_selector(f'.rtc__messages > li[data-id="{stopped_id}"][data-state=stored]')
    stopped = next(m for m in demo.messages() if m["id"] == stopped_id)
    assert "Stopped" in stopped["status"]
    full = f"Echo: {long}"
    assert full.startswith(stopped["text"]) and len(stopped["text"]) < len(full), stopped
    demo.page.wait_for_function("() => document.querySelector('.rtc__typing').textContent === ''")

    on_server = {m["id"]: m for m in stored(chat_server, session)}
    assert on_server[stopped_id]["content"] == stopped["text"]
    assert on_server[stopped_id]["metadata"].get("cancelled") is True
    assert len(demo.sent("chat:cancel-agent")) == 1
    assert_strict_and_one_connection(demo)
    shot(demo.page, "js-client-stopped-reply")


def test_agent_steps_rating_regeneration_and_an_uploaded_image(
    chat_server: ChatServer, open_example: Callable[..., ExamplePage]
) -> None:
    session = new_session()
    demo = open_example("demo").open(session, agent="echo")
    share(chat_server, session, "guest")
    guest = open_example("guest").open(session, agent="echo")

    # A reply with steps: reasoning and a tool call, shown as text, collapsed, open on Enter.
    demo.send("/tool count <b>these</b> words")
    text = "Echo: /tool count <b>these</b> words"
    reply_id = demo.wait_message(text, state="stored")["id"]
    reply = demo.page.locator(f'.rtc__messages > li[data-id="{reply_id}"]')
    steps = reply.locator("details.rtc-step")
    assert steps.count() == 2
    assert steps.nth(0).locator("summary").inner_text() == "Reasoning"
    tool = reply.locator('details[data-step-key="tool:echo-call-1"]')
    assert tool.get_attribute("data-status") == "completed"
    summary = tool.locator("summary")
    summary.focus()
    demo.page.keyboard.press("Enter")
    assert tool.evaluate("d => d.open") is True
    shown_steps = tool.locator("pre").all_inner_texts()
    assert json.loads(shown_steps[0]) == {"text": "/tool count <b>these</b> words"}
    assert json.loads(shown_steps[1]) == {"words": 4}
    assert reply.locator("b").count() == 0
    shot(demo.page, "js-client-agent-steps")

    # Thumbs up: pressed, with the count the server keeps; the keyboard works it too.
    up = reply.get_by_role("button", name="Good reply")
    up.focus()
    demo.page.keyboard.press("Enter")
    demo.page.wait_for_function(
        "id => document.querySelector(`li[data-id='${id}'] button[data-action=rate-up]`).getAttribute('aria-pressed') === 'true'",
        arg=reply_id,
    )
    assert reply.get_by_role("button", name="Good reply, 1").get_attribute("aria-pressed") == "true"
    assert len(demo.sent("chat:rate-message", '"rating":"up"')) == 1

    # Regenerate: the answer streams again into the same reply and is stored as its next version.
    reply.get_by_role("button", name="Regenerate this reply").click()
    demo.page.wait_for_selector(f'li[data-id="{reply_id}"][data-version="2"][data-state=stored]')
    assert len(demo.sent("chat:regenerate")) == 1

    # An image: uploaded with progress, sent, shown inline to both -- the guest received it live
    # without a link and asked the server for one.
    picked = {"name": "red.png", "mimeType": "image/png", "buffer": png(8, 6)}
    demo.page.set_input_files("input[type=file]", files=[picked])
    demo.page.wait_for_selector(".rtc-upload[data-state=ready]")
    demo.page.click("form button[type=submit]")
    for side in (demo, guest):
        side.page.wait_for_function(
            """() => [...document.querySelectorAll('.rtc__messages > li .rtc-attachment img')]
                 .some(img => img.alt === 'red.png' && img.complete && img.naturalWidth === 8)"""
        )
    assert demo.page.locator(".rtc-uploads").count() == 0
    (message,) = [m for m in stored(chat_server, session) if m.get("attachments")]
    assert [a["name"] for a in message["attachments"]] == ["red.png"]

    for side in (demo, guest):
        assert_strict_and_one_connection(side)
    shot(demo.page, "js-client-steps-and-files")
    violations = check_accessibility(demo.page, "js-client-steps-and-files")
    assert violations == [], json.dumps(violations, indent=2)
