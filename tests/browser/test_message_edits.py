"""Editing and deleting one's own message in the chat panel, seen live by the other member (issue #22)."""

from __future__ import annotations

import json

from tests.browser.support import check_accessibility, shot
from tests.browser.test_chat_page import share_with
from tests.browser.test_widget import host_site, wait_frame, wait_frame_message, widget_frame  # noqa: F401 (fixture)


def li(page, message_id: str):
    return page.page.locator(f"[data-message-list] > li[data-id='{message_id}']")


def test_edit_and_delete_own_message_live_with_the_keyboard(chat_server, open_user):
    demo = open_user("demo")
    guest = open_user("guest")
    session_id = demo.start_conversation(agent=None)
    share_with(demo, "guest")
    guest.open_session(session_id)
    guest.wait_joined()

    demo.send("See you at 5")
    demo.send("Call me on 555-0100")
    first = demo.wait_message("See you at 5", state="sent")
    second = demo.wait_message("Call me on 555-0100", state="sent")
    guest.wait_message("Call me on 555-0100", state="stored")
    # Only the author's messages can be edited; the guest has no Edit button on them.
    assert li(guest, first["id"]).locator("button[data-action=edit-message]").count() == 0

    # Edit with the keyboard only: focus Edit, Enter opens the box, type, Enter saves.
    li(demo, first["id"]).locator("button[data-action=edit-message]").focus()
    demo.page.keyboard.press("Enter")
    box = li(demo, first["id"]).locator("textarea")
    assert box.evaluate("el => el === document.activeElement")
    box.fill("See you at 6")
    demo.page.keyboard.press("Enter")
    guest.wait_message("See you at 6", state="stored")
    demo.wait_message("See you at 6", state="sent")
    for page in (demo, guest):
        li(page, first["id"]).locator(".msg__edited").wait_for()
        assert li(page, first["id"]).locator(".msg__edited").inner_text() == "(edited)"
    assert "demo edited a message" in guest.announcements()

    # Escape cancels an edit and gives the focus back to its Edit button.
    li(demo, first["id"]).locator("button[data-action=edit-message]").click()
    demo.page.keyboard.type(" and more")
    demo.page.keyboard.press("Escape")
    assert li(demo, first["id"]).locator("textarea").count() == 0
    assert (
        li(demo, first["id"])
        .locator("button[data-action=edit-message]")
        .evaluate("el => el === document.activeElement")
    )

    # Delete: a tombstone on both sides, live.
    li(demo, second["id"]).locator("button[data-action=delete-message]").focus()
    demo.page.keyboard.press("Enter")
    for page in (demo, guest):
        li(page, second["id"]).locator(".msg__tombstone").wait_for()
        assert "555-0100" not in li(page, second["id"]).inner_text()
    shot(guest.page, "message-edited-and-deleted")

    # After a reload the guest sees the same: history agrees with what was broadcast.
    guest.open_session(session_id)
    guest.wait_message("See you at 6", state="stored")
    li(guest, second["id"]).locator(".msg__tombstone").wait_for()
    assert [m["text"] for m in guest.messages()] == ["See you at 6", "This message was deleted."]
    for page in (demo, guest):
        assert not page.errors, page.errors


def test_in_the_embedded_widget(chat_server, open_user, new_context, host_site):  # noqa: F811
    """A visitor edits and deletes in the widget on another site; support staff on the chat page see it live."""
    page = new_context().new_page()
    page.set_default_timeout(30_000)
    host_site.open(
        page,
        'data-workspace="demo" data-session="widget-edits" data-mode="inline" data-target="#chat-here" '
        f'data-height="560px" data-token="{chat_server.socket_token("guest")}"',
    )
    frame = widget_frame(page)
    wait_frame(frame, "() => window.chatApp?.room?.status === 'joined' && window.chatApp.room.initialLoaded")
    for text in ("My order is 7781", "Oops, wrong chat"):
        frame.fill("#composer-input", text)
        frame.press("#composer-input", "Enter")
        wait_frame_message(frame, text, "sent")
    demo = open_user("demo")
    demo.open_session("widget-edits")
    demo.wait_message("Oops, wrong chat", state="stored")

    order_id = frame.locator("[data-message-list] > li", has_text="My order is 7781").get_attribute("data-id")
    order = frame.locator(f"[data-message-list] > li[data-id='{order_id}']")
    order.locator("button[data-action=edit-message]").focus()
    frame.page.keyboard.press("Enter")
    violations = check_accessibility(frame, "widget-editing")
    assert not violations, json.dumps(violations, indent=2)
    box = order.locator("textarea")
    box.fill("My order is 7782")
    frame.page.keyboard.press("Enter")
    demo.wait_message("My order is 7782", state="stored")
    assert demo.message("My order is 7782").locator(".msg__edited").inner_text() == "(edited)"

    wrong = frame.locator("[data-message-list] > li", has_text="Oops, wrong chat")
    wrong_id = wrong.get_attribute("data-id")
    wrong.locator("button[data-action=delete-message]").click()
    li(demo, wrong_id).locator(".msg__tombstone").wait_for()
    wait_frame(frame, "(id) => !!document.querySelector(`li[data-id='${id}'] .msg__tombstone`)", wrong_id)
    assert [m["text"] for m in demo.messages()] == ["My order is 7782", "This message was deleted."]
    shot(page, "widget-edited-and-deleted")
