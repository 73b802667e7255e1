"""The chat page at `/`: logging in, two people chatting, typing and presence, history, safety, moderation."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request

from tests.browser.support import shot


def share_with(owner, username: str) -> None:
    page = owner.page
    page.click("[data-share] > summary")
    page.fill("#share-username", username)
    page.click("[data-share-form] button[type=submit]")
    page.wait_for_selector(f"[data-share-status]:has-text('Shared with {username}.')")
    page.click("[data-share] > summary")


def test_login_is_required_and_works(chat_server, open_user):
    visitor = open_user("demo", password=False)
    page = visitor.page
    page.goto(f"{chat_server.url}/")
    assert page.url.startswith(f"{chat_server.url}/login/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", "wrong")
    page.click("form.login__card button[type=submit]")
    page.wait_for_selector('[role=alert]:has-text("don\'t match")')
    shot(page, "login-error")
    page.fill("#id_password", "demo")
    page.click("form.login__card button[type=submit]")
    page.wait_for_url(f"{chat_server.url}/")
    visitor.wait_connected()
    page.wait_for_selector("[data-empty]:has-text('Pick a conversation')")
    assert page.inner_text("[data-me-name]") == "demo"
    shot(page, "page-empty")
    page.click(".topbar__logout button")
    page.wait_for_url(re.compile(r".*/login/$"))


def test_two_users_chat_both_ways(chat_server, open_user):
    demo = open_user("demo")
    guest = open_user("guest")
    session_id = demo.start_conversation(agent=None)
    share_with(demo, "guest")

    # The guest finds the shared conversation in the sidebar.
    guest.page.reload()
    guest.page.click(f"a[data-session-id='{session_id}']")
    guest.wait_joined()
    demo.page.wait_for_selector("[data-presence-list] li[data-user=guest]", state="attached")

    demo.record()
    demo.send("Hello guest, how are you?")
    sent = demo.wait_message("Hello guest, how are you?", state="sent")
    states = [e["state"] for e in demo.recorded() if e["id"] == sent["id"]]
    assert states[0] == "pending" and states[-1] == "sent", states  # optimistic, then confirmed
    received = guest.wait_message("Hello guest, how are you?", state="stored")
    assert received["author"] == "demo" and received["id"] == sent["id"] and received["seq"] == sent["seq"]
    guest.page.wait_for_function(
        "() => document.querySelector('[data-announcer]').textContent.includes('demo: Hello guest')"
    )

    # Text is shown as typed; markdown (here posted over REST) as the server's HTML.
    typed = "Fine, thanks! **Bold** and `code` and https://example.com"
    guest.send(typed)
    guest.wait_message(typed, state="sent")
    reply = demo.wait_message(typed, state="stored")
    assert reply["author"] == "guest"
    assert demo.message(typed).locator(".msg__body *").count() == 0
    status, body = chat_server.rest(
        "POST",
        f"workspaces/demo/sessions/{session_id}/messages/",
        user="guest",
        body={"id": "md-1", "content": "**Bold** and `code` and <https://example.com>", "contentType": "markdown"},
    )
    assert status == 201, body
    rendered = demo.wait_message("Bold and code and https://example.com", state="stored")
    bubble = demo.page.locator(f"[data-message-list] > li[data-id='{rendered['id']}']")
    assert bubble.locator("strong").inner_text() == "Bold"
    assert bubble.locator("code").inner_text() == "code"
    assert bubble.locator("a").get_attribute("href") == "https://example.com"
    assert bubble.locator("a").get_attribute("rel") == "nofollow noopener"
    guest.wait_message("Bold and code and https://example.com")

    for page in (demo, guest):
        texts = [m["text"] for m in page.messages()]
        assert texts == ["Hello guest, how are you?", typed, "Bold and code and https://example.com"]
        assert not page.errors, page.errors
    shot(demo.page, "two-users-demo")
    shot(guest.page, "two-users-guest")


def test_typing_and_presence_show_on_the_other_side(chat_server, open_user):
    chat_server.create_user("carol", "carol-password")
    fast = {"idleAfterMs": 3_000, "awayAfterMs": 6_000}
    demo = open_user("demo", chat_options=fast)
    session_id = demo.start_conversation(agent=None)
    share_with(demo, "guest")
    share_with(demo, "carol")
    guest = open_user("guest")
    guest.open_session(session_id)
    carol = open_user("carol", "carol-password")
    carol.open_session(session_id)

    # Presence: everyone appears, with their status.
    guest.page.wait_for_function(
        "() => ['demo', 'carol', 'guest'].every(u => document.querySelector(`[data-presence-list] li[data-user=${u}]`))"
    )
    assert guest.page.inner_text("[data-presence-summary]") == "3 here"

    # Typing, debounced: one person, then two.  (Typing is activity: demo is active.)
    demo.page.click("#composer-input")
    demo.page.keyboard.type("Hello the", delay=40)
    guest.page.wait_for_selector("[data-typing-text]:text-is('demo is typing…')")
    guest.page.wait_for_selector("[data-presence-list] li[data-user=demo][data-status=active]", state="attached")
    carol.page.click("#composer-input")
    carol.page.keyboard.type("Hi", delay=40)
    guest.page.wait_for_function(
        "() => /^(demo and carol|carol and demo) are typing…$/.test(document.querySelector('[data-typing-text]').textContent)"
    )
    guest.page.click("[data-presence] > summary")
    shot(guest.page, "typing-and-presence")
    # Stopping (3 s without a key, or sending) clears it.
    carol.page.keyboard.press("Enter")
    guest.page.wait_for_selector("[data-typing-text]:text-is('demo is typing…')")
    guest.page.wait_for_selector("[data-typing-text]:text-is('')", state="attached", timeout=8_000)

    # demo stops touching anything: idle, then away (shortened periods), on the others' lists too.
    guest.page.wait_for_selector("[data-presence-list] li[data-user=demo][data-status=idle]", timeout=8_000)
    assert demo.page.inner_text("[data-me-status]") in ("idle", "away")
    guest.page.wait_for_selector("[data-presence-list] li[data-user=demo][data-status=away]", timeout=8_000)
    shot(guest.page, "presence-away")
    demo.page.keyboard.press("Shift")
    guest.page.wait_for_selector("[data-presence-list] li[data-user=demo][data-status=active]", timeout=8_000)
    assert demo.page.inner_text("[data-me-status]") == "active"

    # Leaving removes the person.
    carol.page.close()
    guest.page.wait_for_selector("[data-presence-list] li[data-user=carol]", state="detached", timeout=10_000)


def test_history_loads_upward_on_scroll(chat_server, open_user):
    chat_server.seed_messages("long-history", 75)
    demo = open_user("demo")
    demo.open_session("long-history")
    first = demo.messages()
    assert [m["seq"] for m in first] == list(range(46, 76))  # the newest page, in seq order
    assert demo.page.is_visible("[data-load-older]")
    shot(demo.page, "history-newest-page")

    # Scrolling to the top loads the page before, keeping what was on screen in place.
    anchor = demo.page.locator("[data-message-list] > li[data-seq='46']")
    demo.page.eval_on_selector("[data-scroller]", "el => el.scrollTop = 0")
    demo.page.wait_for_selector("[data-message-list] > li[data-seq='16']", state="attached")
    top = demo.page.eval_on_selector("[data-scroller]", "el => el.getBoundingClientRect().top")
    assert anchor.bounding_box()["y"] >= top - 5
    # Keyboard users have the button.
    demo.page.focus("[data-load-older]")
    demo.page.keyboard.press("Enter")
    demo.page.wait_for_selector("[data-history-status]:has-text('beginning of the conversation')")
    seqs = [m["seq"] for m in demo.messages()]
    assert seqs == list(range(1, 76)), seqs
    assert len({m["id"] for m in demo.messages()}) == 75
    assert not demo.page.is_visible("[data-load-older]")


XSS_PAYLOADS = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=2</script>",
    "[click me](javascript:window.__xss=3)",
    '<a href="javascript:window.__xss=4">link</a> &lt;b&gt;',
    "**<svg onload=window.__xss=5>**",
]


def test_xss_payloads_are_inert_text(chat_server, open_user):
    demo = open_user("demo")
    session_id = demo.start_conversation(agent=None)
    share_with(demo, "guest")
    guest = open_user("guest")
    guest.open_session(session_id)

    for payload in XSS_PAYLOADS:
        demo.send(payload)
    # Each is delivered as sent (a standard workspace records them as suspicious) and shown as text.
    for payload in XSS_PAYLOADS:
        demo.wait_message(payload, state="sent")
        guest.wait_message(payload, state="stored")
    time.sleep(0.5)
    for side in (demo, guest):
        page = side.page
        assert page.evaluate("() => window.__xss") is None
        assert not side.dialogs
        assert page.eval_on_selector_all("[data-message-list] .msg__body *", "els => els.length") == 0
        assert [m["text"] for m in side.messages()] == XSS_PAYLOADS
    shot(demo.page, "xss-sender")
    shot(guest.page, "xss-receiver")


def test_message_bodies_are_text_or_the_servers_html(chat_server, open_user):
    """message_body.js on raw strings: a text body is one text node; a markdown body adopts the server's HTML.

    Even HTML the server's renderer would never produce stays inert in the page: it is parsed in an inert
    template, and the page's Content-Security-Policy (no inline script, no inline handlers) stands behind it.
    """
    demo = open_user("demo")
    result = demo.page.evaluate(
        """async () => {
          const { renderBody } = await import('/static/chat/message_body.js');
          const hostile = [
            '<img src=x onerror="window.__xss=1">', '<script>window.__xss=2<\\/script>',
            '<a href="javascript:window.__xss=3">x</a>', '<svg><script>window.__xss=4<\\/script></svg>',
            '<iframe srcdoc="<script>parent.__xss=5<\\/script>"></iframe>',
          ];
          const render = (item) => {
            const body = document.createElement('div');
            document.body.append(body);
            renderBody(body, item);
            return body;
          };
          const text = hostile.map((content) => {
            const body = render({ content, contentType: 'text', html: null });
            return { content, nodes: body.childNodes.length, elements: body.querySelectorAll('*').length,
                     text: body.textContent };
          });
          const server = render({ content: '```py\\nx\\n```', contentType: 'markdown',
                                  html: '<pre><code class="language-py">x\\n</code></pre>\\n<p><strong>b</strong></p>' });
          const streaming = render({ content: '**b** <b>x</b>', contentType: 'markdown', html: null, state: 'streaming' });
          for (const html of hostile) render({ content: '', contentType: 'markdown', html });
          await new Promise((resolve) => setTimeout(resolve, 500));
          return { text, server: server.innerHTML, streaming: streaming.textContent,
                   streamingElements: streaming.querySelectorAll('*').length };
        }"""
    )
    for case in result["text"]:
        assert (case["nodes"], case["elements"], case["text"]) == (1, 0, case["content"]), case
    assert result["server"].startswith('<div class="code-block"><div class="code-block__bar">'), result["server"]
    assert '<pre tabindex="0"><code class="language-py">x\n</code></pre></div>' in result["server"]
    assert "<strong>b</strong>" in result["server"]
    assert (result["streaming"], result["streamingElements"]) == ("**b** <b>x</b>", 0)
    assert demo.page.evaluate("() => window.__xss ?? null") is None
    assert not demo.dialogs


def test_moderator_hide_removes_the_message_live(chat_server, open_user):
    guest = open_user("guest")
    session_id = guest.start_conversation(agent=None)
    guest.send("This one breaks the rules")
    guest.send("This one is fine")
    hidden = guest.wait_message("This one breaks the rules", state="sent")
    guest.wait_message("This one is fine", state="sent")

    demo = open_user("demo")  # an admin: may open any session of the workspace, and moderate it
    demo.open_session(session_id)
    demo.wait_message("This one breaks the rules")
    demo.message("This one breaks the rules").locator("button[data-action=hide]").click()

    guest.page.wait_for_selector(f"[data-message-list] > li[data-id='{hidden['id']}']", state="detached")
    demo.page.wait_for_selector(f"[data-message-list] > li[data-id='{hidden['id']}']", state="detached")
    assert [m["text"] for m in guest.messages()] == ["This one is fine"]
    assert "hidden by a moderator" in guest.announcements()
    shot(guest.page, "message-hidden")
    # It stays gone after a reload (history leaves it out for members).
    guest.open_session(session_id)
    assert [m["text"] for m in guest.messages()] == ["This one is fine"]


def test_closed_session_becomes_read_only(chat_server, open_user):
    guest = open_user("guest")
    session_id = guest.start_conversation(agent=None)
    guest.send("Before closing")
    guest.wait_message("Before closing", state="sent")
    demo = open_user("demo")
    demo.open_session(session_id)
    demo.accept_dialogs = True
    demo.page.click("[data-close-session]")

    guest.page.wait_for_selector("[data-closed-note]:visible")
    assert guest.page.is_disabled("#composer-input")
    assert guest.page.is_disabled("[data-send]")
    assert "closed" in guest.page.inner_text("[data-chat-subtitle]")
    assert "closed" in guest.announcements()
    shot(guest.page, "session-closed")
    # Reopened later it is still read-only, and its history still there.
    guest.open_session(session_id)
    guest.page.wait_for_selector("[data-closed-note]:visible")
    assert [m["text"] for m in guest.messages()] == ["Before closing"]


def test_keyboard_only_use(chat_server, open_user):
    visitor = open_user("demo", password=False)
    page = visitor.page
    page.goto(f"{chat_server.url}/login/")
    # The username field has autofocus, which Chromium may apply after the
    # load event: wait for it (it must come) rather than type into nothing.
    page.wait_for_function("() => document.activeElement?.id === 'id_username'", timeout=5000)
    page.keyboard.type("demo")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "id_password"
    page.keyboard.type("demo")
    assert page.input_value("#id_username") == "demo"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{chat_server.url}/")
    visitor.wait_connected()

    def tab_stops(count: int) -> list[str]:
        stops = []
        for _ in range(count):
            page.keyboard.press("Tab")
            stops.append(
                page.evaluate(
                    """() => { const e = document.activeElement;
                         const label = e.labels?.[0]?.textContent || e.getAttribute('aria-label') || e.textContent;
                         return `${e.tagName.toLowerCase()}:${(label || '').trim().replace(/\\s+/g, ' ')}`; }"""
                )
            )
        return stops

    stops = tab_stops(5)
    assert stops[0] == "a:Skip to message box"
    assert stops[1:4] == ["button:Log out", "select:With", "button:Start"], stops
    # Start a conversation with the keyboard: focus lands in the message box.
    page.focus("[data-new-chat] button[type=submit]")
    page.keyboard.press("Enter")
    visitor.wait_joined()
    assert page.evaluate("() => document.activeElement.id") == "composer-input"
    page.keyboard.type("Typed without a mouse")
    page.keyboard.press("Enter")
    visitor.wait_message("Typed without a mouse", state="sent")
    # Shift+Enter is a new line, not a send.
    page.keyboard.type("line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    assert page.input_value("#composer-input") == "line one\nline two"
    # The session's echo agent answers: its finished reply is the newest message.
    page.wait_for_function(
        """() => { const last = document.querySelector('[data-message-list] > li:last-child');
                   return last && last.dataset.senderType === 'agent' && last.dataset.state !== 'streaming'; }"""
    )
    # From the message box backwards: the reply's controls (regenerate, the thumbs, its reaction button,
    # and a moderator's "Delete" and "Hide"), then the member's message's own (its reaction button and the
    # author's "Delete" and "Edit" under it, a moderator's "Hide" beside its author), then the message region.
    labels = []
    for _ in range(10):
        page.keyboard.press("Shift+Tab")
        labels.append(page.evaluate("() => document.activeElement.getAttribute('aria-label')"))
    assert labels == [
        "Regenerate this reply",
        "Bad reply",
        "Good reply",
        "Add a reaction",
        "Delete message from Echo agent",
        "Hide message from Echo agent",
        "Add a reaction",
        "Delete your message",
        "Edit your message",
        "Hide message from demo",
    ], labels
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("() => document.activeElement.matches('[data-scroller]')")
    # Every control shows where the focus is.
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_phone_width(chat_server, open_user):
    demo = open_user("demo", viewport={"width": 390, "height": 844}, has_touch=True)
    page = demo.page
    assert page.is_hidden("[data-sidebar]")
    page.click("[data-sidebar-toggle]")
    assert page.get_attribute("[data-sidebar-toggle]", "aria-expanded") == "true"
    page.wait_for_selector("[data-sidebar]:visible")
    shot(page, "phone-sidebar")
    page.select_option("[data-new-chat-agent]", "")
    page.click("[data-new-chat] button[type=submit]")
    demo.wait_joined()
    page.wait_for_selector("[data-sidebar]", state="hidden")
    demo.send("Hello from a phone, with a long word: Donaudampfschifffahrtsgesellschaftskapitän")
    demo.wait_message("Hello from a phone, with a long word: Donaudampfschifffahrtsgesellschaftskapitän", state="sent")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    composer = page.locator("#composer-input").bounding_box()
    assert composer["y"] + composer["height"] <= 844
    shot(page, "phone-chat")


def test_static_files_and_headers(chat_server):
    def head(path: str) -> tuple[int, dict[str, str], bytes]:
        with urllib.request.urlopen(f"{chat_server.url}{path}", timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()

    status, headers, body = head("/static/vendor/socket.io.min.js?v=1")
    assert status == 200 and "javascript" in headers["content-type"]
    assert "immutable" in headers["cache-control"] and b"io" in body[:2000]
    status, headers, body = head("/widget.js")
    assert status == 200 and "javascript" in headers["content-type"] and b"data-token-callback" in body
    status, headers, _ = head("/static/chat/app.js")
    assert status == 200 and headers["cache-control"] == "no-cache"
    status, headers, _ = head("/login/")
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    # The widget's inside may be framed anywhere (it only ever uses the host page's token).
    status, headers, body = head("/embed/?workspace=demo&session=support-1&title=Help")
    assert status == 200 and "frame-ancestors *" in headers["content-security-policy"]
    assert "x-frame-options" not in headers and b'"sessionId": "support-1"' in body
    for bad in (
        "/static/../manage.py",
        "/static/%2e%2e/manage.py",
        "/static/vendor/../../manage.py",
        "/static/vendor/x.js",
    ):
        try:
            status = head(bad)[0]
        except urllib.error.HTTPError as error:
            status = error.code
        assert status == 404, bad
