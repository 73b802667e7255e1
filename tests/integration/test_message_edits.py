"""Editing and deleting a message, with real clients on both backends (issue #22).

Every member of the session sees each edit and deletion live, with the
message's ``seq`` and new ``version``; a member of another workspace sees
nothing and is answered as for a message that does not exist; history,
REST and the broadcast agree; repeated and reordered events converge when
applied by version; hostile edits are refused with their own code and
store nothing.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.integration.chat_client import (
    MESSAGE_FIELDS,
    RELAXED_SECURITY,
    assert_error,
    client_pool,
    create_agent,
    db_execute,
    db_rows,
    issue_tokens,
    unique,
)
from tests.integration.test_api_live import Live

ROLES = {"alice": "member", "carol": "member", "mod": "moderator", "boss": "admin"}
VERSION_ROWS = (
    "SELECT v.version, v.content, v.reason FROM chat_messageversion v JOIN chat_chatmessage m ON m.id = v.message_id"
)


@pytest.fixture(scope="module")
def live(module_server_factory, module_backend) -> Live:
    server = module_server_factory(module_backend, conformance=False, CHAT_API_RATE_LIMIT="10000/m", **RELAXED_SECURITY)
    ws, suffix = unique("ws"), unique("u")
    users = {name: f"{name}-{suffix}" for name in ROLES}
    specs = [(users[name], ws, role) for name, role in ROLES.items()]
    other_ws = unique("ws")
    specs.append((f"eve-{suffix}", other_ws, "member"))
    tokens = issue_tokens(server, specs)
    create_agent(server, ws, "helper")  # the built-in echo backend
    result = Live(server, ws, {name: tokens[users[name]] for name in users}, users)
    result.tokens["eve"] = tokens[f"eve-{suffix}"]
    result.users["eve"] = f"eve-{suffix}"
    result.other_ws = other_ws  # type: ignore[attr-defined]
    return result


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def shared_session(live: Live, new) -> tuple[str, Any, Any, Any]:
    """A session of alice shared with carol, both joined; and eve joined to a session of the same id in her own
    workspace.  Returns (session, alice, carol, eve)."""
    session = unique("s")
    status, body = await live.api("alice", "POST", "sessions/", {"id": session})
    assert status == 201, body
    status, body = await live.api("alice", "POST", f"sessions/{session}/share/", {"username": live.users["carol"]})
    assert status == 200, body
    alice = await new("alice").connect(live.server.url, live.tokens["alice"], ["websocket"])
    carol = await new("carol").connect(live.server.url, live.tokens["carol"], ["polling"])
    eve = await new("eve").connect(live.server.url, live.tokens["eve"], ["websocket"])
    await alice.join(live.ws, session)
    await carol.join(live.ws, session)
    await eve.join(live.other_ws, session)  # type: ignore[attr-defined]
    return session, alice, carol, eve


def version_rows(live: Live, session: str, key: str) -> list[tuple]:
    return db_rows(
        live.server,
        f"{VERSION_ROWS} JOIN chat_chatsession s ON s.id = m.session_id JOIN chat_workspace w ON w.id = s.workspace_id "
        "WHERE w.slug = ? AND s.key = ? AND m.key = ? ORDER BY v.version",
        (live.ws, session, key),
    )


def stored(live: Live, session: str, key: str) -> tuple:
    [row] = db_rows(
        live.server,
        "SELECT m.content, m.version, m.deleted_at IS NOT NULL FROM chat_chatmessage m "
        "JOIN chat_chatsession s ON s.id = m.session_id JOIN chat_workspace w ON w.id = s.workspace_id "
        "WHERE w.slug = ? AND s.key = ? AND m.key = ?",
        (live.ws, session, key),
    )
    return (row[0], int(row[1]), bool(row[2]))


def rest_view(message: dict[str, Any]) -> dict[str, Any]:
    return {k: message[k] for k in MESSAGE_FIELDS}


async def test_edit_is_seen_live_by_every_member_and_agrees_with_history_and_rest(live, new):
    session, alice, carol, eve = await shared_session(live, new)
    sent = await alice.send(session, "See you at 5", message_id="m-1")
    assert sent["ok"] is True, sent
    await carol.wait_for("chat:message-received", lambda m: m["id"] == "m-1")

    ack = await alice.call(
        "chat:edit-message",
        {
            "sessionId": session,
            "messageId": "m-1",
            "version": 1,
            "content": "See you at **6**",
            "contentType": "markdown",
        },
    )
    assert ack == {"ok": True, "sessionId": session, "messageId": "m-1", "seq": 1, "version": 2, "duplicate": False}
    for client in (alice, carol):
        updated = await client.wait_for("chat:message-updated", lambda e: e["messageId"] == "m-1")
        assert (updated["seq"], updated["version"], updated["workspaceId"]) == (1, 2, live.ws)
        message = updated["message"]
        assert (message["content"], message["version"], message["deleted"]) == ("See you at **6**", 2, False)
        assert (
            message["html"].strip() == "<p>See you at <strong>6</strong></p>"
            and message["editedAt"] >= message["timestamp"]
        )

    history = await carol.call("chat:request-history", {"sessionId": session})
    assert history["messages"] == [updated["message"]]
    status, page = await live.api("carol", "GET", f"sessions/{session}/messages/")
    assert status == 200 and [rest_view(m) for m in page["results"]] == [updated["message"]]
    status, one = await live.api("carol", "GET", f"sessions/{session}/messages/m-1/")
    assert status == 200 and rest_view(one) == updated["message"]

    # The author and moderators list what the edit replaced; other members may not.
    for who in ("alice", "mod"):
        status, versions = await live.api(who, "GET", f"sessions/{session}/messages/m-1/versions/")
        assert status == 200, versions
        assert (versions["version"], versions["deleted"]) == (2, False)
        [old] = versions["results"]
        assert (old["version"], old["content"], old["reason"], old["changedBy"]) == (
            1,
            "See you at 5",
            "edit",
            live.users["alice"],
        )
    status, body = await live.api("carol", "GET", f"sessions/{session}/messages/m-1/versions/")
    assert (status, body["code"]) == (403, "not_author")
    await eve.assert_no_events(["chat:message-updated", "chat:message-received"], since=0, within=0.3)


async def test_delete_leaves_a_tombstone_for_members_and_the_content_for_moderators(live, new):
    session, alice, carol, eve = await shared_session(live, new)
    await alice.send(session, "my phone number is 555-0100", message_id="secret")
    await alice.send(session, "next", message_id="next")
    await carol.wait_for("chat:message-received", lambda m: m["id"] == "next")

    status, body = await live.api("alice", "DELETE", f"sessions/{session}/messages/secret/")
    assert status == 200, body
    assert (body["deleted"], body["content"], body["html"], body["version"], body["duplicate"]) == (
        True,
        "",
        None,
        2,
        False,
    )
    for client in (alice, carol):
        deleted = await client.wait_for("chat:message-deleted")
        assert {k: deleted[k] for k in ("sessionId", "workspaceId", "messageId", "seq", "version")} == {
            "sessionId": session,
            "workspaceId": live.ws,
            "messageId": "secret",
            "seq": 1,
            "version": 2,
        }
    history = await carol.call("chat:request-history", {"sessionId": session})
    tomb, after = history["messages"]
    assert (tomb["id"], tomb["deleted"], tomb["content"], tomb["metadata"], tomb["seq"]) == ("secret", True, "", {}, 1)
    assert after["id"] == "next" and after["deleted"] is False
    status, page = await live.api("mod", "GET", f"sessions/{session}/messages/")
    assert [rest_view(m) for m in page["results"]] == history["messages"]
    status, found = await live.api("carol", "GET", "messages/", q="555")
    assert status == 200 and found["results"] == []

    # Kept in the database, and shown to moderators as a version.
    assert stored(live, session, "secret") == ("my phone number is 555-0100", 2, True)
    status, versions = await live.api("mod", "GET", f"sessions/{session}/messages/secret/versions/")
    assert status == 200 and versions["deleted"] is True
    assert [(v["content"], v["reason"]) for v in versions["results"]] == [("my phone number is 555-0100", "delete")]

    # Deleting again changes nothing; the deleted message cannot be edited.
    again = await alice.call("chat:delete-message", {"sessionId": session, "messageId": "secret"})
    assert again["ok"] is True and (again["version"], again["duplicate"]) == (2, True)
    mark = alice.mark()
    edit = await alice.call(
        "chat:edit-message", {"sessionId": session, "messageId": "secret", "version": 2, "content": "x"}
    )
    assert_error(edit, "message_deleted", alice, "chat:edit-message", mark)
    assert len(version_rows(live, session, "secret")) == 1
    await eve.assert_no_events(["chat:message-deleted"], since=0, within=0.2)


async def test_moderator_deletes_any_message_and_members_only_their_own(live, new):
    session, alice, carol, _ = await shared_session(live, new)
    await alice.send(session, "hello", message_id="a-1")
    mark = carol.mark()
    ack = await carol.call("chat:delete-message", {"sessionId": session, "messageId": "a-1"})
    assert_error(ack, "not_author", carol, "chat:delete-message", mark)
    status, body = await live.api("carol", "DELETE", f"sessions/{session}/messages/a-1/")
    assert (status, body["code"]) == (403, "not_author")
    assert stored(live, session, "a-1") == ("hello", 1, False)

    status, body = await live.api("mod", "DELETE", f"sessions/{session}/messages/a-1/")
    assert status == 200 and body["deleted"] is True
    await carol.wait_for("chat:message-deleted", lambda e: e["messageId"] == "a-1")


async def test_repeated_edit_is_idempotent_and_a_stale_version_conflicts(live, new):
    session, alice, carol, _ = await shared_session(live, new)
    await alice.send(session, "v1", message_id="m")
    edit = {"sessionId": session, "messageId": "m", "version": 1, "content": "v2"}
    first = await alice.call("chat:edit-message", edit)
    repeat = await alice.call("chat:edit-message", edit)
    assert (first["version"], first["duplicate"]) == (2, False)
    assert (repeat["ok"], repeat["version"], repeat["duplicate"]) == (True, 2, True)
    assert version_rows(live, session, "m") == [(1, "v1", "edit")]

    mark = alice.mark()
    stale = await alice.call("chat:edit-message", {**edit, "content": "something else"})
    body = assert_error(stale, "version_conflict", alice, "chat:edit-message", mark)
    assert body["currentVersion"] == 2
    status, body = await live.api("alice", "PATCH", f"sessions/{session}/messages/m/", {"version": 1, "content": "v3"})
    assert (status, body["code"], body["currentVersion"]) == (409, "version_conflict", 2)
    status, body = await live.api("alice", "DELETE", f"sessions/{session}/messages/m/", version=1)
    assert (status, body["code"]) == (409, "version_conflict")
    assert stored(live, session, "m") == ("v2", 2, False)

    # REST edits from the current version; the same edit again is a duplicate.
    status, body = await live.api("alice", "PATCH", f"sessions/{session}/messages/m/", {"version": 2, "content": "v3"})
    assert status == 200 and (body["version"], body["content"], body["duplicate"]) == (3, "v3", False)
    status, body = await live.api("alice", "PATCH", f"sessions/{session}/messages/m/", {"version": 2, "content": "v3"})
    assert status == 200 and (body["version"], body["duplicate"]) == (3, True)
    assert [row[0] for row in version_rows(live, session, "m")] == [1, 2]
    updates = await carol.wait_for("chat:message-updated", lambda e: e["version"] == 3)
    assert updates["message"]["content"] == "v3"


async def test_reordered_events_converge_by_version(live, new):
    """Five changes in quick succession; carol's events, shuffled and applied by version, end where history is."""
    session, alice, carol, _ = await shared_session(live, new)
    await alice.send(session, "draft 0", message_id="m")
    for version in range(1, 5):
        ack = await alice.call(
            "chat:edit-message",
            {"sessionId": session, "messageId": "m", "version": version, "content": f"draft {version}"},
        )
        assert ack["version"] == version + 1, ack
    await alice.call("chat:delete-message", {"sessionId": session, "messageId": "m", "version": 5})
    await carol.wait_for("chat:message-deleted")
    await carol.wait_for("chat:message-updated", count=4)
    events = [("updated", e) for e in carol.events("chat:message-updated")]
    events += [("deleted", e) for e in carol.events("chat:message-deleted")]
    assert sorted(e["version"] for _, e in events) == [2, 3, 4, 5, 6]

    history = (await carol.call("chat:request-history", {"sessionId": session}))["messages"]
    for seed in range(20):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        shuffled += shuffled[:2]  # and some delivered twice
        state = {"m": dict(carol.events("chat:message-received")[0])}
        for kind, event in shuffled:
            current = state[event["messageId"]]
            if event["version"] <= current["version"]:
                continue  # late: the client already has something newer
            if kind == "updated":
                state[event["messageId"]] = event["message"]
            else:
                state[event["messageId"]] = {**current, "version": event["version"], "deleted": True, "content": ""}
        assert (state["m"]["version"], state["m"]["deleted"], state["m"]["content"]) == (
            history[0]["version"],
            history[0]["deleted"],
            history[0]["content"],
        ), seed


async def test_hostile_edits_are_refused_with_their_code_and_store_nothing(live, new):
    session, alice, carol, eve = await shared_session(live, new)
    await alice.send(session, "original", message_id="m")
    edit = {"sessionId": session, "messageId": "m", "version": 1, "content": "pwned"}

    # Another member's message.
    mark = carol.mark()
    assert_error(await carol.call("chat:edit-message", edit), "not_author", carol, "chat:edit-message", mark)
    status, body = await live.api("carol", "PATCH", f"sessions/{session}/messages/m/", {"version": 1, "content": "x"})
    assert (status, body["code"]) == (403, "not_author")

    # A message of another workspace: eve's own session has the same id; the answer is that of a missing id.
    mark = eve.mark()
    theirs = assert_error(
        await eve.call("chat:edit-message", edit), "message_not_found", eve, "chat:edit-message", mark
    )
    mark = eve.mark()
    missing = assert_error(
        await eve.call("chat:edit-message", {**edit, "messageId": "no-such"}),
        "message_not_found",
        eve,
        "chat:edit-message",
        mark,
    )
    assert {k: v for k, v in theirs.items() if k != "messageId"} == {
        k: v for k, v in missing.items() if k != "messageId"
    }
    assert_error(
        await eve.call("chat:delete-message", {"sessionId": session, "messageId": "m"}),
        "message_not_found",
        eve,
        "chat:delete-message",
        mark,
    )
    headers_path = f"/api/v1/workspaces/{live.ws}/sessions/{session}/messages/m/"
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for method in ("PATCH", "DELETE"):
            async with http.request(
                method,
                live.server.url + headers_path,
                json={"version": 1, "content": "x"},
                headers={"Authorization": f"Bearer {live.tokens['eve']}"},
            ) as response:
                assert (response.status, (await response.json())["code"]) == (404, "not_a_member")

    # A huge edit.
    mark = alice.mark()
    huge = await alice.call("chat:edit-message", {**edit, "content": "x" * 10_001})
    assert assert_error(huge, "message_too_long", alice, "chat:edit-message", mark)["maxLength"] == 10_000
    mark = alice.mark()
    bad = await alice.call("chat:edit-message", {**edit, "version": "1"})
    assert_error(bad, "invalid_payload", alice, "chat:edit-message", mark)

    # After the window: the message was sent long ago.
    db_execute(
        live.server,
        "UPDATE chat_chatmessage SET created_at = ? WHERE key = ? AND session_id IN "
        "(SELECT s.id FROM chat_chatsession s JOIN chat_workspace w ON w.id = s.workspace_id WHERE w.slug = ? AND s.key = ?)",
        ("2020-01-01 00:00:00+00:00", "m", live.ws, session),
    )
    mark = alice.mark()
    late = assert_error(
        await alice.call("chat:edit-message", edit), "edit_window_closed", alice, "chat:edit-message", mark
    )
    assert late["editWindowSeconds"] == 900
    status, body = await live.api("alice", "DELETE", f"sessions/{session}/messages/m/")
    assert (status, body["code"]) == (403, "edit_window_closed")

    assert stored(live, session, "m") == ("original", 1, False)
    assert version_rows(live, session, "m") == []
    for client in (alice, carol, eve):
        assert client.events("chat:message-updated") == [] and client.events("chat:message-deleted") == []


async def test_a_workspace_without_edits(live, new):
    status, body = await live.api("boss", "PATCH", "", {"editWindowSeconds": 0})
    assert status == 200 and body["editWindowSeconds"] == 0, body
    try:
        session, alice, _, _ = await shared_session(live, new)
        await alice.send(session, "final", message_id="m")
        mark = alice.mark()
        ack = await alice.call(
            "chat:edit-message", {"sessionId": session, "messageId": "m", "version": 1, "content": "x"}
        )
        assert_error(ack, "edit_window_closed", alice, "chat:edit-message", mark)
        status, body = await live.api("mod", "DELETE", f"sessions/{session}/messages/m/")
        assert status == 200 and body["deleted"] is True  # moderators still can
        status, body = await live.api("alice", "PATCH", "", {"editWindowSeconds": 60})
        assert (status, body["code"]) == (403, "forbidden")
    finally:
        status, body = await live.api("boss", "PATCH", "", {"editWindowSeconds": 900})
        assert status == 200, body


async def test_an_edit_does_not_ask_the_agent_again(live, new):
    session = unique("s")
    status, body = await live.api("alice", "POST", "sessions/", {"id": session, "agentId": "helper"})
    assert status == 201, body
    alice = await new("alice").connect(live.server.url, live.tokens["alice"], ["websocket"])
    await alice.join(live.ws, session)
    await alice.send(session, "ping", message_id="ask")
    reply = await alice.wait_for("chat:message-received", lambda m: m["senderType"] == "agent", timeout=15)
    mark = alice.mark()
    ack = await alice.call(
        "chat:edit-message", {"sessionId": session, "messageId": "ask", "version": 1, "content": "pong"}
    )
    assert ack["ok"] is True, ack
    await alice.wait_for("chat:message-updated", since=mark)
    await alice.assert_no_events(["chat:agent-stream-chunk", "chat:message-received"], within=1.5, since=mark)
    history = (await alice.call("chat:request-history", {"sessionId": session}))["messages"]
    assert [(m["id"], m["content"]) for m in history] == [("ask", "pong"), (reply["id"], reply["content"])]


async def test_hidden_closed_and_muted(live, new):
    """A hidden message does not exist for its author; unhiding a deleted one brings back its tombstone;
    a closed session or a mute stops edits."""
    session, alice, carol, _ = await shared_session(live, new)
    await alice.send(session, "hide me", message_id="h")
    await alice.send(session, "mute me", message_id="m")
    status, _ = await live.api("mod", "POST", f"sessions/{session}/messages/h/hide/")
    assert status == 200
    mark = alice.mark()
    ack = await alice.call("chat:edit-message", {"sessionId": session, "messageId": "h", "version": 1, "content": "x"})
    assert_error(ack, "message_not_found", alice, "chat:edit-message", mark)
    status, body = await live.api("mod", "DELETE", f"sessions/{session}/messages/h/")
    assert status == 200 and body["deleted"] is True and body["hidden"] is True
    await carol.assert_no_events(["chat:message-deleted"], within=0.3, since=0)  # members never had it
    status, _ = await live.api("mod", "POST", f"sessions/{session}/messages/h/unhide/")
    unhidden = await carol.wait_for("chat:message-unhidden")
    assert (unhidden["message"]["deleted"], unhidden["message"]["content"], unhidden["message"]["version"]) == (
        True,
        "",
        2,
    )

    status, _ = await live.api("mod", "POST", f"members/{live.users['alice']}/mute/", {"durationSeconds": 60})
    assert status == 200
    try:
        mark = alice.mark()
        ack = await alice.call(
            "chat:edit-message", {"sessionId": session, "messageId": "m", "version": 1, "content": "x"}
        )
        assert_error(ack, "muted", alice, "chat:edit-message", mark)
    finally:
        status, _ = await live.api("mod", "POST", f"members/{live.users['alice']}/unmute/")
        assert status == 200
    status, _ = await live.api("mod", "POST", f"sessions/{session}/close/")
    assert status == 200
    mark = alice.mark()
    ack = await alice.call("chat:edit-message", {"sessionId": session, "messageId": "m", "version": 1, "content": "x"})
    assert_error(ack, "session_closed", alice, "chat:edit-message", mark)
    assert stored(live, session, "m") == ("mute me", 1, False)


async def test_an_edit_keeps_the_files_and_a_tombstone_shows_none(live, new):
    import aiohttp

    from tests.integration import attachment_files as files

    session, alice, carol, _ = await shared_session(live, new)
    form = aiohttp.FormData()
    form.add_field("file", files.png(5, 4), filename="photo.png", content_type="image/png")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{live.server.url}/api/v1/workspaces/{live.ws}/sessions/{session}/attachments/",
            data=form,
            headers={"Authorization": f"Bearer {live.tokens['alice']}"},
        ) as response:
            assert response.status == 201, await response.text()
            uploaded = await response.json()
    ack = await alice.send(session, "the photo", message_id="p", attachments=[uploaded["id"]])
    assert ack["ok"] is True, ack
    edit = {"sessionId": session, "messageId": "p", "version": 1, "content": "the photo, cropped"}
    assert (await alice.call("chat:edit-message", edit))["version"] == 2
    updated = await carol.wait_for("chat:message-updated")
    assert [a["id"] for a in updated["message"]["attachments"]] == [uploaded["id"]]
    status, body = await live.api("alice", "DELETE", f"sessions/{session}/messages/p/")
    assert status == 200 and body["attachments"] == [] and body["deleted"] is True
    history = (await carol.call("chat:request-history", {"sessionId": session}))["messages"]
    assert (history[0]["deleted"], history[0]["attachments"]) == (True, [])
