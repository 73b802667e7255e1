"""axe-core (from npm, injected into the page) finds no serious or critical violations in the main states."""

from __future__ import annotations

import json

from tests.browser.support import check_accessibility, shot


def assert_accessible(target, name: str) -> None:
    violations = check_accessibility(target, name)
    assert not violations, f"{name}: " + json.dumps(violations, indent=2)


def test_login_page_is_accessible(chat_server, open_user):
    visitor = open_user("demo", password=False)
    page = visitor.page
    page.goto(f"{chat_server.url}/login/")
    assert_accessible(page, "login")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "wrong")
    page.click("form.login__card button[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert_accessible(page, "login-error")
    page.emulate_media(color_scheme="dark")
    assert_accessible(page, "login-dark")
    shot(page, "login-dark")


def test_chat_page_states_are_accessible(chat_server, open_user):
    guest = open_user("guest")
    assert_accessible(guest.page, "page-empty")
    guest.start_conversation(agent=None)
    demo = open_user("demo")
    demo.open_session(guest.session_id)
    guest.send("Hello there, **this** is text with `code` and a link: https://example.com")
    demo.send("Hi guest!\nA second line.")
    guest.wait_message("Hi guest!\nA second line.", state="stored")
    # A markdown message (the server's HTML): a list, a link and a code block with its Copy button.
    status, body = chat_server.rest(
        "POST",
        f"workspaces/demo/sessions/{guest.session_id}/messages/",
        user="demo",
        body={
            "id": "a11y-md",
            "contentType": "markdown",
            "content": "Steps:\n\n1. Run it\n2. See [the docs](https://example.com/docs)\n\n```sh\nmake test\n```",
        },
    )
    assert status == 201, body
    guest.page.wait_for_selector(".msg__body--html .code-block__copy")
    # A refused send: a failed bubble with its buttons, and the error alert.
    guest.send("!" * 200)
    guest.page.wait_for_selector("[data-message-list] > li.msg--mine:last-child:not([data-state=pending])")
    guest.page.click("[data-presence] > summary")
    demo.page.keyboard.type("typing…")
    guest.page.wait_for_selector("[data-typing-text]:text-is('demo is typing…')")
    assert_accessible(guest.page, "chat-light")
    shot(guest.page, "chat-states-light")
    guest.page.emulate_media(color_scheme="dark")
    assert_accessible(guest.page, "chat-dark")
    shot(guest.page, "chat-states-dark")
    guest.page.emulate_media(color_scheme="light")

    # The moderator's view (Hide buttons, share and close controls open).
    demo.page.click("[data-share] > summary")
    assert_accessible(demo.page, "chat-moderator")

    # Phone width, with the conversation list open.
    guest.page.set_viewport_size({"width": 390, "height": 844})
    assert_accessible(guest.page, "chat-phone")
    guest.page.click("[data-sidebar-toggle]")
    guest.page.wait_for_selector("[data-sidebar]:visible")
    assert_accessible(guest.page, "chat-phone-sidebar")

    # The connection banner, while the server is gone.
    chat_server.stop()
    demo.page.wait_for_selector("[data-connection-banner][data-state=reconnecting]")
    assert_accessible(demo.page, "chat-reconnecting")
    chat_server.start_again()
