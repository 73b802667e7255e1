"""A server restart mid-conversation: everyone reconnects, and every message shows exactly once."""

from __future__ import annotations

from tests.browser.support import shot


def ids_and_texts(page):
    return [(m["id"], m["text"], m["seq"]) for m in page.messages()]


def test_server_restart_mid_conversation(chat_server, open_user):
    demo = open_user("demo")
    session_id = demo.start_conversation(agent=None)
    chat_server.rest("POST", f"workspaces/demo/sessions/{session_id}/share/", user="demo", body={"username": "guest"})
    guest = open_user("guest")
    guest.open_session(session_id)

    demo.send("Before the restart (demo)")
    guest.wait_message("Before the restart (demo)", state="stored")
    guest.send("Before the restart (guest)")
    demo.wait_message("Before the restart (guest)", state="stored")

    # The server goes away: both pages say so and keep trying.
    chat_server.stop()
    for side in (demo, guest):
        side.page.wait_for_selector("[data-connection-banner][data-state=reconnecting]", timeout=15_000)
        assert "Reconnecting" in side.page.inner_text("[data-connection-text]")
    # Written while disconnected: kept, marked as waiting, sent once the connection is back.
    demo.send("Written while the server was down")
    queued = demo.wait_message("Written while the server was down", state="pending")
    demo.page.wait_for_selector("[data-message-list] .msg__status:text-is('Waiting for connection…')")
    shot(demo.page, "reconnecting")

    # The guest's network is out a little longer, so it misses messages sent meanwhile.
    guest.page.context.route("**/socket.io/**", lambda route: route.abort())
    chat_server.start_again()
    demo.page.wait_for_selector("[data-connection-banner][data-state=connected]", state="attached", timeout=20_000)
    demo.wait_message("Written while the server was down", state="sent", timeout=15_000)
    demo.send("After the restart (demo)")
    demo.wait_message("After the restart (demo)", state="sent")
    shot(demo.page, "reconnected")

    guest.page.context.unroute("**/socket.io/**")
    guest.page.click("[data-connection-retry]")  # "Retry now" skips the backoff wait
    guest.page.wait_for_selector("[data-connection-banner][data-state=connected]", state="attached", timeout=20_000)
    guest.wait_message("Written while the server was down", state="stored")
    guest.wait_message("After the restart (demo)", state="stored")

    # And back both ways, live.
    guest.send("After the restart (guest)")
    demo.wait_message("After the restart (guest)", state="stored")

    expected = [
        "Before the restart (demo)",
        "Before the restart (guest)",
        "Written while the server was down",
        "After the restart (demo)",
        "After the restart (guest)",
    ]
    for side in (demo, guest):
        side.page.wait_for_function(
            f"() => document.querySelectorAll('[data-message-list] > li').length >= {len(expected)}"
        )
        shown = ids_and_texts(side)
        assert [text for _, text, _ in shown] == expected, shown
        assert len({message_id for message_id, _, _ in shown}) == len(expected)
        assert [seq for _, _, seq in shown] == [1, 2, 3, 4, 5]
    assert [m["id"] for m in demo.messages()][2] == queued["id"]
    # A fresh load shows the same conversation.
    guest.open_session(session_id)
    assert [text for _, text, _ in ids_and_texts(guest)] == expected
    shot(guest.page, "after-restart-guest")
