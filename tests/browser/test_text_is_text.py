"""Text is text, in Chromium (issue #20): both widgets show what people typed, and code as code.

- The five messages of the issue's table (refused before) are accepted in a
  ``standard`` workspace and shown verbatim by the full page and by the
  embeddable widget, to the sender and to the reader; with trap payloads
  alongside, nothing runs: ``window.__pwned`` stays unset, no dialog opens,
  no element comes out of a text message.
- A markdown message is shown from the server's ``html``: a fenced code
  block becomes a code block whose Copy button copies the exact code, and a
  long line scrolls inside the block rather than widening the page.
- An agent's markdown reply streams in as text (never as markup) and
  becomes the server's HTML when it is stored.
- In a ``strict`` workspace the first four messages are refused with
  today's ``message_blocked`` and reasons; the fifth is sent.
"""

from __future__ import annotations

import time

import pytest

from tests.browser.support import shot
from tests.browser.test_chat_page import share_with
from tests.browser.test_widget import frame_messages, wait_frame, wait_frame_message, widget_frame
from tests.hostile_corpus import BROWSER_TRAPS, ISSUE_20_TABLE

TABLE = [content for content, _ in ISSUE_20_TABLE]
LONG_LINE = "const items = [" + ", ".join(f"item{n}" for n in range(40)) + "];"  # wider than any bubble
CODE = f'if (a < b && c > d) {{\n  el.innerHTML = "<img src=x onerror=alert(1)>";\n  {LONG_LINE}\n}}'
MARKDOWN = f"Try this:\n\n```js\n{CODE}\n```\n\nand `inline <code>` with a [link](https://example.com/docs)."

#: Elements that must never come out of a message: what would load or run something.
ACTIVE = "img, script, svg, iframe, object, embed, style, link, meta, form, input, video, audio"
#: Inside message bodies, what a check finds: active elements, event handlers, script URLs.
INERT_JS = f"""() => {{
  const bodies = [...document.querySelectorAll('[data-message-list] .msg__body')];
  const all = bodies.flatMap(b => [...b.querySelectorAll('*')]);
  return {{
    active: all.filter(e => e.matches('{ACTIVE}')).map(e => e.outerHTML),
    handlers: all.flatMap(e => [...e.attributes].filter(a => a.name.startsWith('on')).map(a => a.name)),
    badLinks: all.filter(e => e.href !== undefined && e.tagName === 'A')
                 .map(e => e.getAttribute('href')).filter(h => h && !/^(https?|mailto):/i.test(h)),
    pwned: window.__pwned ?? null,
  }};
}}"""


@pytest.fixture
def chat_server(chat_server_factory):
    """The demo, with room for the many formerly blocked messages these tests send (each is a strike)."""
    return chat_server_factory(CHAT_PENALTY_STRIKES="1000", CHAT_SPAM_MAX_REPEATS="100")


def assert_inert(target, dialogs: list[str]) -> None:
    found = target.evaluate(INERT_JS)
    assert found == {"active": [], "handlers": [], "badLinks": [], "pwned": None}, found
    assert not dialogs, dialogs


def post_markdown(chat_server, session_id: str, content: str, user: str = "demo") -> dict:
    status, body = chat_server.rest(
        "POST",
        f"workspaces/demo/sessions/{session_id}/messages/",
        user=user,
        body={"id": f"md-{time.monotonic_ns()}", "content": content, "contentType": "markdown"},
    )
    assert status == 201, body
    return body


def test_the_issue_table_is_shown_verbatim_on_the_page_and_runs_nothing(chat_server, open_user):
    demo = open_user("demo")
    session_id = demo.start_conversation(agent=None)
    share_with(demo, "guest")
    guest = open_user("guest")
    guest.open_session(session_id)
    for text in TABLE + BROWSER_TRAPS:
        demo.send(text)
        demo.wait_message(text, state="sent")
    post_markdown(chat_server, session_id, "\n\n".join(BROWSER_TRAPS))  # the same traps as markdown
    for text in TABLE + BROWSER_TRAPS:
        guest.wait_message(text, state="stored")
    guest.page.wait_for_function("() => document.querySelectorAll('.msg__body--html').length === 1")
    time.sleep(0.5)  # give anything that would run (an onerror, a timer) the time to
    for side in (demo, guest):
        texts = [m["text"] for m in side.messages()]
        assert texts[: len(TABLE)] == TABLE, texts
        assert_inert(side.page, side.dialogs)
    shot(guest.page, "text-is-text-page")


def test_the_issue_table_is_shown_verbatim_in_the_widget_and_runs_nothing(chat_server, open_user, new_context):
    from tests.browser.test_widget import HostSite

    host_site = HostSite(chat_server)
    try:
        context = new_context()
        page = context.new_page()
        page.set_default_timeout(30_000)
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        token = chat_server.socket_token("guest")
        host_site.open(
            page,
            f'data-workspace="demo" data-session="widget-text" data-mode="inline" data-target="#chat-here" '
            f'data-token="{token}" data-token-callback="getChatToken"',
        )
        frame = widget_frame(page)
        wait_frame(frame, "() => window.chatApp?.room?.status === 'joined' && window.chatApp.room.initialLoaded")
        for text in TABLE + BROWSER_TRAPS:
            frame.fill("#composer-input", text)
            frame.press("#composer-input", "Enter")
            wait_frame_message(frame, text, "sent")
        # What another person sends reaches the widget as sent, too.
        demo = open_user("demo")
        demo.open_session("widget-text")
        for text in TABLE:
            demo.wait_message(text, state="stored")
            demo.send(f"{text} (quoted)")
            wait_frame_message(frame, f"{text} (quoted)", "stored")
        post_markdown(chat_server, "widget-text", "\n\n".join(BROWSER_TRAPS))
        wait_frame(frame, "() => document.querySelectorAll('.msg__body--html').length === 1")
        time.sleep(0.5)
        texts = [m["text"] for m in frame_messages(frame)]
        assert texts[: len(TABLE)] == TABLE, texts
        assert_inert(frame, dialogs)
        assert page.evaluate("() => window.__pwned ?? null") is None  # nor on the host page
        assert_inert(demo.page, demo.dialogs)
        shot(page, "text-is-text-widget")
    finally:
        host_site.close()


def copied_text(target, button, reader=None) -> str:
    """Click a Copy button in ``target`` (a page or the widget's frame); what the clipboard then holds."""
    button.click()
    target.wait_for_function(
        "() => [...document.querySelectorAll('.code-block__copy')].some(b => b.textContent === 'Copied')"
    )
    return (reader or target).evaluate("() => navigator.clipboard.readText()")


def test_a_markdown_code_block_is_shown_as_code_and_copied_exactly(chat_server, open_user, new_context):
    guest = open_user("guest", permissions=["clipboard-read", "clipboard-write"])
    session_id = guest.start_conversation(agent=None)
    post_markdown(chat_server, session_id, MARKDOWN, user="guest")
    guest.page.wait_for_selector(".msg__body--html .code-block pre code.language-js")
    block = guest.page.locator(".msg__body--html .code-block")
    assert block.locator(".code-block__language").inner_text() == "js"
    assert guest.page.locator(".msg__body--html p code").inner_text() == "inline <code>"
    link = guest.page.locator(".msg__body--html a")
    assert (link.get_attribute("href"), link.get_attribute("rel"), link.get_attribute("target")) == (
        "https://example.com/docs", "nofollow noopener", "_blank",
    )  # fmt: skip
    # The long line scrolls inside the block; the page does not grow sideways.
    widths = guest.page.evaluate(
        """() => { const pre = document.querySelector('.code-block pre');
                   const list = document.querySelector('[data-scroller]');
                   return { scroll: pre.scrollWidth, client: pre.clientWidth, overflow: getComputedStyle(pre).overflowX,
                            list: list.scrollWidth <= list.clientWidth }; }"""
    )
    assert widths["scroll"] > widths["client"] and widths["overflow"] == "auto" and widths["list"], widths
    assert copied_text(guest.page, block.get_by_role("button", name="Copy js code")) == CODE + "\n"
    assert_inert(guest.page, guest.dialogs)
    shot(guest.page, "markdown-code-block")

    # The same message in the embeddable widget (its iframe may write to the clipboard).
    from tests.browser.test_widget import HostSite

    host_site = HostSite(chat_server)
    try:
        context = new_context(permissions=["clipboard-read", "clipboard-write"])
        page = context.new_page()
        page.set_default_timeout(30_000)
        host_site.open(
            page,
            f'data-workspace="demo" data-session="{session_id}" data-mode="inline" data-target="#chat-here" '
            f'data-token="{chat_server.socket_token("guest")}"',
        )
        frame = widget_frame(page)
        wait_frame(frame, "() => document.querySelector('.msg__body--html .code-block pre code.language-js')")
        button = frame.locator(".code-block").get_by_role("button", name="Copy js code")
        assert copied_text(frame, button, reader=page) == CODE + "\n"
        shot(page, "markdown-code-block-widget")
    finally:
        host_site.close()


def test_an_agent_reply_streams_as_text_then_shows_the_servers_html(chat_server, open_user):
    guest = open_user("guest")
    guest.start_conversation(agent="echo")
    guest.record()
    text = "**bold** and `code` <img src=x onerror=window.__pwned=1>"
    guest.send(text)
    reply = f"Echo: {text}"
    guest.page.wait_for_function(
        "() => [...document.querySelectorAll('[data-message-list] > li[data-sender-type=agent]')]"
        ".some(li => li.dataset.state === 'stored' && li.querySelector('.msg__body--html strong'))"
    )
    final = guest.page.evaluate(
        "() => document.querySelector('[data-message-list] > li[data-sender-type=agent] .msg__body').innerHTML"
    )
    assert final.strip() == (
        "<p>Echo: <strong>bold</strong> and <code>code</code> &lt;img src=x onerror=window.__pwned=1&gt;</p>"
    )
    states = [e for e in guest.recorded() if e["sender"] == "agent"]
    streamed = [e for e in states if e["state"] == "streaming"]
    assert len(streamed) >= 2, states  # it grew chunk by chunk
    for entry in streamed:  # every intermediate state is a prefix of the raw text, shown as text
        assert reply.startswith(entry["text"].rstrip()), entry
    assert states[-1]["state"] == "stored" and states[-1]["text"].startswith("Echo: bold and code <img")
    assert_inert(guest.page, guest.dialogs)


def test_a_strict_workspace_refuses_the_first_four_with_todays_codes(chat_server, open_user):
    status, body = chat_server.rest("PATCH", "workspaces/demo/", user="demo", body={"contentPolicy": "strict"})
    assert (status, body["contentPolicy"]) == (200, "strict"), body
    guest = open_user("guest")
    guest.start_conversation(agent=None)
    for text in TABLE:
        guest.send(text)
    guest.wait_message(TABLE[4], state="sent")
    for text in TABLE[:4]:
        guest.wait_message(text, state="failed")
    errors = guest.page.evaluate(
        "() => window.chatApp.room.store.list().filter(i => i.state === 'failed')"
        ".map(i => [i.content, i.error.code, i.error.reason])"
    )
    assert errors == [[text, "message_blocked", reason] for text, reason in ISSUE_20_TABLE[:4]], errors
    assert "Not sent" in guest.message(TABLE[0]).inner_text()
    shot(guest.page, "strict-refusals")
