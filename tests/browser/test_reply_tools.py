"""Under an agent's reply: thumbs up / down, "Regenerate", and "Stop" while it streams -- from the keyboard alone."""

from __future__ import annotations

from typing import Any

from tests.browser.support import check_accessibility, shot

#: The selector of the focused element's action, or "" (what the keyboard is on).
FOCUSED_ACTION = "() => document.activeElement?.dataset?.action ?? ''"


def tab_to(page: Any, action: str, message_id: str, *, backwards: bool = True, limit: int = 40) -> None:
    """Press (Shift+)Tab until the button ``action`` of message ``message_id`` has the focus."""
    for _ in range(limit):
        found = page.evaluate(
            "([action, id]) => document.activeElement?.dataset?.action === action"
            " && document.activeElement.closest('[data-id]')?.dataset.id === id",
            [action, message_id],
        )
        if found:
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"{action} of {message_id} not reachable with the keyboard")


def pressed(page: Any, message_id: str) -> dict[str, str | None]:
    return page.evaluate(
        """(id) => Object.fromEntries([...document.querySelectorAll(`[data-id="${id}"] [aria-pressed]`)]
             .map(b => [b.dataset.action, b.getAttribute('aria-pressed')]))""",
        message_id,
    )


def test_thumbs_regenerate_and_stop_from_the_keyboard(chat_server, open_user):
    demo = open_user("demo")
    session = demo.start_conversation(agent="echo")
    demo.send("How are you")
    reply = demo.wait_message("Echo: How are you", state="stored", timeout=30_000)
    page = demo.page
    page.focus("#composer-input")

    # Thumbs up with Enter, then thumbs down with Space: one rating, pressed state follows, focus stays.
    tab_to(page, "rate-up", reply["id"])
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(id) => document.querySelector(`[data-id='${id}'] [data-action=rate-up]`)"
        "?.getAttribute('aria-pressed') === 'true'",
        arg=reply["id"],
    )
    assert pressed(page, reply["id"]) == {"rate-up": "true", "rate-down": "false"}
    assert page.evaluate(FOCUSED_ACTION) == "rate-up"
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED_ACTION) == "rate-down"
    page.keyboard.press("Space")
    page.wait_for_function(
        "(id) => document.querySelector(`[data-id='${id}'] [data-action=rate-down]`)"
        "?.getAttribute('aria-pressed') === 'true'",
        arg=reply["id"],
    )
    assert pressed(page, reply["id"]) == {"rate-up": "false", "rate-down": "true"}
    status, body = chat_server.rest("GET", "workspaces/demo/feedback/", user="demo")
    assert status == 200, body
    mine = [row for row in body["results"] if row["sessionId"] == session]
    assert [(row["messageId"], row["rating"], row["userId"]) for row in mine] == [(reply["id"], "down", "demo")]
    shot(page, "reply-rated")
    violations = check_accessibility(page, "reply-tools")
    assert not violations, violations

    # Regenerate: the reply streams again into the same entry and becomes version 2.
    demo.record()
    tab_to(page, "regenerate", reply["id"], backwards=False)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(id) => document.querySelector(`[data-id='${id}'] .reply-tools__version`)?.textContent === '2/2'"
        " && document.querySelector(`[data-id='${id}']`).dataset.state === 'stored'",
        arg=reply["id"],
        timeout=30_000,
    )
    # The keyboard is still on the reply's controls: on "Regenerate" again, now that it is stored.
    assert page.evaluate(FOCUSED_ACTION) == "regenerate"
    states = [e["state"] for e in demo.recorded() if e["id"] == reply["id"]]
    assert "streaming" in states and states[-1] == "stored", states
    assert [m["text"] for m in demo.messages()] == ["How are you", "Echo: How are you"]  # replaced, not added
    shot(page, "reply-regenerated")

    # Browse the versions: previous shows version 1 (fetched from the REST API), next the current one again.
    version_label = f"[data-id='{reply['id']}'] .reply-tools__version"
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED_ACTION) == "version-prev"
    page.keyboard.press("Enter")
    page.wait_for_function("(s) => document.querySelector(s)?.textContent === '1/2'", arg=version_label)
    assert page.evaluate(FOCUSED_ACTION) == "version-prev"
    assert page.get_attribute(f"[data-id='{reply['id']}'] [data-action=version-prev]", "aria-disabled") == "true"
    assert page.get_attribute(f"[data-id='{reply['id']}']", "data-version") == "1"
    assert [m["text"] for m in demo.messages()][1] == "Echo: How are you"  # version 1 said the same (an echo)
    page.keyboard.press("Tab")  # the "1/2" between them is text, not a stop
    assert page.evaluate(FOCUSED_ACTION) == "version-next"
    page.keyboard.press("Enter")
    page.wait_for_function("(s) => document.querySelector(s)?.textContent === '2/2'", arg=version_label)
    assert page.get_attribute(f"[data-id='{reply['id']}']", "data-version") == "2"

    # Stop: a long reply, stopped from the keyboard while it streams, is kept as far as it got.
    words = " ".join(f"word{i}" for i in range(80))
    demo.send(words)
    demo.wait_message(words, state="sent")
    page.wait_for_selector("[data-message-list] > li[data-sender-type=agent][data-state=streaming] [data-action=stop]")
    streaming_id = page.evaluate(
        "() => document.querySelector('[data-message-list] > li[data-sender-type=agent][data-state=streaming]').dataset.id"
    )
    page.focus("#composer-input")
    tab_to(page, "stop", streaming_id)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(id) => document.querySelector(`[data-id='${id}']`)?.dataset.state === 'stored'", arg=streaming_id
    )
    [stopped] = [m for m in demo.messages() if m["id"] == streaming_id]
    assert stopped["text"].startswith("Echo: word0") and "word79" not in stopped["text"], stopped
    assert not demo.errors
    shot(page, "reply-stopped")
