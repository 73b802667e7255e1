"""An agent's tool step and streamed text in the widget, used with the keyboard only.

The demo's echo agent, asked with a message starting with ``/tool``, streams
a line of reasoning and a fake ``count_words`` tool call before its text
(``chat/agents/backends/echo.py``).
"""

from __future__ import annotations

import json

from tests.browser.support import shot

WORDS = "/tool alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu"
REPLY = f"Echo: {WORDS}"
LIST = "[data-message-list] > li[data-sender-type=agent]"


def test_echo_tool_step_and_streamed_text_keyboard_only(chat_server, open_user):
    demo = open_user("demo")
    page = demo.page
    demo.start_conversation(agent="echo")
    assert page.evaluate("() => document.activeElement.id") == "composer-input"
    page.keyboard.type(WORDS)
    page.keyboard.press("Enter")
    demo.wait_message(WORDS, state="sent")

    # While the reply streams: the tool step shows (collapsed), above text that grows as text.
    page.wait_for_selector(f"{LIST}[data-state=streaming] details.msg__step--tool", timeout=20_000)
    page.wait_for_function(
        f"""() => {{ const li = document.querySelector('{LIST}[data-state=streaming]');
             return li && li.querySelector('.msg__body--text')?.textContent.startsWith('Echo:'); }}""",
        timeout=20_000,
    )
    streaming = page.locator(f"{LIST}[data-state=streaming]")
    assert streaming.locator("details.msg__step--reasoning").count() == 1
    assert not streaming.locator("details.msg__step--tool").evaluate("d => d.open")
    shot(page, "agent-tool-step-streaming")

    # Keyboard only: Shift+Tab back from the message box reaches the step's summary; Enter opens it,
    # and it stays open and focused while the text keeps streaming in.
    summary = None
    for _ in range(12):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("() => document.activeElement.matches('details.msg__step--tool > summary')"):
            summary = page.evaluate("() => document.activeElement.textContent")
            break
    assert summary is not None, "the tool step is not reachable with the keyboard"
    assert "count_words" in summary
    page.keyboard.press("Enter")
    tool = page.locator(f"{LIST} details.msg__step--tool")
    assert tool.evaluate("d => d.open")

    final = demo.wait_message(REPLY, state="stored", timeout=30_000)
    assert final["sender"] == "agent"
    # The stored reply keeps its steps (metadata.steps), still open, focus still on the summary.
    assert tool.evaluate("d => d.open") and tool.get_attribute("data-status") == "completed"
    assert page.evaluate("() => document.activeElement.matches('details.msg__step--tool > summary')")
    assert "done" in tool.locator("summary").inner_text()
    sections = tool.locator(".msg__step-text").all_inner_texts()
    assert sections == [json.dumps({"text": WORDS}), json.dumps({"words": len(WORDS.split())})]
    # Raw text only: the arguments are one text node in a <pre>, no markup made of them.
    assert tool.locator(".msg__step-text").first.evaluate(
        "p => p.childNodes.length === 1 && p.firstChild.nodeType === Node.TEXT_NODE"
    )
    # Space closes it again.
    page.keyboard.press("Space")
    assert not tool.evaluate("d => d.open")
    # The reasoning step opens the same way.
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("() => document.activeElement.matches('details.msg__step--reasoning > summary')")
    page.keyboard.press("Enter")
    reasoning = page.locator(f"{LIST} details.msg__step--reasoning")
    assert reasoning.locator(".msg__step-text").inner_text() == "The user wants their words back; counting them first."
    shot(page, "agent-tool-step-stored")

    # History shows the same steps after a reload.
    page.reload()
    demo.wait_joined()
    demo.wait_message(REPLY, state="stored")
    assert page.locator(f"{LIST} details.msg__step--tool").get_attribute("data-status") == "completed"
    assert page.locator(f"{LIST} details.msg__step").count() == 2
