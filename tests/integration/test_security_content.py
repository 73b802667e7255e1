"""Text is text, end to end (issue #20): content is delivered as sent, markdown as safe HTML beside it.

Against real servers on both backends, over both transports:

- what used to be refused (script tags, event handlers, ``javascript:``,
  obfuscated hosts) is stored, broadcast and served as history exactly as
  sent, recorded as ``suspicious_activity`` with its reason (never the
  content), and is a strike for the sender: three within the strike window
  tighten the sender's limits;
- a workspace whose admin set ``content_policy: strict`` (REST) refuses the
  same messages with today's ``message_blocked`` and reasons;
- ``content`` round-trips byte for byte through send, broadcast, history,
  the REST API and the Parlant-compatible API; ``html`` is ``null`` for
  text and, for markdown, HTML a real HTML parser finds nothing unsafe in;
- spam (repeats, character floods, link floods) is refused with
  ``spam_detected`` under every policy; recording security events never
  delays an answer or loses the event, even while their table is locked.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.conftest import ServerProcess
from tests.hostile_corpus import END_TO_END, HARMLESS_MARKUP, ISSUE_20_TABLE, MARK
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
from tests.integration.hostile import HIGH_LIMITS, event_of, last_event_id, security_events, wait_security_events
from tests.integration.test_monitoring_support import OPS_TOKEN, Scrape, http
from tests.unit.test_render import assert_safe

REASONS = {"script_injection", "event_handler", "obfuscated_url"}


@dataclass
class World:
    server: ServerProcess
    ws: str
    strict_ws: str
    tokens: dict[str, str]
    users: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url


#: Users are spent per test (security events are deduplicated per user, kind and reason for 60 s).
SPARE_USERS = 40
SPARE_STRICT_USERS = 20  # shared by both backends' worlds (about 7 each)


def rest(world: World, who: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{world.url}/api/v1/{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {world.tokens[who]}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def world(module_server_factory, module_backend) -> World:
    env = {
        **HIGH_LIMITS,
        "CHAT_SPAM_MAX_REPEATS": "3",
        "CHAT_SPAM_MAX_CHAR_RUN": "50",
        "CHAT_SPAM_MAX_LINKS": "10",
        "CHAT_API_RATE_LIMIT": "",
        "CHAT_OPS_TOKEN": OPS_TOKEN,
    }
    server = module_server_factory(module_backend, conformance=False, **env)
    ws, strict_ws, suffix = unique("cws"), unique("sws"), unique("u")
    standard = ["reader", *(f"u{n}" for n in range(SPARE_USERS))]
    strict = ["sreader", "sadmin", *(f"s{n}" for n in range(SPARE_STRICT_USERS))]
    users = {name: f"{name}-{suffix}" for name in standard + strict}
    roles = {"reader": "moderator", "sreader": "moderator", "sadmin": "admin"}
    specs = [(users[n], ws, roles.get(n, "member")) for n in standard]
    specs += [(users[n], strict_ws, roles.get(n, "member")) for n in strict]
    tokens = issue_tokens(server, specs)
    world = World(server, ws, strict_ws, {n: tokens[users[n]] for n in users}, users)
    status, body = rest(world, "sadmin", "PATCH", f"workspaces/{strict_ws}/", {"contentPolicy": "strict"})
    assert (status, body["contentPolicy"]) == (200, "strict"), body
    return world


_spent = iter(range(SPARE_USERS))
_spent_strict = iter(range(SPARE_STRICT_USERS))


def fresh_user() -> str:
    return f"u{next(_spent)}"


def fresh_strict_user() -> str:
    return f"s{next(_spent_strict)}"


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def pair(world: World, new, transports, *, strict: bool = False) -> tuple[str, ChatClient, ChatClient, str]:
    """A fresh sender and a moderator reader in a new session: (user, sender, reader, session)."""
    user = fresh_strict_user() if strict else fresh_user()
    reader_name, workspace = ("sreader", world.strict_ws) if strict else ("reader", world.ws)
    session = unique("c")
    sender = await new(user).connect(world.url, world.tokens[user], transports)
    await sender.join(workspace, session)
    reader = await new(reader_name).connect(world.url, world.tokens[reader_name], transports)
    await reader.join(workspace, session)
    return user, sender, reader, session


async def history_of(reader: ChatClient, session: str) -> dict[str, dict[str, Any]]:
    since = reader.mark()
    await reader.call("chat:request-history", {"sessionId": session, "limit": 200})
    response = await reader.wait_for("chat:history-response", lambda r: r["sessionId"] == session, since=since)
    return {m["id"]: m for m in response["messages"]}


def assert_html(message: dict[str, Any]) -> None:
    if message["contentType"] == "text":
        assert message["html"] is None, message
    else:
        assert isinstance(message["html"], str) and message["html"], message
        assert_safe(message["html"])


# --- standard: delivered as sent, recorded ------------------------------------------------------------


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_formerly_blocked_content_is_delivered_as_sent_and_recorded(world, new, transports):
    user, sender, reader, session = await pair(world, new, transports)
    before = last_event_id(world.server)
    counted = await asyncio.to_thread(suspicious_counts, world)
    sent: dict[str, tuple[str, str]] = {}
    for name, content_type, content, _ in END_TO_END:
        mid = unique(name)
        ack = await sender.send(session, content, mid, contentType=content_type)
        assert ack.get("ok") is True, (name, ack)
        sent[mid] = (content_type, content)
    received = {}
    for mid in sent:
        received[mid] = await reader.wait_for("chat:message-received", lambda m, mid=mid: m["id"] == mid)
    stored = {key: content for _, key, content in stored_messages(world.server, world.ws, session)}
    history = await history_of(reader, session)
    for mid, (content_type, content) in sent.items():
        assert stored[mid] == received[mid]["content"] == history[mid]["content"] == content, mid
        assert received[mid]["contentType"] == content_type
        assert received[mid]["html"] == history[mid]["html"]
        assert_html(received[mid])
    # One event per reason (deduplicated per user and reason), with the session -- never the content.
    rows = await wait_security_events(
        world.server, before, event_of("suspicious_activity", world.users[user]), count=len(REASONS)
    )
    assert {row["detail"]["reason"] for row in rows} == REASONS
    assert all(row["detail"]["surface"] == "socket" and row["detail"]["policy"] == "standard" for row in rows), rows
    assert all(row["session_key"] == session and row["workspace_id"] for row in rows), rows
    assert all(MARK not in str(row["detail"]) and "alert" not in str(row["detail"]) for row in rows), rows
    assert not [row for row in security_events(world.server, before) if row["type"] == "message_blocked"]
    # The workspace's moderators see them over REST...
    status, page = await asyncio.to_thread(
        rest, world, "reader", "GET",
        f"workspaces/{world.ws}/security-events/?type=suspicious_activity&user={world.users[user]}",
    )  # fmt: skip
    assert status == 200 and {event["detail"]["reason"] for event in page["results"]} == REASONS, page
    assert all(event["sessionId"] == session for event in page["results"]), page
    # ...and metrics count every message, not only the first of each reason.
    now = await asyncio.to_thread(suspicious_counts, world)
    for reason in REASONS:
        expected = sum(1 for *_, why in END_TO_END if why == reason)
        assert now[reason] - counted.get(reason, 0) == expected, (reason, now, counted)


def suspicious_counts(world: World) -> dict[str, float]:
    status, _, body = http(world.server, "/metrics", token=OPS_TOKEN)
    assert status == 200
    scrape = Scrape(body.decode() if isinstance(body, bytes) else body)
    return {reason: scrape.value("chat_suspicious_content_total", reason=reason, outcome="accepted") for reason in REASONS}


async def test_the_issue_table_is_accepted_under_standard(world, new):
    user, sender, reader, session = await pair(world, new, ["websocket"])
    for content, _ in ISSUE_20_TABLE:
        mid = unique("t")
        assert (await sender.send(session, content, mid))["ok"] is True, content
        message = await reader.wait_for("chat:message-received", lambda m, mid=mid: m["id"] == mid)
        assert (message["content"], message["html"]) == (content, None)


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_harmless_markup_is_delivered_as_sent_with_safe_html(world, new, transports):
    user, sender, reader, session = await pair(world, new, transports)
    sent = {}
    for name, content_type, content in HARMLESS_MARKUP:
        mid = unique(name)
        assert (await sender.send(session, content, mid, contentType=content_type))["ok"] is True, name
        sent[mid] = (name, content)
    history = await history_of(reader, session)
    for mid, (name, content) in sent.items():
        message = await reader.wait_for("chat:message-received", lambda m, mid=mid: m["id"] == mid)
        assert message["content"] == history[mid]["content"] == content, name
        assert message["html"] == history[mid]["html"], name
        assert_html(message)
    by_name = {name: history[mid] for mid, (name, _) in sent.items()}
    assert by_name["markdown-code"]["html"].startswith('<pre><code class="language-html">&lt;script&gt;')
    assert 'href="https://ok.example/" target="_blank" rel="nofollow noopener"' in by_name["markdown-link"]["html"]
    assert "href" not in by_name["markdown-relative-link"]["html"]
    assert "<img" not in by_name["markdown-img"]["html"]  # images are off unless CHAT_MARKDOWN_IMAGES


# --- strict: refused with today's codes ---------------------------------------------------------------


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_a_strict_workspace_refuses_it_with_todays_codes(world, new, transports):
    user, sender, reader, session = await pair(world, new, transports, strict=True)
    before = last_event_id(world.server)
    marks = (sender.mark(), reader.mark())
    for name, content_type, content, reason in END_TO_END:
        since = sender.mark()
        ack = await sender.send(session, content, contentType=content_type)
        body = assert_error(ack, "message_blocked", sender, "chat:send-message", since)
        assert body["reason"] == reason, (name, body)
    for content, reason in ISSUE_20_TABLE[:4]:
        since = sender.mark()
        body = assert_error(await sender.send(session, content), "message_blocked", sender, "chat:send-message", since)
        assert body["reason"] == reason, (content, body)
    # The other surfaces refuse it the same way.
    status, body = await asyncio.to_thread(
        rest, world, user, "POST", f"workspaces/{world.strict_ws}/sessions/{session}/messages/",
        {"id": unique("r"), "content": ISSUE_20_TABLE[0][0]},
    )  # fmt: skip
    assert (status, body["code"], body["reason"]) == (400, "message_blocked", "script_injection"), body
    async with aiohttp.ClientSession() as http_client:
        async with http_client.post(
            f"{world.url}/parlant/{world.strict_ws}/sessions/{session}/events",
            json={"kind": "message", "source": "customer", "message": ISSUE_20_TABLE[3][0]},
            headers={"Authorization": f"Bearer {world.tokens[user]}"},
        ) as response:
            body = await response.json()
    assert (response.status, body["code"], body["reason"]) == (422, "message_blocked", "event_handler"), body
    assert (await sender.send(session, ISSUE_20_TABLE[4][0]))["ok"] is True
    assert [content for _, _, content in stored_messages(world.server, world.strict_ws, session)] == [
        ISSUE_20_TABLE[4][0]
    ]
    await reader.wait_for("chat:message-received", since=marks[1])
    await reader.assert_no_events(["chat:message-received"], within=0.3, since=reader.mark())
    received = [m["content"] for m in reader.events("chat:message-received", marks[1])]
    assert received == [ISSUE_20_TABLE[4][0]]
    rows = await wait_security_events(
        world.server, before, event_of("message_blocked", world.users[user]), count=len(REASONS)
    )
    assert {row["detail"]["reason"] for row in rows} == REASONS
    assert all(MARK not in str(row["detail"]) for row in rows), rows


def test_only_workspace_admins_set_the_content_policy(world):
    path = f"workspaces/{world.strict_ws}/"
    for who in ("sreader", "s0"):
        status, body = rest(world, who, "PATCH", path, {"contentPolicy": "standard"})
        assert (status, body["code"]) == (403, "forbidden"), (who, body)
    status, body = rest(world, "sadmin", "PATCH", path, {"contentPolicy": "lenient"})
    assert (status, body["code"]) == (400, "invalid_payload"), body
    status, body = rest(world, "reader", "PATCH", path, {"contentPolicy": "standard"})
    assert (status, body["code"]) == (404, "not_a_member"), body  # another workspace's moderator
    status, body = rest(world, "s0", "GET", path)
    assert (status, body["contentPolicy"]) == (200, "strict"), body
    status, body = rest(world, "reader", "GET", f"workspaces/{world.ws}/")
    assert (status, body["contentPolicy"]) == (200, "standard"), body


# --- byte for byte on every surface -------------------------------------------------------------------

ROUND_TRIP = [
    ("text", "crlf\r\nand lone\rreturns\n"),
    ("text", "  leading and trailing spaces  \t"),
    ("text", "controls \x01\x07\x1b[31m\x1f and DEL \x7f"),
    ("text", "e\u0301 vs \u00e9, \ufb01 ligature, ｆｕｌｌ width, \u200b zero width, \u202e rtl"),
    ("text", "emoji 😀👩‍💻 and astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"),
    ("text", "a<b, a&b, &amp; &lt;tag&gt; &#60; &#x3C; %3C \\x3c"),
    ("text", "javascript:alert(1)"),
    ("text", "<img src=x onerror=alert(1)>"),
    ("markdown", "```js\nconst s = '<script>';\n```\n\n`a && b` [x](https://e.example) *i*"),
    ("markdown", "line one  \nline two\r\n\r\n> quote <b>raw</b>"),
]


async def test_content_round_trips_byte_for_byte_on_every_surface(world, new):
    """Send (socket), broadcast, history, REST (post, list, get) and the Parlant facade (post, events)."""
    # The session's creator sends over the socket and REST; the moderator posts over Parlant (as a human agent).
    socket_user = fresh_user()
    session = unique("rt")
    sender = await new(socket_user).connect(world.url, world.tokens[socket_user], ["websocket"])
    await sender.join(world.ws, session)
    reader = await new("reader").connect(world.url, world.tokens["reader"], ["websocket"])
    await reader.join(world.ws, session)
    expected: dict[str, tuple[str, str]] = {}
    async with aiohttp.ClientSession() as http:
        for n, (content_type, content) in enumerate(ROUND_TRIP):
            # Socket send -> broadcast.
            mid = f"s{n}-{unique('rt')}"
            assert (await sender.send(session, content, mid, contentType=content_type))["ok"] is True
            seen = await reader.wait_for("chat:message-received", lambda m, mid=mid: m["id"] == mid)
            assert (seen["content"], seen["contentType"]) == (content, content_type)
            expected[mid] = (content_type, content)
            # REST post -> its answer, and the broadcast.
            mid = f"r{n}-{unique('rt')}"
            status, body = await asyncio.to_thread(
                rest, world, socket_user, "POST", f"workspaces/{world.ws}/sessions/{session}/messages/",
                {"id": mid, "content": content, "contentType": content_type},
            )  # fmt: skip
            assert status == 201 and body["content"] == content, body
            seen = await reader.wait_for("chat:message-received", lambda m, mid=mid: m["id"] == mid)
            assert seen["content"] == content and seen["html"] == body["html"]
            expected[mid] = (content_type, content)
            # Parlant post (its messages are text) -> its answer, and the broadcast.
            if content_type == "text":
                url = f"{world.url}/parlant/{world.ws}/sessions/{session}/events"
                headers = {"Authorization": f"Bearer {world.tokens['reader']}"}
                post = {"kind": "message", "source": "human_agent", "message": content}
                async with http.post(url, json=post, headers=headers) as response:
                    event = await response.json()
                assert response.status == 201 and event["data"]["message"] == content, event
                seen = await reader.wait_for("chat:message-received", lambda m, key=event["id"]: m["id"] == key)
                assert seen["content"] == content
                expected[event["id"]] = ("text", content)
        history = await history_of(reader, session)
        status, page = await asyncio.to_thread(
            rest, world, "reader", "GET", f"workspaces/{world.ws}/sessions/{session}/messages/?limit=200"
        )
        assert status == 200, page
        listed = {m["id"]: m for m in page["results"]}
        url = f"{world.url}/parlant/{world.ws}/sessions/{session}/events?wait_for_data=0"
        async with http.get(url, headers={"Authorization": f"Bearer {world.tokens['reader']}"}) as response:
            assert response.status == 200
            logged = {e["id"]: e for e in await response.json() if e["kind"] == "message"}
        stored = {key: content for _, key, content in stored_messages(world.server, world.ws, session)}
        for mid, (_, content) in expected.items():
            status, one = await asyncio.to_thread(
                rest, world, "reader", "GET", f"workspaces/{world.ws}/sessions/{session}/messages/{mid}/"
            )
            assert status == 200, one
            surfaces = {
                "database": stored[mid],
                "history": history[mid]["content"],
                "rest list": listed[mid]["content"],
                "rest get": one["content"],
                "parlant": logged[mid]["data"]["message"],
            }
            assert all(value == content for value in surfaces.values()), (mid, content, surfaces)
            assert history[mid]["html"] == listed[mid]["html"] == one["html"] == logged[mid]["data"].get("html")
            assert_html(history[mid])


# --- strikes ----------------------------------------------------------------------------------------


async def test_three_suspicious_messages_tighten_the_senders_limits(server_factory, backend, new):
    """CHAT_PENALTY_STRIKES (3) suspicious messages within the window: the sender's limits halve; others' do not."""
    typing_limit = 6
    server = server_factory(
        backend, conformance=False, CHAT_TYPING_RATE_LIMIT=str(typing_limit), CHAT_SPAM_MAX_REPEATS="100"
    )
    ws, suffix = unique("pws"), unique("u")
    names = {"offender": f"offender-{suffix}", "neighbour": f"neighbour-{suffix}"}
    tokens = issue_tokens(server, [(name, ws, "member") for name in names.values()])
    clients = {}
    for role, name in names.items():
        clients[role] = await new(role).connect(server.url, tokens[name], ["websocket"])
        await clients[role].join(ws, f"s-{role}")
    before = last_event_id(server)
    for content, _ in ISSUE_20_TABLE[:3]:  # three formerly blocked messages: delivered, three strikes
        assert (await clients["offender"].send("s-offender", content))["ok"] is True
    for n in range(3):
        assert (await clients["neighbour"].send("s-neighbour", f"ordinary message {n}"))["ok"] is True

    async def typing_allowed(role: str) -> int:
        allowed = 0
        for _ in range(typing_limit):
            ack = await clients[role].call("chat:typing", {"sessionId": f"s-{role}", "isTyping": True})
            if ack.get("ok") is True:
                allowed += 1
            else:
                assert ack["code"] == "rate_limited", ack
        return allowed

    assert await typing_allowed("offender") == typing_limit // 2
    assert await typing_allowed("neighbour") == typing_limit
    rows = await wait_security_events(server, before, event_of("suspicious_activity", names["offender"]))
    assert rows[0]["detail"]["reason"] == "script_injection"


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


async def test_spam_is_refused_under_standard_even_when_it_also_looks_like_an_attack(world, new):
    user, sender, reader, session = await pair(world, new, ["websocket"])
    since = sender.mark()
    ack = await sender.send(session, "<script>" + "z" * 80)
    assert assert_error(ack, "spam_detected", sender, "chat:send-message", since)["reason"] == "char_flood"
    assert stored_messages(world.server, world.ws, session) == []


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
    """With the event table locked, refusals are answered at once; their events are written once it is free.

    In the strict workspace, so that both refusals (``message_blocked``, ``spam_detected``) store nothing
    (a stored message would wait for the lock on SQLite).  Deciding ``message_blocked`` reads the
    workspace's policy, which on SQLite -- where the lock is on the whole database -- waits for the lock
    like any read; there only spam, which reads nothing, is sent while it is held.
    """
    users = [fresh_strict_user() for _ in range(4)]
    clients = []
    for n, user in enumerate(users):
        client = await new(user).connect(world.url, world.tokens[user], [["websocket"], ["polling"]][n % 2])
        session = unique("lock")
        await client.join(world.strict_ws, session)
        clients.append((user, client, session))
    # The workspace's policy is read before the lock (a worker keeps it for a few seconds), by a fifth user
    # (each user's events are recorded once per reason a minute).
    warm = fresh_strict_user()
    warmer = await new(warm).connect(world.url, world.tokens[warm], ["websocket"])
    await warmer.join(world.strict_ws, unique("warm"))
    assert (await warmer.send(warmer.events("chat:join-session-success")[0]["sessionId"], "<script>")).get(
        "code"
    ) == "message_blocked"
    before = last_event_id(world.server)
    slowest = 0.0
    refusals = [("z" * 80, "spam_detected")]
    if is_postgres(world.server):
        refusals.append((f"<script>{MARK}</script>", "message_blocked"))
    with TableLock(world.server):
        for _, client, session in clients:
            for content, code in refusals:
                start = time.monotonic()
                ack = await client.send(session, content, timeout=10)
                slowest = max(slowest, time.monotonic() - start)
                assert ack.get("ok") is False and ack.get("code") == code, ack
        await asyncio.sleep(1.0)  # the writer is now stuck on the lock with these events
    assert slowest < 2.0, f"an answer waited {slowest:.2f}s for the security event table"
    for user, _, _ in clients:
        if is_postgres(world.server):
            blocked = event_of("message_blocked", world.users[user])
            await wait_security_events(world.server, before, blocked, timeout=30)
        await wait_security_events(world.server, before, event_of("suspicious_activity", world.users[user]), timeout=30)
