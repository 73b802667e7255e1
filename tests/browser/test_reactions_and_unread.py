"""The chat page: reacting to a message (seen live by the other person) and unread badges that survive a reload."""

from __future__ import annotations

import time

from tests.browser.support import shot


def share_with(owner, username: str) -> None:
    page = owner.page
    page.click("[data-share] > summary")
    page.fill("#share-username", username)
    page.click("[data-share-form] button[type=submit]")
    page.wait_for_selector(f"[data-share-status]:has-text('Shared with {username}.')")
    page.click("[data-share] > summary")


def reaction(user, text: str, emoji: str):
    return user.message(text).locator(f".reaction[data-emoji='{emoji}']")


def test_a_reaction_in_the_widget_is_seen_live_and_toggles_with_the_keyboard(chat_server, open_user):
    demo = open_user("demo")
    guest = open_user("guest")
    session_id = demo.start_conversation(agent=None)
    share_with(demo, "guest")
    demo.send("React to this, please")
    demo.wait_message("React to this, please", state="sent")
    guest.open_session(session_id)
    guest.wait_message("React to this, please", state="stored")

    # The guest picks 🎉 from the palette, with the keyboard only.
    guest.message("React to this, please").locator("[data-action=react-picker]").focus()
    guest.page.keyboard.press("Enter")
    picker = guest.page.locator(".reaction-picker[role=dialog]")
    picker.wait_for()
    picker.get_by_role("button", name="React with 🎉").focus()
    guest.page.keyboard.press("Enter")
    mine = reaction(guest, "React to this, please", "🎉")
    mine.wait_for()
    assert mine.get_attribute("aria-pressed") == "true"
    assert "reacted by you" in mine.get_attribute("aria-label")

    # demo sees it live, not highlighted as theirs; then adds a typed emoji and the same one.
    theirs = reaction(demo, "React to this, please", "🎉")
    theirs.wait_for()
    assert theirs.get_attribute("aria-pressed") == "false" and theirs.inner_text().replace("\n", "") == "🎉1"
    demo.message("React to this, please").locator("[data-action=react-picker]").click()
    demo.page.fill(".reaction-picker__input", "👍🏽")
    demo.page.press(".reaction-picker__input", "Enter")
    theirs.click()
    demo.page.wait_for_function(
        """() => document.querySelector(".reaction[data-emoji='🎉'] .reaction__count")?.textContent === '2'"""
    )
    guest.page.wait_for_function(
        """() => document.querySelector(".reaction[data-emoji='🎉'] .reaction__count")?.textContent === '2'
              && document.querySelector(".reaction[data-emoji='👍🏽']")"""
    )
    assert reaction(demo, "React to this, please", "🎉").get_attribute("aria-pressed") == "true"
    assert reaction(guest, "React to this, please", "👍🏽").get_attribute("aria-pressed") == "false"
    shot(guest.page, "reactions")

    # Text typed in the picker is refused with the server's reason, and nothing changes.
    guest.message("React to this, please").locator("[data-action=react-picker]").click()
    guest.page.fill(".reaction-picker__input", "<b>hi</b>")
    guest.page.press(".reaction-picker__input", "Enter")
    guest.page.wait_for_selector("[data-error-text]:has-text('A reaction is a single emoji.')")
    assert guest.message("React to this, please").locator(".reaction[data-emoji]").count() == 2

    # The guest takes theirs back (Space on the focused toggle); both see the count drop.
    mine = reaction(guest, "React to this, please", "🎉")
    mine.focus()
    guest.page.keyboard.press("Space")
    for user in (guest, demo):
        user.page.wait_for_function(
            """() => document.querySelector(".reaction[data-emoji='🎉'] .reaction__count")?.textContent === '1'"""
        )
    assert reaction(guest, "React to this, please", "🎉").get_attribute("aria-pressed") == "false"

    # After a reload the reactions come back from history, "mine" included.
    demo.page.reload()
    demo.wait_joined()
    reaction(demo, "React to this, please", "👍🏽").wait_for()
    assert reaction(demo, "React to this, please", "🎉").get_attribute("aria-pressed") == "true"


def badge(user, session_id: str):
    return user.page.locator(f"a[data-session-id='{session_id}'] .sessions__unread")


def test_unread_badges_are_the_servers_counts_and_survive_a_reload(chat_server, open_user):
    demo = open_user("demo")
    session_id = demo.start_conversation(agent=None)
    share_with(demo, "guest")
    for n in range(3):
        demo.send(f"Unread {n}")
        demo.wait_message(f"Unread {n}", state="sent")

    guest = open_user("guest")  # lands on the empty page: the conversation is in the list, unread
    guest.page.wait_for_selector(f"a[data-session-id='{session_id}'] .sessions__unread")
    assert badge(guest, session_id).get_attribute("data-unread") == "3"
    assert badge(guest, session_id).get_attribute("aria-label") == "3 unread"
    shot(guest.page, "unread-badge")
    guest.page.reload()
    guest.wait_connected()
    badge(guest, session_id).wait_for()
    assert badge(guest, session_id).get_attribute("data-unread") == "3"
    # The sender has nothing unread in it.
    assert badge(demo, session_id).count() == 0

    # Opening it reads it: the server's pointer moves, so the badge stays gone after a reload.
    guest.page.click(f"a[data-session-id='{session_id}']")
    guest.wait_joined()
    guest.page.wait_for_function("() => window.chatApp.room.lastReadSeq === 3")
    status, page = chat_server.rest("GET", "workspaces/demo/sessions/?unread=true", user="guest")
    assert status == 200 and session_id not in [s["id"] for s in page["results"]], page
    guest.page.goto(f"{chat_server.url}/")
    guest.wait_connected()
    guest.page.wait_for_selector(f"a[data-session-id='{session_id}']")
    assert badge(guest, session_id).count() == 0

    # A new message while the guest is elsewhere: one unread, again after a reload.
    demo.send("One more")
    demo.wait_message("One more", state="sent")
    guest.page.reload()
    guest.wait_connected()
    badge(guest, session_id).wait_for()
    assert badge(guest, session_id).get_attribute("data-unread") == "1"


def test_a_busy_session_is_marked_read_about_once_a_second_not_per_message(chat_server_factory, open_user):
    """The widget marks read while the newest messages are on screen: in a busy session one mark in flight,
    at most one a second, the last with the newest seq, so the person stays far inside the server's
    ``read`` limit (whose strikes would tighten all their limits)."""
    server = chat_server_factory(CHAT_MESSAGE_RATE_LIMIT="1000", CHAT_API_RATE_LIMIT="10000/m")
    demo = open_user("demo", server=server)
    session_id = demo.start_conversation(agent=None)
    share_with(demo, "guest")
    guest = open_user("guest", server=server)
    guest.open_session(session_id)
    guest.wait_joined()
    guest.page.evaluate(
        """() => {
            const connection = window.chatApp.room.connection;
            const request = connection.request.bind(connection);
            window.marks = [];
            connection.request = (event, payload, ...rest) => {
                if (event === "chat:mark-read") window.marks.push(payload.seq);
                return request(event, payload, ...rest);
            };
        }"""
    )
    started = time.monotonic()
    for n in range(40):
        status, _ = server.rest(
            "POST",
            f"workspaces/demo/sessions/{session_id}/messages/",
            user="demo",
            body={"id": f"busy-{n}", "content": f"Busy {n}"},
        )
        assert status == 201
        time.sleep(0.05)
    guest.wait_message("Busy 39")
    guest.page.wait_for_function("() => window.chatApp.room.lastReadSeq === 40", timeout=5_000)
    seconds = time.monotonic() - started + 1.5
    marks = guest.page.evaluate("() => window.marks")
    assert 2 <= len(marks) <= seconds + 1, (marks, seconds)
    assert marks == sorted(marks) and marks[-1] == 40
