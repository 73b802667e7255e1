"""Issue #17: access changes reach live sockets at once, across workers.

A joined socket used to keep the membership and moderator flag it read
when it joined: after an unshare, a removal or a demotion it still
received, read history (hidden messages included for an ex-moderator) and
sent; a ban relied on a best-effort disconnect.  Now every change of
access sends the user's sockets a notice on every worker
(``chat.actions.access``), on which each re-reads its access and leaves
(``chat:session-left``, code ``access_revoked``), is disconnected (a ban)
or follows its new role (``chat.events.access``); and a lost notice is
caught before the socket's next event.

On the services backend the sockets are on one worker and every REST call
goes to another, sharing PostgreSQL and Redis: the change crosses workers.
Embedded, one process serves both.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.conftest import ServerProcess
from tests.integration.chat_client import assert_error, client_pool, db_execute, issue_tokens, unique

API = "/api/v1"

#: One user per finding where the change cannot be undone within the test.
ROLES = {
    "alice": "member",
    "carol": "member",
    "rem": "member",
    "dave": "moderator",
    "lost": "member",
    "bob": "member",
    "mia": "member",
    "mod": "moderator",
    "boss": "admin",
}


@dataclass
class World:
    #: Where the REST calls go.
    api_server: ServerProcess
    #: Where the sockets connect: another worker on the services backend.
    socket_server: ServerProcess
    ws: str
    tokens: dict[str, str]
    users: dict[str, str]

    async def api(self, who: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        url = f"{self.api_server.url}{API}/workspaces/{self.ws}/{path}"
        async with aiohttp.ClientSession() as http:
            async with http.request(method, url, json=body, headers=headers) as response:
                return response.status, (await response.json() if response.status != 204 else None)

    async def session_with(self, owner: str, *sharees: str) -> str:
        key = unique("s")
        status, body = await self.api(owner, "POST", "sessions/", {"id": key})
        assert status == 201, body
        for name in sharees:
            status, body = await self.api(owner, "POST", f"sessions/{key}/share/", {"username": self.users[name]})
            assert status == 200, body
        return key

    async def joined(self, new, who: str, *sessions: str):
        client = await new(who).connect(self.socket_server.url, self.tokens[who], ["websocket"])
        for session in sessions:
            await client.join(self.ws, session)
        return client


@pytest.fixture(scope="module")
def world(module_server_factory, module_backend) -> World:
    env = {"CHAT_API_RATE_LIMIT": "10000/m"}
    api_server = module_server_factory(module_backend, conformance=False, **env)
    # Embedded servers each have their own SQLite file: one process serves both there.
    socket_server = (
        module_server_factory(module_backend, conformance=False, **env)
        if module_backend.name == "services"
        else api_server
    )
    ws, suffix = unique("ws"), unique("u")
    users = {name: f"{name}-{suffix}" for name in ROLES}
    tokens = issue_tokens(api_server, [(users[name], ws, role) for name, role in ROLES.items()])
    return World(api_server, socket_server, ws, {name: tokens[users[name]] for name in users}, users)


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


def left_for_access(left: dict[str, Any], world: World, session: str) -> bool:
    return left["sessionId"] == session and left["workspaceId"] == world.ws and left["code"] == "access_revoked"


async def test_unshare_reaches_live_socket(world, new):
    session = await world.session_with("alice", "carol")
    carol = await world.joined(new, "carol", session)
    alice = await world.joined(new, "alice", session)

    status, body = await world.api("alice", "DELETE", f"sessions/{session}/share/{world.users['carol']}/")
    assert status == 200, body
    left = await carol.wait_for("chat:session-left")
    assert left_for_access(left, world, session), left
    gone = await alice.wait_for("chat:user-left", lambda d: d["socketId"] == carol.sid)
    assert gone["userId"] == world.users["carol"]

    mark = carol.mark()
    assert (await alice.send(session, "after the unshare"))["ok"] is True
    await carol.assert_no_events(["chat:message-received"], within=0.5, since=mark)
    assert_error(await carol.send(session, "still here?"), "not_joined", carol, "chat:send-message", mark)
    assert_error(
        await carol.call("chat:request-history", {"sessionId": session}),
        "not_joined",
        carol,
        "chat:request-history",
        mark,
    )
    again = await carol.call("chat:join-session", {"sessionId": session, "workspaceId": world.ws})
    assert again["ok"] is False and again["code"] == "forbidden", again
    assert carol.connected


async def test_removed_member_stops_receiving(world, new):
    session = await world.session_with("alice", "rem")
    own = await world.session_with("rem")
    rem = await world.joined(new, "rem", session, own)
    alice = await world.joined(new, "alice", session)

    status, body = await world.api("mod", "DELETE", f"members/{world.users['rem']}/")
    assert status == 204, body
    left = [await rem.wait_for("chat:session-left", lambda d, s=s: d["sessionId"] == s) for s in (session, own)]
    assert all(left_for_access(event, world, event["sessionId"]) for event in left), left

    mark = rem.mark()
    assert (await alice.send(session, "after the removal"))["ok"] is True
    await rem.assert_no_events(["chat:message-received"], within=0.5, since=mark)
    assert_error(await rem.send(own, "my own session"), "not_joined", rem, "chat:send-message", mark)
    again = await rem.call("chat:join-session", {"sessionId": own, "workspaceId": world.ws})
    assert again["ok"] is False and again["code"] == "not_a_member", again


async def test_demoted_moderator_loses_hidden_history(world, new):
    shared = await world.session_with("alice", "dave")  # dave may stay in it as a member
    moderated = await world.session_with("alice")  # dave is in it only as a moderator
    alice = await world.joined(new, "alice", shared)
    dave = await world.joined(new, "dave", shared, moderated)
    ack = await alice.send(shared, "something regrettable", message_id="bad-1")
    assert ack["ok"] is True, ack
    status, body = await world.api("mod", "POST", f"sessions/{shared}/messages/bad-1/hide/")
    assert status == 200, body
    await dave.wait_for("chat:message-hidden")
    page = await dave.call("chat:request-history", {"sessionId": shared})
    assert [m["id"] for m in page["messages"]] == ["bad-1"], page  # a moderator reads hidden messages

    status, body = await world.api("boss", "PATCH", f"members/{world.users['dave']}/", {"role": "member"})
    assert status == 200 and body["role"] == "member", body
    left = await dave.wait_for("chat:session-left")
    assert left_for_access(left, world, moderated), left

    page = await dave.call("chat:request-history", {"sessionId": shared})
    assert page["ok"] is True and page["messages"] == [], page
    mark = dave.mark()
    assert_error(
        await dave.call("chat:request-history", {"sessionId": moderated}),
        "not_joined",
        dave,
        "chat:request-history",
        mark,
    )
    assert [e["sessionId"] for e in dave.events("chat:session-left")] == [moderated]


async def test_ban_disconnects_at_once(world, new):
    session = await world.session_with("alice", "bob")
    bob = await world.joined(new, "bob", session)
    bob_elsewhere = await world.joined(new, "bob", session)
    alice = await world.joined(new, "alice", session)

    status, body = await world.api("mod", "POST", "bans/", {"username": world.users["bob"], "reason": "spam"})
    assert status == 201, body
    for socket in (bob, bob_elsewhere):
        banned = await socket.wait_for("chat:banned")
        assert banned["workspaceId"] == world.ws
        await socket.wait_for("disconnect")
        assert not socket.connected
    gone = {
        (await alice.wait_for("chat:user-left", lambda d, s=s: d["socketId"] == s.sid))["socketId"]
        for s in (bob, bob_elsewhere)
    }
    assert gone == {bob.sid, bob_elsewhere.sid}

    again = await world.joined(new, "bob")
    ack = await again.call("chat:join-session", {"sessionId": session, "workspaceId": world.ws})
    assert ack["ok"] is False and ack["code"] == "banned", ack


async def test_mute_refuses_next_send(world, new):
    session = await world.session_with("alice", "mia")
    mia = await world.joined(new, "mia", session)
    alice = await world.joined(new, "alice", session)
    assert (await mia.send(session, "before the mute"))["ok"] is True
    await alice.wait_for("chat:message-received")

    status, body = await world.api("mod", "POST", f"members/{world.users['mia']}/mute/", {"durationSeconds": 600})
    assert status == 200 and body["mutedUntil"] is not None, body
    mark, alice_mark = mia.mark(), alice.mark()
    refused = assert_error(await mia.send(session, "after the mute"), "muted", mia, "chat:send-message", mark)
    assert refused["mutedUntil"] > 0, refused
    await alice.assert_no_events(["chat:message-received"], within=0.5, since=alice_mark)
    assert mia.connected  # a mute only silences: mia still reads
    assert (await alice.send(session, "you can still read"))["ok"] is True
    await mia.wait_for("chat:message-received", lambda m: m["content"] == "you can still read", since=mark)


#: Stops sharing a session with everyone, behind the server's back: no notice is sent.
UNSHARE_WITHOUT_NOTICE = (
    "DELETE FROM chat_chatsession_shared_with WHERE chatsession_id IN"
    " (SELECT s.id FROM chat_chatsession s JOIN chat_workspace w ON w.id = s.workspace_id"
    "  WHERE w.slug = ? AND s.key = ?)"
)


async def test_lost_access_notice_cannot_keep_access(world, new):
    """The sharing row goes without a notice (as if the broker lost it): the next history request still sees it."""
    session = await world.session_with("alice", "lost")
    lost = await world.joined(new, "lost", session)
    db_execute(world.api_server, UNSHARE_WITHOUT_NOTICE, (world.ws, session))
    mark = lost.mark()
    assert lost.events("chat:session-left") == []
    ack = await lost.call("chat:request-history", {"sessionId": session})
    assert_error(ack, "access_revoked", lost, "chat:request-history", mark)
    left = await lost.wait_for("chat:session-left", since=mark)
    assert left_for_access(left, world, session), left


def one_server_world(server: ServerProcess, *names: str) -> World:
    """A fresh workspace on ``server`` alone, its ``names`` members."""
    ws, suffix = unique("ws"), unique("u")
    users = {name: f"{name}-{suffix}" for name in names}
    tokens = issue_tokens(server, [(users[name], ws, "member") for name in users])
    return World(server, server, ws, {name: tokens[users[name]] for name in users}, users)


async def test_lost_access_notice_cannot_keep_a_silent_socket_receiving(backend, server_factory, new):
    """A socket that sends nothing is found by its worker's sweep (every third of ``CHAT_PRESENCE_TTL_S``)."""
    server = server_factory(backend, conformance=False, CHAT_PRESENCE_TTL_S="3", CHAT_API_RATE_LIMIT="10000/m")
    world = one_server_world(server, "alice", "quiet")
    ws = world.ws
    session = await world.session_with("alice", "quiet")
    quiet = await world.joined(new, "quiet", session)

    db_execute(server, UNSHARE_WITHOUT_NOTICE, (ws, session))
    left = await quiet.wait_for("chat:session-left", timeout=10)
    assert left_for_access(left, world, session), left
    assert quiet.connected


async def test_a_socket_in_use_re_reads_its_access_ahead_of_time(backend, server_factory, new):
    """Events past half of ``CHAT_ACCESS_RECHECK_S`` start the re-read in the background: a socket that keeps
    sending loses a session whose notice was lost within the recheck time, and its sends are answered throughout."""
    server = server_factory(
        backend, conformance=False, CHAT_ACCESS_RECHECK_S="2", CHAT_PRESENCE_TTL_S="600", CHAT_API_RATE_LIMIT="10000/m"
    )
    world = one_server_world(server, "alice", "busy")
    ws = world.ws
    session = await world.session_with("alice", "busy")
    busy = await world.joined(new, "busy", session)
    db_execute(server, UNSHARE_WITHOUT_NOTICE, (ws, session))  # the housekeeping sweep is 200 s away
    mark = busy.mark()
    answers = []
    for n in range(40):
        answers.append(await busy.call("chat:typing", {"sessionId": session, "isTyping": n % 2 == 0}))
        if busy.events("chat:session-left", since=mark):
            break
        await asyncio.sleep(0.1)
    left = busy.events("chat:session-left", since=mark)
    assert left and left_for_access(left[0], world, session), answers
    assert all(isinstance(answer, dict) for answer in answers), answers  # every event was answered
