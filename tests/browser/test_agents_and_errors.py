"""Agent replies streaming in, and errors shown clearly: rate limits with a countdown, retry with the same id."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.support import shot

ECHO_WORDS = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"


def test_agent_reply_streams_in_before_it_completes(chat_server, open_user):
    demo = open_user("demo")
    demo.start_conversation(agent="echo")
    demo.record()
    demo.send(ECHO_WORDS)
    demo.wait_message(ECHO_WORDS, state="sent")
    # Mid-stream: a reply bubble that is still streaming, and the agent's typing indicator.
    try:
        demo.page.wait_for_selector(
            "[data-message-list] > li[data-sender-type=agent][data-state=streaming]", timeout=20_000
        )
    except PlaywrightTimeout:
        pytest.fail(
            "No agent reply streamed in within 20 s: the server sent no chat:agent-stream-chunk "
            "(is chat.agents.runner.on_user_message called by chat:send-message?)",
            pytrace=False,
        )
    shot(demo.page, "agent-streaming")
    final = demo.wait_message(f"Echo: {ECHO_WORDS}", state="stored", timeout=30_000)
    assert final["sender"] == "agent" and final["author"] == "Echo agent"

    steps = [e for e in demo.recorded() if e["id"] == final["id"]]
    partial = list(dict.fromkeys(e["text"] for e in steps if e["state"] == "streaming"))
    assert len(partial) >= 2, steps  # it grew visibly, chunk by chunk, before it was complete
    assert all(f"Echo: {ECHO_WORDS}".startswith(text) for text in partial)
    assert all(len(text) < len(f"Echo: {ECHO_WORDS}") for text in partial[:-1])
    assert steps[-1]["state"] == "stored"
    assert any(e["typing"] == "Echo agent is typing…" for e in demo.recorded())
    demo.page.wait_for_selector("[data-typing-text]:text-is('')", state="attached")
    # Exactly one reply, after the message it answers.
    messages = demo.messages()
    assert [m["text"] for m in messages] == [ECHO_WORDS, f"Echo: {ECHO_WORDS}"]
    assert messages[0]["seq"] < messages[1]["seq"]
    assert "Echo agent: Echo: one two" in demo.announcements()
    shot(demo.page, "agent-replied")


def test_rate_limited_send_shows_a_countdown(chat_server_factory, open_user):
    server = chat_server_factory(CHAT_MESSAGE_RATE_LIMIT="3")
    demo = open_user("demo", server=server)
    demo.start_conversation(agent=None)
    for i in range(1, 5):
        demo.send(f"Quick message {i}")
    for i in range(1, 4):
        demo.wait_message(f"Quick message {i}", state="sent")
    failed = demo.wait_message("Quick message 4", state="failed", timeout=10_000)

    alert = demo.page.locator("[data-error]")
    text = alert.inner_text()
    match = re.search(r"You can send again in (\d+) s", text)
    assert match, text
    assert demo.page.get_attribute("[data-error]", "data-code") == "rate_limited"
    first = int(match.group(1))
    assert first >= 1
    retry = demo.message("Quick message 4").locator("button[data-action=retry]")
    assert retry.is_disabled() and re.fullmatch(r"Retry in \d+ s", retry.inner_text())
    demo.page.fill("#composer-input", "one more")
    assert demo.page.is_disabled("[data-send]")
    assert "Sending paused" in demo.page.inner_text("[data-composer-hint]")
    shot(demo.page, "rate-limited-countdown")
    if first >= 3:  # it counts down, second by second
        demo.page.wait_for_function(
            "(first) => { const m = document.querySelector('[data-error-text]').textContent.match(/in (\\d+) s/);"
            " return m && Number(m[1]) < first; }",
            arg=first,
            timeout=5_000,
        )
    assert failed["id"]


def test_failed_send_retries_with_the_same_message_id(chat_server_factory, open_user):
    server = chat_server_factory(CHAT_MESSAGE_MAX_LENGTH="20")
    demo = open_user("demo", server=server)
    demo.start_conversation(agent=None)
    sent_ids: list[str] = []

    def on_frame(payload: object) -> None:
        text = payload if isinstance(payload, str) else ""
        if "chat:send-message" in text:
            body = json.loads(text[text.index("[") :])
            sent_ids.append(body[1]["message"]["id"])

    demo.page.on("websocket", lambda ws: ws.on("framesent", on_frame))
    demo.page.reload()  # so the socket opened after we listen
    demo.wait_joined()
    long_text = "This message is longer than twenty characters"
    demo.send(long_text)
    failed = demo.wait_message(long_text, state="failed")
    assert "too long (at most 20 characters)" in demo.page.inner_text("[data-error]")
    item = demo.message(long_text)
    shot(demo.page, "send-failed")
    item.locator("button[data-action=retry]").click()
    demo.page.wait_for_timeout(300)
    demo.wait_message(long_text, state="failed")
    assert sent_ids == [failed["id"], failed["id"]], sent_ids  # the retry reused the id
    assert len([m for m in demo.messages() if m["text"] == long_text]) == 1
    # "Edit" puts the text back in the box to shorten it.
    demo.message(long_text).locator("button[data-action=edit]").click()
    assert demo.page.input_value("#composer-input") == long_text
    # ...and takes the failed message out of the list (rendered on the next frame).
    demo.page.wait_for_function("() => !document.querySelector('[data-message-list] > li')", timeout=5_000)
    assert not demo.messages()
    demo.page.fill("#composer-input", "Short enough")
    demo.page.press("#composer-input", "Enter")
    demo.wait_message("Short enough", state="sent")
