"""Isolation between workspaces and sessions (``docs/protocol.md``, "Isolation").

Two workspaces, each with sessions and users.  Every cross-workspace or
cross-session attempt fails with the right code, and a listener in every
other session receives nothing: the full stream of every listener is
asserted, over both transports, on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import ServerProcess
from tests.integration.chat_client import (
    RELAXED_SECURITY,
    TRANSPORTS,
    ChatClient,
    assert_error,
    assert_silent,
    client_pool,
    issue_tokens,
    session_pk,
    stored_messages,
    unique,
)

pytestmark = pytest.mark.parametrize("transports", TRANSPORTS)


@dataclass
class Spaces:
    server: ServerProcess
    a: str
    b: str
    users: dict[str, str]
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def spaces(module_server_factory, module_backend) -> Spaces:
    server = module_server_factory(module_backend, conformance=False, **RELAXED_SECURITY)
    a, b, suffix = unique("wa"), unique("wb"), unique("u")
    plan = {
        "amod": [(a, "moderator")],
        "amem": [(a, "member")],
        "bmod": [(b, "moderator")],
        "bmem": [(b, "member")],
        "dual": [(a, "moderator"), (b, "moderator")],
    }
    users = {name: f"{name}-{suffix}" for name in plan}
    specs = [(users[name], ws, role) for name, memberships in plan.items() for ws, role in memberships]
    tokens = issue_tokens(server, specs)
    return Spaces(server, a, b, users, {name: tokens[users[name]] for name in users})


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def member(spaces: Spaces, new, name: str, transports, label: str) -> ChatClient:
    return await new(label).connect(spaces.server.url, spaces.tokens[name], transports)


def own_session_only(client: ChatClient, workspace: str, session: str) -> None:
    """Every event the client received names its own session (and workspace, where the shape has one)."""
    for name, data in client.stream:
        if name in ("connect", "disconnect") or name.endswith("-error"):
            continue
        assert data["sessionId"] == session, (client, name, data)
        if "workspaceId" in data:
            assert data["workspaceId"] == workspace, (client, name, data)


async def test_cross_workspace_and_cross_session_attempts_fail_and_nothing_leaks(spaces, new, transports):
    a, b = spaces.a, spaces.b
    shared = unique("shared")  # this id exists in both workspaces
    a2, b3 = unique("a2"), unique("b3")

    # A listener in every session: A/shared, A/a2, B/shared, B/b3.
    la1 = await member(spaces, new, "amod", transports, "listener A/shared")
    await la1.join(a, shared)
    la2 = await member(spaces, new, "amod", transports, "listener A/a2")
    await la2.join(a, a2)
    lb1 = await member(spaces, new, "bmod", transports, "listener B/shared")
    await lb1.join(b, shared)
    lb3 = await member(spaces, new, "bmem", transports, "listener B/b3")
    await lb3.join(b, b3)
    listeners = [la1, la2, lb1, lb3]
    assert la1.events("chat:join-session-success")[0]["workspaceId"] == a
    assert lb1.events("chat:join-session-success")[0]["workspaceId"] == b

    quiet = {c: c.mark() for c in listeners}

    # Attackers: each in a session of its own, then reaching for the others.
    bmod = await member(spaces, new, "bmod", transports, "bmod")
    await bmod.join(b, unique("own"))
    amem = await member(spaces, new, "amem", transports, "amem")
    await amem.join(a, unique("own"))
    bmem = await member(spaces, new, "bmem", transports, "bmem")
    await bmem.join(b, unique("own"))

    missing = unique("missing")
    joins = [
        (bmod, {"workspaceId": a, "sessionId": shared}, "not_a_member"),
        (bmod, {"workspaceId": a, "sessionId": a2}, "not_a_member"),
        (bmod, {"workspaceId": a, "sessionId": missing}, "not_a_member"),
        (amem, {"workspaceId": a, "sessionId": shared}, "forbidden"),
        (amem, {"workspaceId": a, "sessionId": a2}, "forbidden"),
        (amem, {"workspaceId": b, "sessionId": b3}, "not_a_member"),
        (amem, {"workspaceId": b, "sessionId": shared}, "not_a_member"),
        (bmem, {"workspaceId": b, "sessionId": shared}, "forbidden"),
        (bmem, {"workspaceId": a, "sessionId": shared}, "not_a_member"),
    ]
    not_a_member_bodies = []
    for client, payload, code in joins:
        since = client.mark()
        body = assert_error(await client.call("chat:join-session", payload), code, client, "chat:join-session", since)
        assert body["sessionId"] == payload["sessionId"]
        if client is bmod:
            not_a_member_bodies.append(body)
    # An existing session of a foreign workspace looks exactly like a missing one.
    assert not_a_member_bodies[0] == {**not_a_member_bodies[2], "sessionId": shared}
    assert session_pk(spaces.server, a, missing) is None

    # Acting on sessions the socket has not joined, however they are named.
    acts = [
        ("chat:send-message", lambda s, ws: {"message": {"id": unique("m"), "sessionId": s, "content": "x", **ws}}),
        ("chat:typing", lambda s, ws: {"sessionId": s, "isTyping": True, **ws}),
        ("chat:update-presence", lambda s, ws: {"sessionId": s, "status": "away", **ws}),
        ("chat:request-history", lambda s, ws: {"sessionId": s, **ws}),
        ("chat:leave-session", lambda s, ws: {"sessionId": s, **ws}),
        ("chat:add-reaction", lambda s, ws: {"sessionId": s, "messageId": unique("m"), "emoji": "👍", **ws}),
        ("chat:remove-reaction", lambda s, ws: {"sessionId": s, "messageId": unique("m"), "emoji": "👍", **ws}),
        ("chat:mark-read", lambda s, ws: {"sessionId": s, "seq": 1, **ws}),
    ]
    targets = [
        (bmod, shared, {}),
        (bmod, shared, {"workspaceId": a}),
        (bmod, a2, {}),
        (bmod, a2, {"workspaceId": a}),
        (amem, shared, {"workspaceId": a}),
        (amem, b3, {"workspaceId": b}),
        (bmem, shared, {"workspaceId": b}),
        (bmem, b3, {}),  # the listener's session, but this socket never joined it
    ]
    for client, session, ws in targets:
        for event, build in acts:
            since = client.mark()
            body = assert_error(await client.call(event, build(session, ws)), "not_joined", client, event, since)
            assert body["sessionId"] == session

    await assert_silent(listeners, quiet, within=0.3)
    for listener in listeners:
        assert listener.names() == ["connect", "chat:join-session-success"], listener.stream
    for attacker in (bmod, amem, bmem):
        assert "chat:history-response" not in attacker.names()
        assert "chat:message-received" not in attacker.names()
    assert stored_messages(spaces.server, a, shared) == stored_messages(spaces.server, b, shared) == []

    # Legitimate activity in each session reaches its own listener only.
    marks = {c: c.mark() for c in listeners}
    for workspace, session, actor_name, listener in [
        (a, shared, "amod", la1),
        (b, shared, "bmod", lb1),
        (b, b3, "bmem", lb3),
    ]:
        actor = await member(spaces, new, actor_name, transports, f"actor {workspace}/{session}")
        await actor.join(workspace, session)
        sent = await actor.send(session, f"hello {workspace}/{session}")
        ack = await actor.call("chat:add-reaction", {"sessionId": session, "messageId": sent["messageId"], "emoji": "👍"})
        assert ack["ok"] and ack["reactionsVersion"] == 1, ack
        await actor.call("chat:typing", {"sessionId": session, "isTyping": True})
        await actor.call("chat:update-presence", {"sessionId": session, "status": "idle"})
        await actor.call("chat:typing", {"sessionId": session, "isTyping": False})
        await actor.call("chat:leave-session", {"sessionId": session})
        await listener.wait_for("chat:user-left", lambda e, sid=actor.sid: e["socketId"] == sid, since=marks[listener])
    await assert_silent([], within=0.3)
    expected = [
        "chat:user-joined",
        "chat:message-received",
        "chat:reactions-updated",
        "chat:typing-indicator",
        "chat:presence-updated",
        "chat:typing-indicator",
        "chat:user-left",
    ]
    assert la1.names(marks[la1]) == expected
    assert lb1.names(marks[lb1]) == expected
    assert lb3.names(marks[lb3]) == expected
    assert la2.names(marks[la2]) == []
    own_session_only(la1, a, shared)
    own_session_only(la2, a, a2)
    own_session_only(lb1, b, shared)
    own_session_only(lb3, b, b3)
    assert [m["content"] for m in la1.events("chat:message-received")] == [f"hello {a}/{shared}"]
    assert [m["content"] for m in lb1.events("chat:message-received")] == [f"hello {b}/{shared}"]
    for attacker in (bmod, amem, bmem):
        assert set(attacker.names()) <= {"connect", "chat:join-session-success", "chat:join-session-error"} | {
            f"{event}-error" for event, _ in acts
        }, attacker.stream


async def test_the_same_session_id_in_two_workspaces_is_two_conversations(spaces, new, transports):
    a, b = spaces.a, spaces.b
    x = unique("x")
    la = await member(spaces, new, "amod", transports, "amod")
    lb = await member(spaces, new, "bmod", transports, "bmod")
    dual = await member(spaces, new, "dual", transports, "dual")
    await la.join(a, x)
    assert (await la.send(x, "a one"))["seq"] == 1
    assert (await la.send(x, "a two"))["seq"] == 2
    await lb.join(b, x)
    in_a = await dual.join(a, x)
    since = dual.mark()
    assert (await dual.call("chat:join-session", {"sessionId": x, "workspaceId": b}))["ok"] is True
    in_b = await dual.wait_for("chat:join-session-success", since=since)
    assert (in_a["workspaceId"], in_a["lastSeq"], in_a["workspaceRoomId"]) == (a, 2, f"chat:workspace:{a}")
    assert (in_b["workspaceId"], in_b["lastSeq"], in_b["workspaceRoomId"]) == (b, 0, f"chat:workspace:{b}")
    assert session_pk(spaces.server, a, x) != session_pk(spaces.server, b, x)
    await la.wait_for("chat:user-joined", lambda p: p["socketId"] == dual.sid)
    await lb.wait_for("chat:user-joined", lambda p: p["socketId"] == dual.sid)
    assert la.events("chat:user-joined")[-1]["workspaceId"] == a
    assert lb.events("chat:user-joined")[-1]["workspaceId"] == b

    # Joined in both: an event naming only the id is ambiguous.
    for event, payload in [
        ("chat:send-message", {"message": {"id": unique("m"), "sessionId": x, "content": "which?"}}),
        ("chat:typing", {"sessionId": x, "isTyping": True}),
        ("chat:request-history", {"sessionId": x}),
        ("chat:leave-session", {"sessionId": x}),
    ]:
        since = dual.mark()
        assert assert_error(await dual.call(event, payload), "invalid_payload", dual, event, since)["sessionId"] == x

    marks = {c: c.mark() for c in (la, lb, dual)}
    to_b = await dual.send(x, "to b", workspaceId=b)
    assert to_b["ok"] is True and to_b["seq"] == 1
    to_a = await dual.send(x, "to a", workspaceId=a)
    assert to_a["ok"] is True and to_a["seq"] == 3
    await lb.wait_for("chat:message-received", since=marks[lb])
    await la.wait_for("chat:message-received", since=marks[la])
    await dual.call("chat:typing", {"sessionId": x, "workspaceId": a, "isTyping": True})
    await la.wait_for("chat:typing-indicator", since=marks[la])
    await dual.call("chat:typing", {"sessionId": x, "workspaceId": a, "isTyping": False})
    await la.wait_for("chat:typing-indicator", lambda e: not e["isTyping"], since=marks[la])
    page_a = await dual.call("chat:request-history", {"sessionId": x, "workspaceId": a})
    history_a = await dual.wait_for("chat:history-response", since=marks[dual])
    page_b = await dual.call("chat:request-history", {"sessionId": x, "workspaceId": b})
    history_b = await dual.wait_for("chat:history-response", since=marks[dual], count=2)
    assert page_a["ok"] is True and page_b["ok"] is True
    assert [(m["content"], m["workspaceId"]) for m in history_a["messages"]] == [
        ("a one", a),
        ("a two", a),
        ("to a", a),
    ]
    assert [(m["content"], m["workspaceId"]) for m in history_b["messages"]] == [("to b", b)]

    # Leaving one leaves only that one; then the id is no longer ambiguous.
    assert (await dual.call("chat:leave-session", {"sessionId": x, "workspaceId": a}))["workspaceId"] == a
    await la.wait_for("chat:user-left", lambda e: e["socketId"] == dual.sid)
    again = await dual.send(x, "b again")
    assert again["ok"] is True and again["seq"] == 2
    await lb.wait_for("chat:message-received", lambda m: m["seq"] == 2)
    await la.send(x, "a after dual left")
    await lb.send(x, "b from lb")
    await dual.wait_for("chat:message-received", lambda m: m["content"] == "b from lb", since=marks[dual])

    await assert_silent([], within=0.3)
    assert [(m["content"], m["workspaceId"], m["seq"]) for m in la.events("chat:message-received", marks[la])] == [
        ("to a", a, 3)
    ]
    assert la.names(marks[la]) == [
        "chat:message-received",
        "chat:typing-indicator",
        "chat:typing-indicator",
        "chat:user-left",
        "chat:message-sent",
    ]
    assert [(m["content"], m["workspaceId"]) for m in lb.events("chat:message-received", marks[lb])] == [
        ("to b", b),
        ("b again", b),
    ]
    assert lb.names(marks[lb]) == ["chat:message-received", "chat:message-received", "chat:message-sent"]
    assert [(m["content"], m["workspaceId"]) for m in dual.events("chat:message-received", marks[dual])] == [
        ("b from lb", b)
    ]
    assert "chat:user-left" not in lb.names()
    assert [c for _, _, c in stored_messages(spaces.server, a, x)] == ["a one", "a two", "to a", "a after dual left"]
    assert [c for _, _, c in stored_messages(spaces.server, b, x)] == ["to b", "b again", "b from lb"]
