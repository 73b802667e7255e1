"""Attachments in the chat page: an image uploaded with the attach button shows inline for the other member, live."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.support import shot
from tests.integration.attachment_files import png


@pytest.fixture
def chat_server(chat_server_factory, tmp_path: Path):
    return chat_server_factory(CHAT_ATTACHMENTS_DIR=str(tmp_path / "attachments"))


def share_with(owner, username: str) -> None:
    page = owner.page
    page.click("[data-share] > summary")
    page.fill("#share-username", username)
    page.click("[data-share-form] button[type=submit]")
    page.wait_for_selector(f"[data-share-status]:has-text('Shared with {username}.')")
    page.click("[data-share] > summary")


def test_an_uploaded_image_shows_inline_for_the_other_member_live(chat_server, open_user, tmp_path):
    demo = open_user("demo")
    guest = open_user("guest")
    session_id = demo.start_conversation(agent=None)
    share_with(demo, "guest")
    guest.page.reload()
    guest.page.click(f"a[data-session-id='{session_id}']")
    guest.wait_joined()

    image = tmp_path / "red square.png"
    image.write_bytes(png(40, 30))
    page = demo.page
    with page.expect_file_chooser() as chooser:
        # A button, usable from the keyboard: focused and pressed in one step (a re-render of the
        # page meanwhile, as the guest's arrival, cannot move the focus in between).
        page.locator("[data-attach]").press("Enter")
    chooser.value.set_files(str(image))
    page.wait_for_selector("[data-upload-list] li:has-text('red square.png')")
    page.press("#composer-input", "Enter")  # nothing typed: the file's name is the text
    demo.wait_message("red square.png", state="sent")

    shown = guest.page.wait_for_selector(".msg__image[alt='red square.png']")
    guest.page.wait_for_function("(img) => img.complete && img.naturalWidth === 40", arg=shown)
    src = shown.get_attribute("src")
    assert src and "/api/v1/attachments/" in src
    shot(guest.page, "attachment-inline")
    # the sender's own bubble shows it too, once the message is confirmed
    page.wait_for_selector(".msg--mine .msg__attachment")
