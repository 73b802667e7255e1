"""Every ``chat:*`` event of ``docs/protocol.md``: success and each error code, over both transports.

One chat server per backend for the module (``CHAT_TYPING_TIMEOUT_S=1``).
Each test makes fresh sessions, so tests never see each other's events, and
asserts on the full stream of events each client received.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import pytest

from tests.conftest import SIO_DRIVER, ServerProcess, arun_node
from tests.integration.chat_client import (
    MESSAGE_FIELDS,
    PRESENCE_FIELDS,
    RELAXED_SECURITY,
    TRANSPORTS,
    TYPING_FIELDS,
    USER_LEFT_FIELDS,
    ChatClient,
    assert_error,
    assert_silent,
    client_pool,
    close_session,
    create_agent,
    hide_message,
    issue_tokens,
    now_ms,
    presence_rows,
    server_python,
    session_pk,
    storage_failure,
    stored_messages,
    unique,
)
from tests.integration.clients import node_view

pytestmark = pytest.mark.parametrize("transports", TRANSPORTS)

MAX_LENGTH = 10_000  # CHAT_MESSAGE_MAX_LENGTH's default, as the protocol states
TYPING_TIMEOUT_S = 1
#: Per user and minute.  Only the rita-* users come near it: no other user
#: sends more than a few dozen typing events in this module.
TYPING_RATE_LIMIT = 60
JOIN_FIELDS = {
    "sessionId",
    "agentId",
    "workspaceId",
    "roomId",
    "workspaceRoomId",
    "status",
    "lastSeq",
    "timestamp",
    "presence",
}
HISTORY_FIELDS = {"sessionId", "messages", "limit", "offset", "afterSeq", "hasMore", "timestamp"}


@dataclass
class World:
    server: ServerProcess
    ws: str  # the workspace everyone below is in
    other_ws: str  # a workspace only olga is in
    agent: str  # an agent of ``ws``
    users: dict[str, str]  # short name -> username
    tokens: dict[str, str]  # short name -> API token

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def world(module_server_factory, module_backend) -> World:
    server = module_server_factory(
        module_backend,
        conformance=False,
        **{**RELAXED_SECURITY, "CHAT_TYPING_RATE_LIMIT": str(TYPING_RATE_LIMIT)},
        CHAT_TYPING_TIMEOUT_S=str(TYPING_TIMEOUT_S),
    )
    ws, other_ws, suffix = unique("ws"), unique("other"), unique("u")
    roles = {
        "alice": "moderator",
        "bob": "moderator",
        "carol": "moderator",
        "mel": "member",
        "rita-websocket": "member",  # rate-limited on purpose, one user per transport
        "rita-polling": "member",
    }
    users = {name: f"{name}-{suffix}" for name in [*roles, "olga"]}
    specs = [(users[name], ws, role) for name, role in roles.items()] + [(users["olga"], other_ws, "member")]
    by_username = issue_tokens(server, specs)
    agent = "helper"
    create_agent(server, ws, agent)
    return World(server, ws, other_ws, agent, users, {name: by_username[users[name]] for name in users})


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def connected(world: World, new, name: str, transports, label: str | None = None) -> ChatClient:
    return await new(label or name).connect(world.url, world.tokens[name], transports)


async def in_session(world: World, new, name: str, transports, session: str, label: str | None = None) -> ChatClient:
    client = await connected(world, new, name, transports, label)
    await client.join(world.ws, session)
    return client


def recent(timestamp: int, slack_ms: int = 10_000) -> bool:
    return isinstance(timestamp, int) and abs(timestamp - now_ms()) < slack_ms


# --- chat:join-session -------------------------------------------------------------------------


async def test_join_success_fields_and_user_joined_to_the_others_only(world, new, transports):
    s = unique("s")
    alice = await connected(world, new, "alice", transports)
    ack = await alice.call("chat:join-session", {"sessionId": s, "workspaceId": world.ws})
    success = await alice.wait_for("chat:join-session-success")
    assert ack == {"ok": True, **success}
    assert set(success) == JOIN_FIELDS
    assert success["sessionId"] == s and success["workspaceId"] == world.ws
    assert success["agentId"] is None and success["status"] == "open" and success["lastSeq"] == 0
    assert success["roomId"] == f"chat:session:{s}"
    assert success["workspaceRoomId"] == f"chat:workspace:{world.ws}"
    assert recent(success["timestamp"])
    presence = success["presence"]
    assert set(presence) == PRESENCE_FIELDS
    assert presence == {
        "sessionId": s,
        "workspaceId": world.ws,
        "userId": world.users["alice"],
        "userName": world.users["alice"],
        "socketId": alice.sid,
        "status": "active",
        "lastSeen": presence["lastSeen"],
    }
    assert recent(presence["lastSeen"])
    assert len(presence_rows(world.server, alice.sid)) == 1

    bob = await connected(world, new, "bob", transports)
    bob_success = await bob.join(world.ws, s)
    assert bob_success["presence"]["socketId"] == bob.sid and bob_success["presence"]["userId"] == world.users["bob"]
    assert await alice.wait_for("chat:user-joined") == bob_success["presence"]

    # lastSeq says how far the session is, for afterSeq recovery.
    assert (await alice.send(s, "one"))["seq"] == 1
    assert (await alice.send(s, "two"))["seq"] == 2
    carol = await connected(world, new, "carol", transports)
    carol_success = await carol.join(world.ws, s)
    assert carol_success["lastSeq"] == 2
    for other in (alice, bob):
        assert (
            await other.wait_for("chat:user-joined", lambda p: p["socketId"] == carol.sid) == carol_success["presence"]
        )

    await assert_silent([alice, bob, carol], within=0.3)
    assert alice.names() == [
        "connect",
        "chat:join-session-success",
        "chat:user-joined",
        "chat:message-sent",
        "chat:message-sent",
        "chat:user-joined",
    ]
    assert bob.names() == [
        "connect",
        "chat:join-session-success",
        "chat:message-received",
        "chat:message-received",
        "chat:user-joined",
    ]
    assert carol.names() == ["connect", "chat:join-session-success"]


async def test_join_with_an_agent_sets_it_for_everyone(world, new, transports):
    s = unique("s")
    alice = await connected(world, new, "alice", transports)
    success = await alice.join(world.ws, s, agentId=world.agent)
    assert success["agentId"] == world.agent
    bob = await connected(world, new, "bob", transports)
    assert (await bob.join(world.ws, s))["agentId"] == world.agent


async def test_joining_twice_answers_like_the_first_join_and_announces_once(world, new, transports):
    """A second join of the same session is a success: same answer, no second ``chat:user-joined``."""
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    await alice.wait_for("chat:user-joined")
    since = bob.mark()
    ack = await bob.call("chat:join-session", {"sessionId": s, "workspaceId": world.ws})
    assert ack.get("ok") is True, ack
    await assert_silent([alice], within=0.3)
    assert len(alice.events("chat:user-joined")) == 1
    again = bob.events("chat:join-session-success", since)
    assert len(again) == 1, f"no chat:join-session-success for the second join; ack {ack}; stream {bob.stream}"
    assert ack == {"ok": True, **again[0]}
    assert again[0]["presence"]["socketId"] == bob.sid and again[0]["lastSeq"] == 0


INVALID_JOINS = [
    ({"workspaceId": "W"}, False),  # no sessionId
    ({"sessionId": 123, "workspaceId": "W"}, False),
    ({"sessionId": None, "workspaceId": "W"}, False),
    ({"sessionId": "", "workspaceId": "W"}, False),
    ({"sessionId": "x" * 129, "workspaceId": "W"}, False),
    ({"sessionId": "bad id!", "workspaceId": "W"}, False),
    ({"sessionId": "S"}, True),  # no workspaceId
    ({"sessionId": "S", "workspaceId": 5}, True),
    ({"sessionId": "S", "workspaceId": ["W"]}, True),
    ({"sessionId": "S", "workspaceId": ""}, True),
    ({"sessionId": "S", "workspaceId": "w" * 65}, True),
    ({"sessionId": "S", "workspaceId": "W", "agentId": 5}, True),
    ({"sessionId": "S", "workspaceId": "W", "agentId": ""}, True),
    ({"sessionId": "S", "workspaceId": "W", "agentId": "a" * 129}, True),
    ({"sessionId": "S", "workspaceId": "W", "agentId": "no spaces"}, True),
]


async def test_join_invalid_payload(world, new, transports):
    s = unique("s")
    alice = await connected(world, new, "alice", transports)
    watcher = await in_session(world, new, "bob", transports, s, "watcher")
    for template, echoes_session in INVALID_JOINS:
        payload = {k: (s if v == "S" else world.ws if v == "W" else v) for k, v in template.items()}
        since = alice.mark()
        ack = await alice.call("chat:join-session", payload)
        body = assert_error(ack, "invalid_payload", alice, "chat:join-session", since)
        assert ("sessionId" in body) == echoes_session, (payload, body)
        if echoes_session:
            assert body["sessionId"] == s
    for payload in ["not an object", 42, [{"sessionId": s, "workspaceId": world.ws}]]:
        since = alice.mark()
        assert_error(
            await alice.call("chat:join-session", payload), "invalid_payload", alice, "chat:join-session", since
        )
    # A second argument makes it not "a single JSON object" either.
    since = alice.mark()
    ack = await alice.sio.call("chat:join-session", ({"sessionId": s, "workspaceId": world.ws}, "extra"), timeout=10)
    assert_error(ack, "invalid_payload", alice, "chat:join-session", since)
    await assert_silent([watcher], within=0.3)
    assert set(alice.names()) == {"connect", "chat:join-session-error"}
    assert watcher.names() == ["connect", "chat:join-session-success"]
    assert presence_rows(world.server, alice.sid) == []


async def test_join_not_a_member_same_answer_for_foreign_and_missing_workspace(world, new, transports):
    s = unique("s")
    alice = await connected(world, new, "alice", transports)
    olga = await connected(world, new, "olga", transports)
    await olga.join(world.other_ws, s)
    answers = []
    for workspace in (world.other_ws, unique("nowhere")):
        since = alice.mark()
        ack = await alice.call("chat:join-session", {"sessionId": s, "workspaceId": workspace})
        answers.append(assert_error(ack, "not_a_member", alice, "chat:join-session", since))
    assert answers[0] == answers[1], "a foreign workspace must look exactly like one that does not exist"
    assert answers[0]["sessionId"] == s
    # Nor is a session created or revealed by trying.
    await assert_silent([olga], within=0.3)
    assert olga.names() == ["connect", "chat:join-session-success"]
    assert alice.names() == ["connect", "chat:join-session-error", "chat:join-session-error"]
    assert session_pk(world.server, world.ws, s) is None


async def test_join_forbidden_for_a_plain_member_of_someone_elses_session(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    mel = await connected(world, new, "mel", transports)
    since = mel.mark()
    body = assert_error(
        await mel.call("chat:join-session", {"sessionId": s, "workspaceId": world.ws}),
        "forbidden",
        mel,
        "chat:join-session",
        since,
    )
    assert body["sessionId"] == s
    # Her own session she may join, and a moderator may join hers.
    own = unique("own")
    await mel.join(world.ws, own)
    moderator = await in_session(world, new, "bob", transports, own, "bob")
    await mel.wait_for("chat:user-joined", lambda p: p["socketId"] == moderator.sid)
    await assert_silent([alice], within=0.3)
    assert alice.names() == ["connect", "chat:join-session-success"]
    assert presence_rows(world.server, mel.sid) and len(presence_rows(world.server, mel.sid)) == 1


async def test_join_agent_not_found_creates_nothing(world, new, transports):
    s = unique("s")
    alice = await connected(world, new, "alice", transports)
    since = alice.mark()
    ack = await alice.call("chat:join-session", {"sessionId": s, "workspaceId": world.ws, "agentId": "no-such-agent"})
    assert assert_error(ack, "agent_not_found", alice, "chat:join-session", since)["sessionId"] == s
    assert session_pk(world.server, world.ws, s) is None
    # The agent of another workspace is not one of this workspace's either.
    olga = await connected(world, new, "olga", transports)
    since = olga.mark()
    ack = await olga.call("chat:join-session", {"sessionId": s, "workspaceId": world.other_ws, "agentId": world.agent})
    assert_error(ack, "agent_not_found", olga, "chat:join-session", since)
    assert alice.names() == ["connect", "chat:join-session-error"]


# --- connecting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth, reason",
    [
        ({"token": "chat_not-a-real-token"}, "invalid_token"),
        ({"token": "something-else"}, "invalid_token"),
        ({"token": ""}, "malformed_token"),
        ({"token": 42}, "malformed_token"),
        (None, "no_credentials"),
        ({}, "no_credentials"),
    ],
    ids=["unknown-api-token", "foreign-token", "empty-token", "number", "no-auth", "no-token"],
)
async def test_unauthenticated_connect_is_refused(world, new, transports, auth, reason):
    client = await new("anon").connect(world.url, None, transports, auth=auth, expect_error=True)
    assert not client.connected
    assert client.names() == ["connect_error"], client.stream
    error = client.events("connect_error")[0]
    assert isinstance(error, dict) and isinstance(error.get("message"), str), error
    assert error["data"]["code"] == "unauthenticated"
    assert error["data"]["reason"] == reason
    await client.assert_no_events(within=0.2, since=1)  # nothing but the refusal, ever


# --- chat:send-message -----------------------------------------------------------------------------


async def test_send_message_confirms_to_sender_and_reaches_everyone_else(world, new, transports):
    s = unique("s")
    a1 = await in_session(world, new, "alice", transports, s, "alice-tab1")
    a2 = await in_session(world, new, "alice", transports, s, "alice-tab2")
    bob = await in_session(world, new, "bob", transports, s)
    await a1.wait_for("chat:user-joined", lambda p: p["socketId"] == bob.sid)
    await a2.wait_for("chat:user-joined", lambda p: p["socketId"] == bob.sid)
    marks = {c: c.mark() for c in (a1, a2, bob)}
    metadata = {"lang": "en", "nested": {"list": [1, 2, {"k": None}], "flag": True}}
    mid = unique("m")
    before = now_ms()
    ack = await a1.send(s, "**hello**", mid, contentType="markdown", metadata=metadata)
    sent = await a1.wait_for("chat:message-sent", since=marks[a1])
    assert ack == {"ok": True, **sent}
    assert sent == {"messageId": mid, "sessionId": s, "seq": 1, "timestamp": sent["timestamp"], "duplicate": False}
    assert before - 1000 <= sent["timestamp"] <= now_ms() + 1000
    expected = {
        "id": mid,
        "sessionId": s,
        "workspaceId": world.ws,
        "seq": 1,
        "senderType": "user",
        "userId": world.users["alice"],
        "userName": world.users["alice"],
        "content": "**hello**",
        "contentType": "markdown",
        "html": "<p><strong>hello</strong></p>\n",
        "metadata": metadata,
        "timestamp": sent["timestamp"],
        "version": 1,
        "editedAt": None,
        "deleted": False,
        "attachments": [],
    }
    for other in (a2, bob):
        received = await other.wait_for("chat:message-received", since=marks[other])
        assert set(received) == MESSAGE_FIELDS
        assert received == expected
    # Defaults: text, empty metadata; seq goes on.
    second = await bob.send(s, "plain")
    assert second["ok"] is True and second["seq"] == 2
    for other in (a1, a2):
        received = await other.wait_for("chat:message-received", lambda m: m["seq"] == 2, since=marks[other])
        assert received["contentType"] == "text" and received["html"] is None and received["metadata"] == {}
        assert received["userId"] == world.users["bob"] and received["content"] == "plain"

    await assert_silent([a1, a2, bob], within=0.3)
    assert a1.names(marks[a1]) == ["chat:message-sent", "chat:message-received"]
    assert a2.names(marks[a2]) == ["chat:message-received", "chat:message-received"]
    assert bob.names(marks[bob]) == ["chat:message-received", "chat:message-sent"]
    assert stored_messages(world.server, world.ws, s) == [(1, mid, "**hello**"), (2, second["messageId"], "plain")]


async def test_duplicate_id_returns_the_original_confirmation_and_announces_nothing(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    await alice.send(s, "first")
    mid = unique("m")
    original = await alice.send(s, "the one", mid)
    assert original["ok"] is True and original["seq"] == 2 and original["duplicate"] is False
    await bob.wait_for("chat:message-received", lambda m: m["id"] == mid)
    marks = {c: c.mark() for c in (alice, bob)}
    for content in ("the one", "different content, same id"):
        again = await alice.send(s, content, mid)
        assert again == {**original, "duplicate": True}
    # ...from another socket too: the id is the session's idempotency key.
    assert (await bob.send(s, "the one", mid)) == {**original, "duplicate": True}
    await assert_silent([], within=0.3)
    assert alice.names(marks[alice]) == ["chat:message-sent", "chat:message-sent"]
    confirmation = {k: v for k, v in original.items() if k != "ok"}
    assert alice.events("chat:message-sent", marks[alice]) == [{**confirmation, "duplicate": True}] * 2
    assert bob.names(marks[bob]) == ["chat:message-sent"]
    assert stored_messages(world.server, world.ws, s)[1] == (2, mid, "the one")
    assert len(stored_messages(world.server, world.ws, s)) == 2
    # The next new message continues the sequence.
    assert (await alice.send(s, "next"))["seq"] == 3


COMMIT_WITHOUT_ANNOUNCING = """
import sys
from django.contrib.auth import get_user_model
from chat.services.messages import NewMessage, Sender, store_messages
session_pk, username, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
user = get_user_model().objects.get(username=username)
(stored,) = store_messages([NewMessage(session_pk, Sender.for_user(user), key, "committed, never announced")])
print(stored.message.seq)
"""


async def test_a_resent_message_committed_but_never_announced_reaches_the_members(world, new, transports):
    """Delivery is at least once: the worker that committed a message may die before announcing it.

    The sender, never confirmed, sends it again (same id) -- to whichever worker -- and that
    worker finds it committed and announces it; clients deduplicate by id and seq.
    """
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    mid = unique("m")
    mark = bob.mark()
    seq = server_python(
        world.server,
        "-c",
        "import django, sys; django.setup(); exec(" + repr(COMMIT_WITHOUT_ANNOUNCING) + ")",
        str(session_pk(world.server, world.ws, s)),
        world.users["alice"],
        mid,
    )
    # Committed behind the server's back: nobody was told.
    await bob.assert_no_events(["chat:message-received"], within=0.3, since=mark)
    again = await alice.send(s, "committed, never announced", mid, timeout=20)
    assert again["ok"] is True and again["duplicate"] is True and again["seq"] == int(seq)
    received = await bob.wait_for("chat:message-received", lambda m: m["id"] == mid, timeout=20)
    assert received["seq"] == int(seq) and received["content"] == "committed, never announced"


async def test_send_not_joined(world, new, transports):
    s, elsewhere = unique("s"), unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, elsewhere)
    since = alice.mark()
    mid = unique("m")
    ack = await alice.send(elsewhere, "hi", mid)
    body = assert_error(ack, "not_joined", alice, "chat:send-message", since)
    assert body["sessionId"] == elsewhere and body["messageId"] == mid
    # Naming the right session in another workspace is not joining it either.
    since = alice.mark()
    ack = await alice.send(s, "hi", workspaceId=world.other_ws)
    assert_error(ack, "not_joined", alice, "chat:send-message", since)
    await assert_silent([bob], within=0.3)
    assert bob.names() == ["connect", "chat:join-session-success"]
    assert stored_messages(world.server, world.ws, elsewhere) == []


INVALID_SENDS = [
    # (payload builder, echoes sessionId, echoes messageId)
    (lambda s, m: {}, False, False),
    (lambda s, m: {"message": "text"}, False, False),
    (lambda s, m: {"message": ["x"]}, False, False),
    (lambda s, m: {"message": {"id": m, "content": "no session"}}, False, True),
    (lambda s, m: {"message": {"id": m, "sessionId": 7, "content": "x"}}, False, True),
    (lambda s, m: {"message": {"sessionId": s, "content": "no id"}}, True, False),
    (lambda s, m: {"message": {"id": 12, "sessionId": s, "content": "x"}}, True, False),
    (lambda s, m: {"message": {"id": "has space", "sessionId": s, "content": "x"}}, True, False),
    (lambda s, m: {"message": {"id": "i" * 129, "sessionId": s, "content": "x"}}, True, False),
    (lambda s, m: {"message": {"id": m, "sessionId": s}}, True, True),
    (lambda s, m: {"message": {"id": m, "sessionId": s, "content": 5}}, True, True),
    (lambda s, m: {"message": {"id": m, "sessionId": s, "content": None}}, True, True),
    (lambda s, m: {"message": {"id": m, "sessionId": s, "content": ""}}, True, True),
    (lambda s, m: {"message": {"id": m, "sessionId": s, "content": " \n\t "}}, True, True),
    (lambda s, m: {"message": {"id": m, "sessionId": s, "content": "x", "contentType": "html"}}, True, True),
    (lambda s, m: {"message": {"id": m, "sessionId": s, "content": "x", "contentType": 1}}, True, True),
    (lambda s, m: {"message": {"id": m, "sessionId": s, "content": "x", "metadata": [1]}}, True, True),
    (lambda s, m: {"message": {"id": m, "sessionId": s, "content": "x", "metadata": "meta"}}, True, True),
    (lambda s, m: "just a string", False, False),
]


async def test_send_invalid_payload(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    marks = {bob: bob.mark()}
    for build, echoes_session, echoes_id in INVALID_SENDS:
        mid = unique("m")
        payload = build(s, mid)
        since = alice.mark()
        body = assert_error(
            await alice.call("chat:send-message", payload), "invalid_payload", alice, "chat:send-message", since
        )
        assert ("sessionId" in body) == echoes_session, (payload, body)
        assert ("messageId" in body) == echoes_id, (payload, body)
        if echoes_id:
            assert body["messageId"] == mid
        assert "retryable" not in body or body["retryable"] is False
    await assert_silent([bob], marks, within=0.3)
    assert stored_messages(world.server, world.ws, s) == []


@pytest.mark.parametrize(
    "field, value",
    [("metadata", []), ("metadata", False), ("metadata", 0), ("metadata", ""), ("contentType", "")],
    ids=["metadata-empty-list", "metadata-false", "metadata-zero", "metadata-empty-string", "contentType-empty"],
)
async def test_send_wrong_types_that_are_falsy_are_invalid_too(world, new, transports, field, value):
    """``metadata`` must be an object and ``contentType`` "text" or "markdown", falsy or not."""
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    since = alice.mark()
    ack = await alice.send(s, "x", **{field: value})
    assert_error(ack, "invalid_payload", alice, "chat:send-message", since)
    assert stored_messages(world.server, world.ws, s) == []


def nested(depth: int) -> dict:
    """An object ``depth`` levels deep, counting itself."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"d": value}
    return value


async def test_send_size_limits(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    marks = {bob: bob.mark()}
    seq = 0

    async def accepted(**message) -> None:
        nonlocal seq
        ack = await alice.send(s, message.pop("content", "ok"), **message)
        seq += 1
        assert ack["ok"] is True and ack["seq"] == seq, ack

    async def refused(code: str, **message) -> dict:
        mid = unique("m")
        since = alice.mark()
        ack = await alice.send(s, message.pop("content", "ok"), mid, **message)
        body = assert_error(ack, code, alice, "chat:send-message", since)
        assert body["messageId"] == mid and body["sessionId"] == s
        return body

    await accepted(content="x" * MAX_LENGTH)
    body = await refused("message_too_long", content="x" * (MAX_LENGTH + 1))
    assert body["maxLength"] == MAX_LENGTH
    # Characters, not bytes: the maximum of a multi-byte character is accepted.
    await accepted(content="é" * MAX_LENGTH)

    envelope = len('{"p":""}')
    await accepted(metadata={"p": "x" * (16 * 1024 - envelope)})
    await refused("metadata_too_large", metadata={"p": "x" * (16 * 1024 - envelope + 1)})
    await accepted(metadata=nested(8))
    await refused("metadata_too_large", metadata=nested(9))
    await refused("metadata_too_large", metadata={"l": [[[[[[[[{}]]]]]]]]})

    got = [m["seq"] for m in bob.events("chat:message-received", marks[bob])]
    await assert_silent([], within=0.3)
    assert [m["seq"] for m in bob.events("chat:message-received", marks[bob])] == list(range(1, seq + 1)), got
    assert bob.names(marks[bob]) == ["chat:message-received"] * seq
    assert [row[0] for row in stored_messages(world.server, world.ws, s)] == list(range(1, seq + 1))


async def test_send_to_a_closed_session(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    kept = await alice.send(s, "before closing")
    await bob.wait_for("chat:message-received")
    close_session(world.server, world.ws, s)
    marks = {bob: bob.mark()}
    since = alice.mark()
    mid = unique("m")
    body = assert_error(await alice.send(s, "too late", mid), "session_closed", alice, "chat:send-message", since)
    assert body["sessionId"] == s and body["messageId"] == mid
    # What was stored stays idempotent: resending it is still the original confirmation.
    assert await alice.send(s, "before closing", kept["messageId"]) == {**kept, "duplicate": True}
    # A closed session can be joined and read, not written.
    carol = await connected(world, new, "carol", transports)
    success = await carol.join(world.ws, s)
    assert success["status"] == "closed" and success["lastSeq"] == 1
    history = await carol.call("chat:request-history", {"sessionId": s})
    assert history["ok"] is True
    response = await carol.wait_for("chat:history-response")
    assert [m["content"] for m in response["messages"]] == ["before closing"]
    await assert_silent([], within=0.2)
    assert bob.names(marks[bob]) == ["chat:user-joined"]
    assert stored_messages(world.server, world.ws, s) == [(1, kept["messageId"], "before closing")]


async def test_storage_failure_is_retryable_and_leaves_no_trace(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    assert (await alice.send(s, "one"))["seq"] == 1
    await bob.wait_for("chat:message-received")
    marks = {bob: bob.mark()}
    poison, mid = f"fail-me-{unique('x')}", unique("m")
    with storage_failure(world.server, poison):
        since = alice.mark()
        ack = await alice.send(s, poison, mid)
        body = assert_error(ack, "internal", alice, "chat:send-message", since)
        assert body["retryable"] is True
        assert body["sessionId"] == s and body["messageId"] == mid
        assert "fail-me" not in body["error"] and "injected" not in body["error"]
        # Other messages are stored meanwhile, with no gap for the failed one.
        assert (await alice.send(s, "two"))["seq"] == 2
    # The same id may simply be retried: nothing was stored under it.
    retry = await alice.send(s, poison, mid)
    assert retry["ok"] is True and retry["seq"] == 3 and retry["duplicate"] is False
    await bob.wait_for("chat:message-received", lambda m: m["seq"] == 3, since=marks[bob])
    await assert_silent([], within=0.3)
    assert [(m["seq"], m["content"]) for m in bob.events("chat:message-received", marks[bob])] == [
        (2, "two"),
        (3, poison),
    ]
    assert bob.names(marks[bob]) == ["chat:message-received", "chat:message-received"]
    assert [(seq, content) for seq, _, content in stored_messages(world.server, world.ws, s)] == [
        (1, "one"),
        (2, "two"),
        (3, poison),
    ]


# --- chat:typing ------------------------------------------------------------------------------------


async def test_typing_reaches_the_others_and_expires(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    await alice.wait_for("chat:user-joined")
    marks = {c: c.mark() for c in (alice, bob)}
    started = time.monotonic()
    ack = await alice.call("chat:typing", {"sessionId": s, "isTyping": True})
    assert ack.get("ok") is True, ack
    on = await bob.wait_for("chat:typing-indicator", since=marks[bob])
    assert set(on) == TYPING_FIELDS
    assert on == {
        "sessionId": s,
        "userId": world.users["alice"],
        "userName": world.users["alice"],
        "isTyping": True,
        "timestamp": on["timestamp"],
    }
    assert recent(on["timestamp"])
    # Renewed before the timeout, it goes on...
    await asyncio.sleep(0.6)
    assert (await alice.call("chat:typing", {"sessionId": s, "isTyping": True})).get("ok") is True
    renewed = time.monotonic()
    await asyncio.sleep(0.7)  # past the first timeout, within the renewed one
    assert [e["isTyping"] for e in bob.events("chat:typing-indicator", marks[bob])] in ([True], [True, True])
    # ...and, not renewed, ends by itself within the timeout.
    off = await bob.wait_for("chat:typing-indicator", lambda e: e["isTyping"] is False, timeout=3, since=marks[bob])
    ended = time.monotonic()
    assert off["userId"] == world.users["alice"] and off["sessionId"] == s
    assert TYPING_TIMEOUT_S - 0.3 <= ended - renewed <= TYPING_TIMEOUT_S + 1.0, (ended - renewed, ended - started)
    await assert_silent([], within=0.2)
    assert alice.names(marks[alice]) == []  # never to the typist
    assert [e["isTyping"] for e in bob.events("chat:typing-indicator", marks[bob])][-1] is False
    assert set(bob.names(marks[bob])) == {"chat:typing-indicator"}


async def test_typing_false_leave_and_disconnect_end_it(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    carol = await in_session(world, new, "carol", transports, s)
    await alice.wait_for("chat:user-joined", lambda p: p["socketId"] == carol.sid)
    marks = {c: c.mark() for c in (alice, bob, carol)}
    # isTyping false ends it at once.
    await alice.call("chat:typing", {"sessionId": s, "isTyping": True})
    await bob.wait_for("chat:typing-indicator", lambda e: e["isTyping"], since=marks[bob])
    assert (await alice.call("chat:typing", {"sessionId": s, "isTyping": False})).get("ok") is True
    await bob.wait_for("chat:typing-indicator", lambda e: not e["isTyping"], timeout=0.5, since=marks[bob])
    # Leaving ends it, before the departure is announced.
    await bob.call("chat:typing", {"sessionId": s, "isTyping": True})
    await alice.wait_for("chat:typing-indicator", lambda e: e["isTyping"], since=marks[alice])
    await bob.call("chat:leave-session", {"sessionId": s})
    await alice.wait_for("chat:user-left", lambda e: e["socketId"] == bob.sid, timeout=0.8, since=marks[alice])
    # Disconnecting too.
    await carol.call("chat:typing", {"sessionId": s, "isTyping": True})
    await alice.wait_for("chat:typing-indicator", lambda e: e["isTyping"] and e["userId"] == world.users["carol"])
    await carol.disconnect()
    await alice.wait_for(
        "chat:typing-indicator", lambda e: e["userId"] == world.users["carol"] and not e["isTyping"], timeout=0.8
    )
    await assert_silent([], within=TYPING_TIMEOUT_S + 0.3)  # and no late expiry for anyone
    typing = [(e["userId"], e["isTyping"]) for e in alice.events("chat:typing-indicator", marks[alice])]
    # (carol's chat:user-left is test_disconnect_announces_user_left_to_the_others' business)
    assert [n for n in alice.names(marks[alice]) if n != "chat:user-left"] == ["chat:typing-indicator"] * 4
    assert alice.names(marks[alice])[:3] == ["chat:typing-indicator", "chat:typing-indicator", "chat:user-left"]
    assert typing == [
        (world.users["bob"], True),
        (world.users["bob"], False),
        (world.users["carol"], True),
        (world.users["carol"], False),
    ]
    assert [(e["userId"], e["isTyping"]) for e in bob.events("chat:typing-indicator", marks[bob])] == [
        (world.users["alice"], True),
        (world.users["alice"], False),
    ]


async def test_typing_errors(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    marks = {bob: bob.mark()}
    for payload, code in [
        ({"sessionId": unique("s"), "isTyping": True}, "not_joined"),
        ({"sessionId": s}, "invalid_payload"),
        ({"sessionId": s, "isTyping": "yes"}, "invalid_payload"),
        ({"sessionId": s, "isTyping": 1}, "invalid_payload"),
        ({"isTyping": True}, "invalid_payload"),
        ({"sessionId": "bad id", "isTyping": True}, "invalid_payload"),
    ]:
        since = alice.mark()
        body = assert_error(await alice.call("chat:typing", payload), code, alice, "chat:typing", since)
        if code == "not_joined":
            assert body["sessionId"] == payload["sessionId"]
    await assert_silent([bob], marks, within=0.3)


# --- chat:update-presence ---------------------------------------------------------------------------


async def test_update_presence_reaches_everyone_including_the_sender(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    await alice.wait_for("chat:user-joined")
    marks = {c: c.mark() for c in (alice, bob)}
    for status in ("away", "idle", "active"):
        ack = await alice.call("chat:update-presence", {"sessionId": s, "status": status})
        for client in (alice, bob):
            event = await client.wait_for(
                "chat:presence-updated", lambda e, status=status: e["status"] == status, since=marks[client]
            )
            assert set(event) == PRESENCE_FIELDS
            assert event == {
                "sessionId": s,
                "workspaceId": world.ws,
                "userId": world.users["alice"],
                "userName": world.users["alice"],
                "socketId": alice.sid,
                "status": status,
                "lastSeen": event["lastSeen"],
            }
            assert recent(event["lastSeen"])
        assert ack == {"ok": True, **alice.events("chat:presence-updated", marks[alice])[-1]}
    await assert_silent([], within=0.2)
    assert alice.names(marks[alice]) == bob.names(marks[bob]) == ["chat:presence-updated"] * 3


async def test_update_presence_errors(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    marks = {bob: bob.mark()}
    for payload, code in [
        ({"sessionId": s, "status": "busy"}, "invalid_payload"),
        ({"sessionId": s, "status": "ACTIVE"}, "invalid_payload"),
        ({"sessionId": s, "status": 1}, "invalid_payload"),
        ({"sessionId": s}, "invalid_payload"),
        ({"status": "away"}, "invalid_payload"),
        ({"sessionId": unique("s"), "status": "away"}, "not_joined"),
    ]:
        since = alice.mark()
        body = assert_error(
            await alice.call("chat:update-presence", payload), code, alice, "chat:update-presence", since
        )
        if "sessionId" in payload:
            assert body["sessionId"] == payload["sessionId"]
    await assert_silent([bob], marks, within=0.3)
    assert "chat:presence-updated" not in alice.names()
    status = [row for row in presence_rows(world.server, alice.sid)]
    assert len(status) == 1


# --- chat:request-history ------------------------------------------------------------------------------


async def history(client: ChatClient, **query) -> dict:
    since = client.mark()
    ack = await client.call("chat:request-history", query)
    assert ack.get("ok") is True, ack
    return await client.wait_for("chat:history-response", since=since)


async def test_history_pages_offset_limit_and_after_seq(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    sent = [await alice.send(s, f"message {i}") for i in range(1, 6)]
    live = [await bob.wait_for("chat:message-received", lambda m, i=i: m["seq"] == i) for i in range(1, 6)]
    assert [a["seq"] for a in sent] == [1, 2, 3, 4, 5]

    page = await history(bob, sessionId=s)
    assert set(page) == HISTORY_FIELDS
    assert page["messages"] == live  # the same ChatMessage shape as live delivery
    assert (page["limit"], page["offset"], page["afterSeq"], page["hasMore"]) == (50, 0, None, False)
    assert page["sessionId"] == s and recent(page["timestamp"])

    def seqs(p):
        return [m["seq"] for m in p["messages"]]

    page = await history(bob, sessionId=s, limit=2)
    assert (seqs(page), page["hasMore"], page["limit"], page["offset"]) == ([4, 5], True, 2, 0)
    page = await history(bob, sessionId=s, limit=2, offset=2)
    assert (seqs(page), page["hasMore"]) == ([2, 3], True)
    page = await history(bob, sessionId=s, limit=2, offset=3)
    assert (seqs(page), page["hasMore"]) == ([1, 2], False)
    page = await history(bob, sessionId=s, limit=2, offset=4)
    assert (seqs(page), page["hasMore"]) == ([1], False)
    page = await history(bob, sessionId=s, limit=5, offset=0)
    assert (seqs(page), page["hasMore"]) == ([1, 2, 3, 4, 5], False)
    page = await history(bob, sessionId=s, offset=9)
    assert (seqs(page), page["hasMore"]) == ([], False)

    page = await history(bob, sessionId=s, afterSeq=2, limit=2)
    assert (seqs(page), page["hasMore"], page["afterSeq"]) == ([3, 4], True, 2)
    page = await history(bob, sessionId=s, afterSeq=4, limit=2)
    assert (seqs(page), page["hasMore"]) == ([5], False)
    page = await history(bob, sessionId=s, afterSeq=0)
    assert (seqs(page), page["hasMore"], page["afterSeq"]) == ([1, 2, 3, 4, 5], False, 0)
    page = await history(bob, sessionId=s, afterSeq=5)
    assert (seqs(page), page["hasMore"]) == ([], False)
    # Only the asker gets the answer.
    await assert_silent([alice], {alice: alice.mark()}, within=0.2)
    assert "chat:history-response" not in alice.names()


async def test_history_ack_carries_the_response_fields(world, new, transports):
    """docs/protocol.md: "The ack receives {ok: true, ...} with the same fields as the success event"."""
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    await alice.send(s, "hello")
    since = alice.mark()
    ack = await alice.call("chat:request-history", {"sessionId": s, "limit": 10})
    response = await alice.wait_for("chat:history-response", since=since)
    assert {k: v for k, v in ack.items() if k != "timestamp"} == {
        "ok": True,
        **{k: v for k, v in response.items() if k != "timestamp"},
    }


_FILLED: dict[str, str] = {}


async def session_with_205_messages(world: World, new) -> str:
    """A session of 205 messages, sent quickly by five sockets at once, once per server."""
    if world.url not in _FILLED:
        s = unique("full")
        fillers = [await in_session(world, new, name, ["websocket"], s, f"filler-{name}") for name in ("carol", "bob")]
        fillers += [await in_session(world, new, "carol", ["websocket"], s, f"filler-{i}") for i in range(3)]

        async def fill(index: int, client: ChatClient) -> list[dict]:
            numbers = range(index, 205, len(fillers))
            return await asyncio.gather(*(client.send(s, f"m{i}", f"m{i:03d}", timeout=30) for i in numbers))

        acks = [ack for acks in await asyncio.gather(*(fill(i, c) for i, c in enumerate(fillers))) for ack in acks]
        assert sorted(a["seq"] for a in acks) == list(range(1, 206)), acks
        await asyncio.gather(*(filler.close() for filler in fillers))
        _FILLED[world.url] = s
    return _FILLED[world.url]


async def test_history_limit_is_clamped_to_200(world, new, transports):
    s = await session_with_205_messages(world, new)
    alice = await in_session(world, new, "alice", transports, s)
    page = await history(alice, sessionId=s, limit=1000)
    assert page["limit"] == 200 and page["hasMore"] is True
    assert [m["seq"] for m in page["messages"]] == list(range(6, 206))
    stored = {seq: key for seq, key, _ in stored_messages(world.server, world.ws, s)}
    assert [m["id"] for m in page["messages"]] == [stored[seq] for seq in range(6, 206)]
    page = await history(alice, sessionId=s, limit=201, afterSeq=0)
    assert page["limit"] == 200 and page["hasMore"] is True
    assert [m["seq"] for m in page["messages"]] == list(range(1, 201))
    page = await history(alice, sessionId=s, limit=200, offset=5)
    assert page["hasMore"] is False and [m["seq"] for m in page["messages"]] == list(range(1, 201))
    page = await history(alice, sessionId=s, limit=200, offset=4)
    assert page["hasMore"] is True and [m["seq"] for m in page["messages"]] == list(range(2, 202))
    page = await history(alice, sessionId=s)
    assert page["limit"] == 50 and [m["seq"] for m in page["messages"]] == list(range(156, 206))


async def test_the_official_client_may_batch_many_packets_in_one_post(world, node, transports):
    """socket.io-client buffers what it emits while a POST is in flight and sends it all in the next one.

    Engine.IO bounds a POST by maxPayload (bytes), not by a number of
    packets, so 100 emits in a row must all be handled.
    """
    s = unique("s")
    count = 100
    script = {
        "url": world.url,
        "options": {"transports": transports},
        "steps": [
            {"do": "connect", "auth": {"token": world.tokens["carol"]}, "timeoutMs": 5000},
            {
                "do": "emit",
                "event": "chat:join-session",
                "args": [{"sessionId": s, "workspaceId": world.ws}],
                "ack": True,
            },
            *[
                {"do": "emit", "event": "chat:request-history", "args": [{"sessionId": s, "limit": 1}]}
                for _ in range(count)
            ],
            # Events of one socket are handled in order: this ack comes after the 100 answers.
            {
                "do": "emit",
                "event": "chat:request-history",
                "args": [{"sessionId": s, "limit": 1}],
                "ack": True,
                "timeoutMs": 10000,
            },
        ],
    }
    out = await arun_node(SIO_DRIVER, script)
    node_view(out)  # the official client's events, checked against the event schema
    assert out["results"][0] == {"connected": True}, out["results"][0]
    assert out["results"][1]["ack"][0]["ok"] is True
    assert "ack" in out["results"][-1], f"no answer to the request after the burst: {out['results'][-1]}"
    assert out["connectErrors"] == [] and out["disconnects"] == [], (out["connectErrors"], out["disconnects"])
    responses = [e for e in out["events"] if e["name"] == "chat:history-response"]
    assert len(responses) == count + 1, [e["name"] for e in out["events"]][:10]


async def test_a_burst_of_answers_reaches_a_python_polling_client(world, new, transports):
    """python-socketio's client, which docs/protocol.md says connects unchanged, decodes at most
    16 packets per polling response (``engineio.payload.Payload.max_decode_packets``) and drops
    the connection on more: the server must not pack more than that into one response."""
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    count = 40  # fewer than the 64 packets the server accepts in one POST; answered at once (ack only)
    acks = await asyncio.gather(
        *(alice.call("chat:no-such-event", {"sessionId": s}, timeout=3) for _ in range(count)),
        return_exceptions=True,
    )
    lost = [ack for ack in acks if not isinstance(ack, dict)]
    assert not lost, f"{len(lost)} acks never arrived; connected={alice.connected}; last events {alice.names()[-3:]}"
    assert all(ack.get("code") == "unknown_event" for ack in acks)
    assert alice.connected and "disconnect" not in alice.names()


async def test_history_errors(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    marks = {bob: bob.mark()}
    for query, code in [
        ({"sessionId": s, "limit": 0}, "invalid_payload"),
        ({"sessionId": s, "limit": -5}, "invalid_payload"),
        ({"sessionId": s, "offset": -1}, "invalid_payload"),
        ({"sessionId": s, "afterSeq": -1}, "invalid_payload"),
        ({"sessionId": s, "limit": "10"}, "invalid_payload"),
        ({"sessionId": s, "limit": 2.5}, "invalid_payload"),
        ({"sessionId": s, "limit": True}, "invalid_payload"),
        ({"sessionId": s, "offset": "1"}, "invalid_payload"),
        ({"sessionId": s, "offset": 1.5}, "invalid_payload"),
        ({"sessionId": s, "afterSeq": "3"}, "invalid_payload"),
        ({"sessionId": s, "afterSeq": [3]}, "invalid_payload"),
        ({"sessionId": s, "limit": 2**60}, "invalid_payload"),
        ({}, "invalid_payload"),
        ({"sessionId": unique("s")}, "not_joined"),
    ]:
        since = alice.mark()
        body = assert_error(await alice.call("chat:request-history", query), code, alice, "chat:request-history", since)
        if "sessionId" in query:
            assert body["sessionId"] == query["sessionId"]
    assert "chat:history-response" not in alice.names()
    await assert_silent([bob], marks, within=0.2)


async def test_history_hides_hidden_messages_from_members_only(world, new, transports):
    s = unique("s")
    mel = await in_session(world, new, "mel", transports, s)  # a member, in her own session
    alice = await in_session(world, new, "alice", transports, s)  # a moderator
    for i in (1, 2, 3):
        await alice.send(s, f"m{i}")
    hide_message(world.server, world.ws, s, 2)
    assert [m["seq"] for m in (await history(mel, sessionId=s))["messages"]] == [1, 3]
    assert [m["seq"] for m in (await history(mel, sessionId=s, afterSeq=0))["messages"]] == [1, 3]
    assert [m["seq"] for m in (await history(alice, sessionId=s))["messages"]] == [1, 2, 3]


# --- chat:leave-session and disconnect ------------------------------------------------------------------


async def test_leave_announces_and_stops_every_event_of_that_session(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    alice2 = await in_session(world, new, "alice", transports, s, "alice-tab2")
    bob = await in_session(world, new, "bob", transports, s)
    await alice.wait_for("chat:user-joined", lambda p: p["socketId"] == bob.sid)
    marks = {c: c.mark() for c in (alice, alice2, bob)}
    ack = await alice.call("chat:leave-session", {"sessionId": s})
    assert ack == {"ok": True, "sessionId": s, "workspaceId": world.ws}
    for other in (alice2, bob):
        left = await other.wait_for("chat:user-left", since=marks[other])
        assert set(left) == USER_LEFT_FIELDS
        assert left == {
            "sessionId": s,
            "userId": world.users["alice"],
            "socketId": alice.sid,
            "timestamp": left["timestamp"],
        }
        assert recent(left["timestamp"])
    assert presence_rows(world.server, alice.sid) == []
    assert len(presence_rows(world.server, alice2.sid)) == 1

    # Nothing of the session reaches the socket that left...
    after = alice.mark()
    await bob.send(s, "you are gone")
    await bob.call("chat:typing", {"sessionId": s, "isTyping": True})
    await bob.call("chat:update-presence", {"sessionId": s, "status": "away"})
    carol = await in_session(world, new, "carol", transports, s)
    await carol.call("chat:leave-session", {"sessionId": s})
    await alice2.wait_for("chat:user-left", lambda e: e["socketId"] == carol.sid)
    # ...and it can no longer act in it.
    for event, payload in [
        ("chat:send-message", {"message": {"id": unique("m"), "sessionId": s, "content": "x"}}),
        ("chat:typing", {"sessionId": s, "isTyping": True}),
        ("chat:update-presence", {"sessionId": s, "status": "idle"}),
        ("chat:request-history", {"sessionId": s}),
        ("chat:leave-session", {"sessionId": s}),
    ]:
        since = alice.mark()
        assert_error(await alice.call(event, payload), "not_joined", alice, event, since)
    await asyncio.sleep(0.3)
    assert [n for n in alice.names(after) if not n.endswith("-error")] == []
    # The other tab still gets everything.
    assert alice2.events("chat:message-received", marks[alice2])[0]["content"] == "you are gone"
    assert {"chat:typing-indicator", "chat:presence-updated", "chat:user-joined"} <= set(alice2.names(marks[alice2]))


async def test_leave_errors(world, new, transports):
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    marks = {bob: bob.mark()}
    for payload, code in [
        ({}, "invalid_payload"),
        ({"sessionId": 5}, "invalid_payload"),
        ({"sessionId": s, "workspaceId": 5}, "invalid_payload"),
        ({"sessionId": unique("s")}, "not_joined"),
        ({"sessionId": s, "workspaceId": world.other_ws}, "not_joined"),
    ]:
        since = alice.mark()
        assert_error(await alice.call("chat:leave-session", payload), code, alice, "chat:leave-session", since)
    await assert_silent([bob], marks, within=0.3)
    assert len(presence_rows(world.server, alice.sid)) == 1


async def test_disconnect_announces_user_left_to_the_others(world, new, transports):
    s, s2 = unique("s"), unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    carol = await in_session(world, new, "carol", transports, s2)
    bob = await in_session(world, new, "bob", transports, s)
    assert (await bob.call("chat:join-session", {"sessionId": s2, "workspaceId": world.ws}))["ok"] is True
    await alice.wait_for("chat:user-joined")
    await carol.wait_for("chat:user-joined")
    marks = {alice: alice.mark(), carol: carol.mark()}
    bob_sid = bob.sid
    assert len(presence_rows(world.server, bob_sid)) == 2
    await bob.disconnect()
    deadline = time.monotonic() + 3
    while presence_rows(world.server, bob_sid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert presence_rows(world.server, bob_sid) == [], "the presence of a disconnected socket outlives it"
    for client, session in ((alice, s), (carol, s2)):
        left = await client.wait_for("chat:user-left", since=marks[client])
        assert left == {
            "sessionId": session,
            "userId": world.users["bob"],
            "socketId": bob_sid,
            "timestamp": left["timestamp"],
        }
    assert presence_rows(world.server, bob_sid) == []
    await assert_silent([alice, carol], within=0.3)
    assert alice.names(marks[alice]) == carol.names(marks[carol]) == ["chat:user-left"]


async def test_unknown_event_is_answered_on_the_ack_only(world, new, transports):
    alice = await connected(world, new, "alice", transports)
    ack = await alice.call("chat:no-such-event", {"sessionId": "x"})
    assert ack.get("ok") is False and ack.get("code") == "unknown_event", ack
    await alice.assert_no_events(within=0.2, since=0 + 1)  # nothing after "connect"
    assert alice.names() == ["connect"]


# --- rate limits and storage edge cases ------------------------------------------------------------


async def test_rate_limited_with_retry_after(world, new, transports):
    name = f"rita-{transports[0]}"
    s = unique("s")
    rita = await in_session(world, new, name, transports, s)
    watcher = await in_session(world, new, "alice", transports, s)
    for start in range(0, TYPING_RATE_LIMIT, 10):  # 10 at a time: few packets per polling request
        acks = await asyncio.gather(
            *(
                rita.call("chat:typing", {"sessionId": s, "isTyping": True})
                for _ in range(start, min(start + 10, TYPING_RATE_LIMIT))
            )
        )
        assert all(ack.get("ok") is True for ack in acks), [a for a in acks if not a.get("ok")]
    since = rita.mark()
    body = assert_error(
        await rita.call("chat:typing", {"sessionId": s, "isTyping": False}), "rate_limited", rita, "chat:typing", since
    )
    assert isinstance(body["retryAfter"], int) and 0 < body["retryAfter"] <= 60_000, body
    assert body["sessionId"] == s
    # The refused event had no effect: the indicator is still on for the others.
    await asyncio.sleep(0.2)
    assert [e["isTyping"] for e in watcher.events("chat:typing-indicator")][-1:] == [True]
    # Limits are per user: the others are not slowed down.
    assert (await watcher.call("chat:typing", {"sessionId": s, "isTyping": True})).get("ok") is True


async def test_metadata_the_database_cannot_store_is_refused_not_internal(world, new, transports):
    """A NUL character in metadata: stored as sent, or refused as invalid -- never an "internal, retry" that can never succeed."""
    s = unique("s")
    alice = await in_session(world, new, "alice", transports, s)
    bob = await in_session(world, new, "bob", transports, s)
    metadata = {"note": "a\u0000b"}
    ack = await alice.send(s, "with a NUL in metadata", metadata=metadata)
    if ack.get("ok"):
        received = await bob.wait_for("chat:message-received")
        assert received["metadata"] == metadata
    else:
        assert ack.get("code") == "invalid_payload", ack
        # ...and a retry, as "retryable" would invite, gives the same answer.
        assert (await alice.send(s, "with a NUL in metadata", ack.get("messageId"), metadata=metadata)).get(
            "code"
        ) == "invalid_payload"


async def test_one_unstorable_message_does_not_fail_other_senders(world, new, transports):
    """Whatever one client sends, the others' messages sent at the same moment are stored.

    (The server may store concurrent messages together; one it cannot store
    -- here a NUL character in metadata, which PostgreSQL's jsonb refuses --
    must not take the others down with it.)
    """
    s = unique("s")
    odd = [await in_session(world, new, "alice", transports, s, f"alice-{i}") for i in range(3)]
    fine = [await in_session(world, new, "bob", ["websocket"], s, f"bob-{i}") for i in range(3)]
    rounds = 5
    calls = []
    for i in range(rounds):
        calls += [c.send(s, f"odd {i}", metadata={"note": "a\u0000b"}) for c in odd]
        calls += [c.send(s, f"normal {i}") for c in fine]
    results = await asyncio.gather(*calls)
    normal = [ack for i, ack in enumerate(results) if i % 6 >= 3]
    failed = [ack for ack in normal if not ack.get("ok")]
    assert not failed, f"{len(failed)} of bob's {len(normal)} messages failed because of alice's: {failed[:2]}"


async def test_agent_reply_ids_can_be_squatted_by_a_participant(world, new, transports):
    """Issue #17: a member who sent ``agent-<m>`` before ``m`` owned the id of the agent's reply to ``m``."""
    s, mid = unique("s"), unique("m")
    alice = await connected(world, new, "alice", transports)
    await alice.join(world.ws, s, agentId=world.agent)
    squatter = await in_session(world, new, "bob", transports, s)
    since = squatter.mark()
    ack = await squatter.send(s, "squatting", f"agent-{mid}")
    body = assert_error(ack, "invalid_payload", squatter, "chat:send-message", since)
    assert "reserved" in body["error"], body
    # The REST API refuses it as well (the one action every surface calls).
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{world.server.url}/api/v1/workspaces/{world.ws}/sessions/{s}/messages/",
            json={"id": f"agent-{unique('m')}", "content": "squatting"},
            headers={"Authorization": f"Bearer {world.tokens['bob']}"},
        ) as response:
            assert response.status == 400 and (await response.json())["code"] == "invalid_payload"
    # Nothing was stored under the reserved id, so the agent's reply gets it.
    assert (await alice.send(s, "hello", mid))["ok"] is True
    reply = await squatter.wait_for("chat:message-received", lambda m: m["id"] == f"agent-{mid}", timeout=15)
    assert reply["senderType"] == "agent" and reply["content"] == "Echo: hello", reply
