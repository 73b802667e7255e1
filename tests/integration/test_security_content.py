"""Content safety end to end: what is stored, broadcast and served as history can never be live markup.

For a corpus of XSS payloads in both content types, over both transports
and both backends, each message is either refused with ``message_blocked``
(recorded as a security event, stored nowhere, sent to nobody) or stored
sanitised -- and then the stored row, the ``chat:message-received`` the
other member got and the history page are the same text, with no
``javascript:``/``data:`` URL, no event-handler attribute, no tag outside
the markdown allow-list, and no script/style content (each payload hides
the marker ``XSSMARK`` where it must not survive).  Spam (repeats,
character floods, link floods) gets ``spam_detected``.  And recording
security events never delays or loses them, even while their table is locked.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.conftest import ServerProcess
from tests.integration.chat_client import (
    TRANSPORTS,
    ChatClient,
    assert_error,
    client_pool,
    is_postgres,
    issue_tokens,
    stored_messages,
    unique,
)
from tests.integration.hostile import HIGH_LIMITS, event_of, last_event_id, wait_security_events

MARK = "XSSMARK"
MARKDOWN_TAGS = {"b", "strong", "i", "em", "code", "pre", "a", "br", "p", "ul", "ol", "li", "blockquote"}


@dataclass
class World:
    server: ServerProcess
    ws: str
    tokens: dict[str, str]
    users: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url


#: Users are spent per test (security events are deduplicated per user, kind and reason for 60 s).
SPARE_USERS = 40


@pytest.fixture(scope="module")
def world(module_server_factory, module_backend) -> World:
    env = {**HIGH_LIMITS, "CHAT_SPAM_MAX_REPEATS": "3", "CHAT_SPAM_MAX_CHAR_RUN": "50", "CHAT_SPAM_MAX_LINKS": "10"}
    server = module_server_factory(module_backend, conformance=False, **env)
    ws, suffix = unique("cws"), unique("u")
    names = ["reader", *(f"u{n}" for n in range(SPARE_USERS))]
    users = {name: f"{name}-{suffix}" for name in names}
    roles = {"reader": "moderator"}
    tokens = issue_tokens(server, [(users[n], ws, roles.get(n, "member")) for n in names])
    return World(server, ws, {n: tokens[users[n]] for n in names}, users)


_spent = iter(range(SPARE_USERS))


def fresh_user() -> str:
    return f"u{next(_spent)}"


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def pair(world: World, new, transports) -> tuple[str, ChatClient, ChatClient, str]:
    """A fresh sender and the moderator ``reader`` in a new session: (user, sender, reader, session)."""
    user = fresh_user()
    session = unique("c")
    sender = await new(user).connect(world.url, world.tokens[user], transports)
    await sender.join(world.ws, session)
    reader = await new("reader").connect(world.url, world.tokens["reader"], transports)
    await reader.join(world.ws, session)
    return user, sender, reader, session


# --- what "safe" means ------------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


def assert_safe(content: str, content_type: str) -> None:
    assert MARK not in content, f"script/style/raw-text content survived: {content!r}"
    assert not re.search(r"(?i)(java|vb|live)[\s\x00-\x1f]*script[\s\x00-\x1f]*:", content), content
    assert not re.search(r"(?i)\bdata[\s\x00-\x1f]*:", content), f"a data: URL survived: {content!r}"
    parser = _Tags()
    parser.feed(content)
    parser.close()
    if content_type == "text":
        assert not re.search(r"<[A-Za-z/!?]", content), f"live markup in text: {content!r}"
        assert parser.tags == [], content
        return
    for tag, attrs in parser.tags:
        assert tag in MARKDOWN_TAGS, f"tag <{tag}> survived: {content!r}"
        for name, value in attrs:
            assert not name.startswith("on"), f"event handler survived: {content!r}"
            if tag == "a" and name == "href":
                assert re.match(r"(?i)(https?|mailto):", value or ""), content
            else:
                assert tag == "a" and name == "rel" and value == "noopener noreferrer nofollow", content


# Refused: every one is trying something, in one disguise or another.
BLOCKED = [
    ("script-tag", "text", f"<script>alert('{MARK}')</script>"),
    ("script-mixed-case", "text", f"<ScRiPt>{MARK}</sCrIpT>"),
    ("script-split", "text", "<scr<script>ipt>alert(1)</script>"),
    ("script-entities", "text", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("img-onerror", "text", "<img src=x onerror=alert(1)>"),
    ("svg-onload", "markdown", "<svg onload=alert(1)>"),
    ("body-onload", "text", "<body onload=alert(1)>"),
    ("a-onmouseover", "markdown", '<a href="https://ok.example" onmouseover="alert(1)">hover</a>'),
    ("iframe", "markdown", "<iframe src=//evil.example></iframe>"),
    ("object-data", "text", '<object data="evil.swf"></object>'),
    ("css-expression", "markdown", '<p style="width:expression(alert(1))">x</p>'),
    ("markdown-js-link", "markdown", "[click](javascript:alert(1))"),
    ("html-js-link", "markdown", '<a href="javascript:alert(1)">x</a>'),
    ("js-with-tab", "text", "java\tscript:alert(1)"),
    ("js-entity", "text", "&#106;avascript:alert(1)"),
    ("js-percent", "text", "%6Aavascript:alert(1)"),
    ("js-unicode-escape", "text", "\\u006aavascript:alert(1)"),
    ("js-fullwidth", "text", "ｊａｖａｓｃｒｉｐｔ:alert(1)"),
    ("data-html", "text", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="),
    ("obfuscated-host", "text", "see http://%65vil.example/"),
    ("decimal-ip-host", "text", "see http://3232235777/"),
]

# Accepted, but only in a safe form; ``exact`` when the readable result is obvious.
SANITISED: list[tuple[str, str, str, str | None]] = [
    ("plain-tags", "text", "<b>bold</b> and <i>italic</i>", "bold and italic"),
    ("style-content", "text", f"<style>body{{display:none}} {MARK}</style>visible", "visible"),
    ("comparisons", "text", "a < b && c > d", "a < b && c > d"),
    ("encoded-tag", "text", "&lt;b&gt;not a tag&lt;/b&gt;", None),
    ("data-image-url", "text", "see data:image/png;base64,iVBORw0KGgo= here", None),
    ("title-textarea", "text", f"<title>{MARK}</title>ok <textarea>{MARK}</textarea>", None),
    ("noscript", "text", f"<noscript>{MARK}</noscript>after", "after"),
    ("comment", "text", f"x <!-- {MARK} --> y", None),
    ("svg-content", "text", f"<svg><desc>{MARK}</desc></svg>ok", "ok"),
    ("link-in-text", "text", '<a href="http://ok.example">link</a>', "link"),
    ("markdown-allowed", "markdown", "**bold** <u>under</u> <b>b</b>", "**bold** under <b>b</b>"),
    ("markdown-link", "markdown", '<a href="https://ok.example/">ok</a>', None),
    ("markdown-relative-link", "markdown", '<a href="/relative">r</a>', None),
    ("markdown-ftp-link", "markdown", '<a href="ftp://x.example/">f</a>', None),
    ("markdown-data-image", "markdown", "![img](data:image/png;base64,AAAA)", None),
    ("markdown-style", "markdown", f"<style>{MARK}</style><p>para</p>", "<p>para</p>"),
    ("markdown-img", "markdown", '<img src="https://x.example/a.png">pic', "pic"),
    ("markdown-attributes", "markdown", '<p title="x" class="y" id="z">p</p>', "<p>p</p>"),
    ("markdown-math", "markdown", f"<math><mi>{MARK}</mi></math>fine", "fine"),
]


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_hostile_markup_is_blocked_and_recorded(world, new, transports):
    user, sender, reader, session = await pair(world, new, transports)
    before = last_event_id(world.server)
    marks = (sender.mark(), reader.mark())
    reasons = set()
    for name, content_type, content in BLOCKED:
        since = sender.mark()
        ack = await sender.send(session, content, contentType=content_type)
        body = assert_error(ack, "message_blocked", sender, "chat:send-message", since)
        assert body["reason"] in {"script_injection", "event_handler", "obfuscated_url"}, (name, body)
        reasons.add(body["reason"])
    assert reasons == {"script_injection", "event_handler", "obfuscated_url"}
    assert stored_messages(world.server, world.ws, session) == []
    await reader.assert_no_events(["chat:message-received"], within=0.3, since=marks[1])
    assert sender.events("chat:message-sent", marks[0]) == []
    # One event per reason (deduplicated), with the reason and the session -- never the content.
    rows = await wait_security_events(
        world.server, before, event_of("message_blocked", world.users[user]), count=len(reasons)
    )
    assert {row["detail"]["reason"] for row in rows} == reasons
    assert all(row["session_key"] == session and row["workspace_id"] for row in rows), rows
    assert all(MARK not in str(row["detail"]) and "alert" not in str(row["detail"]) for row in rows), rows


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_accepted_markup_is_stored_and_sent_sanitised(world, new, transports):
    user, sender, reader, session = await pair(world, new, transports)
    sent: dict[str, tuple[str, str | None]] = {}
    for name, content_type, content, exact in SANITISED:
        mid = unique(name)
        ack = await sender.send(session, content, mid, contentType=content_type)
        assert ack.get("ok") is True, (name, ack)
        sent[mid] = (content_type, exact)
    received = {}
    for mid in sent:
        message = await reader.wait_for("chat:message-received", lambda m, mid=mid: m["id"] == mid)
        received[mid] = message["content"]
    stored = {key: content for _, key, content in stored_messages(world.server, world.ws, session)}
    since = reader.mark()
    await reader.call("chat:request-history", {"sessionId": session, "limit": 200})
    history = {m["id"]: m["content"] for m in (await reader.wait_for("chat:history-response", since=since))["messages"]}
    for mid, (content_type, exact) in sent.items():
        assert stored[mid] == received[mid] == history[mid], (mid, stored[mid], received[mid], history[mid])
        assert_safe(stored[mid], content_type)
        if exact is not None:
            assert stored[mid] == exact, (mid, stored[mid])
    by_name = {mid.rsplit("-", 1)[0]: stored[mid] for mid in sent}
    assert "data\uff1aimage" in by_name["data-image-url"], by_name["data-image-url"]
    assert 'rel="noopener noreferrer nofollow"' in by_name["markdown-link"], by_name["markdown-link"]
    assert "not a tag" in by_name["encoded-tag"], by_name["encoded-tag"]


# --- spam ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_repeated_message_is_spam(world, new, transports):
    user, sender, reader, session = await pair(world, new, transports)
    before = last_event_id(world.server)
    text = f"buy cheap watches {unique('x')}"
    for variant in (text, text.upper(), f"  {text}  "):  # the same message to a reader: case and spacing ignored
        assert (await sender.send(session, variant))["ok"] is True
    since = sender.mark()
    ack = await sender.send(session, text.replace(" ", "   "))
    body = assert_error(ack, "spam_detected", sender, "chat:send-message", since)
    assert body["reason"] == "repeated_message" and isinstance(body["retryAfter"], int), body
    assert 0 < body["retryAfter"] <= 60_000, body
    assert len(stored_messages(world.server, world.ws, session)) == 3
    assert (await sender.send(session, f"something else {unique('y')}"))["ok"] is True
    await wait_security_events(
        world.server, before, event_of("suspicious_activity", world.users[user], reason="repeated_message")
    )


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_character_and_link_floods_are_spam(world, new, transports):
    user, sender, reader, session = await pair(world, new, transports)
    before = last_event_id(world.server)
    ok_run = "hm" + "m" * 49  # 50 of one character in a row: allowed
    links = lambda n: " ".join(f"https://l{i}.example/{unique('p')}" for i in range(n))  # noqa: E731
    for content in (ok_run, links(10)):
        assert (await sender.send(session, content))["ok"] is True, content
    for content, reason in (("h" + "m" * 51, "char_flood"), ("!" * 200, "char_flood"), (links(11), "link_flood")):
        since = sender.mark()
        ack = await sender.send(session, content)
        body = assert_error(ack, "spam_detected", sender, "chat:send-message", since)
        assert body["reason"] == reason, body
    assert len(stored_messages(world.server, world.ws, session)) == 2
    for reason in ("char_flood", "link_flood"):
        await wait_security_events(
            world.server, before, event_of("suspicious_activity", world.users[user], reason=reason)
        )


# --- security events: never blocking, never lost -------------------------------------------------------------


class TableLock:
    """Hold a lock on the server's security event table (SQLite: the whole database) from another connection."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.ready = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None

    def _hold(self) -> None:
        url = self.server.env["DATABASE_URL"]
        try:
            if is_postgres(self.server):
                import psycopg

                with psycopg.connect(url) as connection:
                    connection.execute("LOCK TABLE security_securityevent IN ACCESS EXCLUSIVE MODE")
                    self.ready.set()
                    self.release.wait(30)
                    connection.rollback()
            else:
                connection = sqlite3.connect(url[len("sqlite:///") :], timeout=30, isolation_level=None)
                connection.execute("BEGIN EXCLUSIVE")
                self.ready.set()
                self.release.wait(30)
                connection.execute("ROLLBACK")
                connection.close()
        except BaseException as error:  # reported by the test
            self.error = error
            self.ready.set()

    def __enter__(self) -> TableLock:
        self.thread = threading.Thread(target=self._hold, daemon=True)
        self.thread.start()
        assert self.ready.wait(30) and self.error is None, self.error
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.thread.join(30)


async def test_recording_never_delays_the_answer_and_never_loses_the_event(world, new):
    """With the event table locked, refusals are answered at once; their events are written once it is free."""
    users = [fresh_user() for _ in range(4)]
    clients = []
    for n, user in enumerate(users):
        client = await new(user).connect(world.url, world.tokens[user], [["websocket"], ["polling"]][n % 2])
        session = unique("lock")
        await client.join(world.ws, session)
        clients.append((user, client, session))
    before = last_event_id(world.server)
    slowest = 0.0
    with TableLock(world.server):
        for _, client, session in clients:
            for content, code in ((f"<script>{MARK}</script>", "message_blocked"), ("z" * 80, "spam_detected")):
                start = time.monotonic()
                ack = await client.send(session, content, timeout=10)
                slowest = max(slowest, time.monotonic() - start)
                assert ack.get("ok") is False and ack.get("code") == code, ack
        await asyncio.sleep(1.0)  # the writer is now stuck on the lock with these events
    assert slowest < 2.0, f"an answer waited {slowest:.2f}s for the security event table"
    for user, _, _ in clients:
        await wait_security_events(world.server, before, event_of("message_blocked", world.users[user]), timeout=30)
        await wait_security_events(world.server, before, event_of("suspicious_activity", world.users[user]), timeout=30)
