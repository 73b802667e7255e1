"""Live effects of the REST API on real sockets, against real daphne servers (embedded and services).

A moderator's or integrator's REST call must reach the sockets at once,
through the emitter: ``chat:message-received`` for an integrator's message,
``chat:message-hidden``, ``chat:session-closed``, and the banned user's
disconnect.  On the services backend the search is PostgreSQL's full-text
search; embedded, the plain fallback.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.conftest import POSTGRES_URL, ServerProcess
from tests.integration.chat_client import MESSAGE_FIELDS, client_pool, create_agent, issue_tokens, unique

API = "/api/v1"


@dataclass
class Live:
    server: ServerProcess
    ws: str
    tokens: dict[str, str]
    users: dict[str, str]

    async def api(self, who: str, method: str, path: str, body: Any = None, **params: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        url = f"{self.server.url}{API}/workspaces/{self.ws}/{path}"
        async with aiohttp.ClientSession() as http:
            async with http.request(method, url, json=body, params=params or None, headers=headers) as response:
                return response.status, (await response.json() if response.status != 204 else None)


ROLES = {"alice": "member", "carol": "member", "integ": "member", "mod": "moderator", "bob": "member", "muted": "member"}


@pytest.fixture(scope="module")
def live(module_server_factory, module_backend) -> Live:
    # The rate limit is per user; these tests are not about it.
    server = module_server_factory(module_backend, conformance=False, CHAT_API_RATE_LIMIT="10000/m")
    ws, suffix = unique("ws"), unique("u")
    users = {name: f"{name}-{suffix}" for name in ROLES}
    tokens = issue_tokens(server, [(users[name], ws, role) for name, role in ROLES.items()])
    create_agent(server, ws, "helper")  # the built-in echo backend
    return Live(server, ws, {name: tokens[users[name]] for name in users}, users)


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def session_with(live: Live, owner: str, *sharees: str) -> str:
    key = unique("s")
    status, body = await live.api(owner, "POST", "sessions/", {"id": key, "title": "live"})
    assert status == 201, body
    for name in sharees:
        status, body = await live.api(owner, "POST", f"sessions/{key}/share/", {"username": live.users[name]})
        assert status == 200, body
    return key


async def joined(live: Live, new, who: str, session: str, transports=("websocket",)):
    client = await new(who).connect(live.server.url, live.tokens[who], list(transports))
    await client.join(live.ws, session)
    return client


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]], ids=["websocket", "polling"])
async def test_integrator_message_is_broadcast_once_and_idempotent(live, new, transports):
    session = await session_with(live, "integ", "alice")
    alice = await joined(live, new, "alice", session, transports)
    payload = {"id": unique("crm"), "content": "Your refund was issued.", "metadata": {"order": 7781}}
    status, posted = await live.api("integ", "POST", f"sessions/{session}/messages/", payload)
    assert status == 201, posted
    received = await alice.wait_for("chat:message-received")
    assert set(received) == MESSAGE_FIELDS
    assert received == {k: posted[k] for k in MESSAGE_FIELDS}
    assert (received["seq"], received["userId"], received["metadata"]) == (1, live.users["integ"], {"order": 7781})

    mark = alice.mark()
    status, again = await live.api("integ", "POST", f"sessions/{session}/messages/", payload)
    assert status == 200 and again["duplicate"] is True and again["seq"] == 1
    await alice.assert_no_events(["chat:message-received"], within=0.5, since=mark)


async def test_integrator_message_is_answered_by_the_sessions_agent(live, new):
    key = unique("s")
    status, body = await live.api("integ", "POST", "sessions/", {"id": key, "agentId": "helper"})
    assert status == 201, body
    await live.api("integ", "POST", f"sessions/{key}/share/", {"username": live.users["alice"]})
    alice = await joined(live, new, "alice", key)
    status, posted = await live.api("integ", "POST", f"sessions/{key}/messages/", {"id": "ask-1", "content": "ping"})
    assert status == 201, posted
    last = await alice.wait_for("chat:agent-stream-chunk", lambda c: c.get("isComplete") is True, timeout=15)
    assert last["inReplyTo"] == "ask-1" and "error" not in last, last
    reply = await alice.wait_for("chat:message-received", lambda m: m["senderType"] == "agent", timeout=5)
    assert reply["id"] == last["messageId"] and reply["seq"] == 2


async def test_hidden_message_reaches_sockets_and_leaves_history(live, new):
    session = await session_with(live, "alice", "carol")
    alice = await joined(live, new, "alice", session)
    carol = await joined(live, new, "carol", session)
    ack = await alice.send(session, "something regrettable", message_id="bad-1")
    assert ack["ok"] is True, ack
    await carol.wait_for("chat:message-received")

    status, body = await live.api("mod", "POST", f"sessions/{session}/messages/bad-1/hide/")
    assert status == 200 and body["hidden"] is True, body
    for client in (alice, carol):
        hidden = await client.wait_for("chat:message-hidden")
        assert hidden == {"sessionId": session, "messageId": "bad-1", "workspaceId": live.ws}

    history = await carol.call("chat:request-history", {"sessionId": session})
    assert history["ok"] is True and history["messages"] == []
    status, page = await live.api("carol", "GET", f"sessions/{session}/messages/")
    assert status == 200 and page["results"] == [] and page["lastSeq"] == 1
    status, page = await live.api("mod", "GET", f"sessions/{session}/messages/")
    assert [(m["id"], m["hidden"]) for m in page["results"]] == [("bad-1", True)]

    status, _ = await live.api("mod", "POST", f"sessions/{session}/messages/bad-1/unhide/")
    unhidden = await carol.wait_for("chat:message-unhidden")
    assert unhidden["message"]["content"] == "something regrettable"


async def test_closed_session_is_announced_and_refuses_sends(live, new):
    session = await session_with(live, "alice")
    alice = await joined(live, new, "alice", session, ("polling",))
    status, body = await live.api("mod", "POST", f"sessions/{session}/close/")
    assert status == 200 and body["status"] == "closed", body
    closed = await alice.wait_for("chat:session-closed")
    assert (closed["sessionId"], closed["workspaceId"], closed["closedBy"]) == (session, live.ws, live.users["mod"])
    ack = await alice.send(session, "anyone there?")
    assert ack["ok"] is False and ack["code"] == "session_closed", ack
    status, body = await live.api("alice", "POST", f"sessions/{session}/messages/", {"id": "late", "content": "x"})
    assert status == 409 and body["code"] == "session_closed"


async def test_banned_user_is_disconnected_at_once_and_cannot_rejoin(live, new):
    session = await session_with(live, "bob", "alice")
    bob = await joined(live, new, "bob", session)
    alice = await joined(live, new, "alice", session)
    status, body = await live.api("mod", "POST", "bans/", {"username": live.users["bob"], "reason": "spam"})
    assert status == 201, body
    banned = await bob.wait_for("chat:banned")
    assert banned["workspaceId"] == live.ws
    await bob.wait_for("disconnect", timeout=5)
    assert not bob.connected
    left = await alice.wait_for("chat:user-left")
    assert left["userId"] == live.users["bob"]

    again = await new("bob again").connect(live.server.url, live.tokens["bob"], ["websocket"])
    ack = await again.call("chat:join-session", {"sessionId": session, "workspaceId": live.ws})
    assert ack["ok"] is False and ack["code"] in ("not_a_member", "banned"), ack
    status, body = await live.api("bob", "GET", f"sessions/{session}/")
    assert status == 404 and body["code"] == "not_a_member"


async def test_presence_is_live_from_the_presence_store(live, new):
    session = await session_with(live, "alice")
    alice = await joined(live, new, "alice", session)
    status, rows = await live.api("alice", "GET", f"sessions/{session}/presence/")
    assert status == 200 and [(p["userId"], p["socketId"]) for p in rows] == [(live.users["alice"], alice.sid)]
    status, online = await live.api("mod", "GET", "presence/")
    assert live.users["alice"] in [u["userId"] for u in online]
    await alice.disconnect()
    for _ in range(50):  # the server handles the disconnect on its own time
        status, rows = await live.api("alice", "GET", f"sessions/{session}/presence/")
        if rows == []:
            break
        await asyncio.sleep(0.1)
    assert rows == []


async def test_search(live, module_backend):
    session = await session_with(live, "carol")
    marker = unique("zebra").replace("-", "")
    for i, content in enumerate([f"The quick brown {marker} jumps", f"A lazy {marker} sleeps", "unrelated"]):
        status, body = await live.api("carol", "POST", f"sessions/{session}/messages/", {"id": f"m{i}", "content": content})
        assert status == 201, body
    status, found = await live.api("carol", "GET", "messages/", q=f"{marker} -lazy")
    assert status == 200 and [m["id"] for m in found["results"]] == ["m0"], found
    status, found = await live.api("carol", "GET", "messages/", q=marker.upper())
    assert [m["id"] for m in found["results"]] == ["m1", "m0"]
    if module_backend.name == "services":  # PostgreSQL's websearch syntax
        status, found = await live.api("carol", "GET", "messages/", q=f'"lazy {marker}" or "quick {marker}"')
        assert [m["id"] for m in found["results"]] == ["m1"]  # in m0, "brown" stands between quick and the marker
        status, found = await live.api("carol", "GET", "messages/", q=f'"brown {marker}" or "lazy {marker}"')
        assert [m["id"] for m in found["results"]] == ["m1", "m0"]


async def test_muted_user_cannot_send_anywhere(live, new):
    session = await session_with(live, "muted")
    status, body = await live.api("mod", "POST", f"members/{live.users['muted']}/mute/", {"durationSeconds": 60})
    assert status == 200 and body["mutedUntil"], body
    status, body = await live.api("muted", "POST", f"sessions/{session}/messages/", {"id": "m", "content": "hi"})
    assert status == 403 and body["code"] == "muted"
    client = await joined(live, new, "muted", session)
    ack = await client.send(session, "still here")
    assert ack["ok"] is False and ack["code"] == "muted", ack


async def test_a_body_over_the_limit_is_refused_unread_and_the_schema_says_so(live):
    """413 over CHAT_API_BODY_MAX_BYTES (256 KiB, refused before Django reads it), nothing stored; 415 for a body
    that is not JSON."""
    session = await session_with(live, "integ")
    url = f"{live.server.url}{API}/workspaces/{live.ws}/sessions/{session}/messages/"
    headers = {"Authorization": f"Bearer {live.tokens['integ']}"}
    huge = {"id": unique("big"), "content": "x" * (3 * 1024 * 1024)}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=huge, headers=headers) as response:
            assert response.status == 413
            body = await response.json()
        async with http.post(url, data="not json", headers={**headers, "Content-Type": "text/plain"}) as response:
            assert (response.status, (await response.json())["code"]) == (415, "unsupported_media_type")
        async with http.get(f"{live.server.url}/api/schema/", params={"format": "json"}) as response:
            schema = await response.json(content_type=None)
    assert (body["code"], body["maxBytes"]) == ("payload_too_large", 262144), body
    status, history = await live.api("integ", "GET", f"sessions/{session}/messages/")
    assert status == 200 and (history["results"], history["lastSeq"]) == ([], 0), "nothing was stored"
    documented = schema["paths"]["/api/v1/workspaces/{workspace}/sessions/{session}/messages/"]["post"]["responses"]
    assert {"400", "401", "403", "406", "413", "415", "429"} <= set(documented)


@pytest.mark.services
async def test_rest_requests_leave_no_database_connection_behind(server_factory, services_backend):
    """Each request's thread is new under ASGI: its connection is closed with it, not kept for CONN_MAX_AGE.

    (Left to the thread's end, a connection waits for the garbage collector,
    which the server runs seldom: before the fix 150 requests left 11-13
    connections open, and a schemathesis run of about 1,000 requests held
    up to 80 of PostgreSQL's 100.)
    """
    import psycopg

    REQUESTS = 150
    # Django's ASGI handler does this under any server; production's is measured.
    server = server_factory(services_backend, conformance=False, server="uvicorn", CHAT_API_RATE_LIMIT="10000/m")
    ws, user = unique("ws"), unique("u")
    token = issue_tokens(server, [(user, ws, "admin")])[user]
    database = server.env["DATABASE_URL"].rsplit("/", 1)[1]

    def connections() -> int:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
            return admin.execute(query, (database,)).fetchone()[0]

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{server.url}{API}/workspaces/{ws}/") as response:
            assert response.status == 200
        before = connections()
        for _ in range(REQUESTS):
            async with http.get(f"{server.url}{API}/workspaces/{ws}/sessions/") as response:
                assert response.status == 200
    assert connections() <= before + 2, f"{before} connections before {REQUESTS} requests, {connections()} after"


async def test_reactions_and_read_pointers_over_rest_reach_live_sockets(live, new):
    session = await session_with(live, "alice", "carol")
    alice = await joined(live, new, "alice", session)
    status, posted = await live.api("alice", "POST", f"sessions/{session}/messages/", {"id": "r-1", "content": "hi"})
    assert status == 201, posted
    status, body = await live.api("carol", "PUT", f"sessions/{session}/messages/r-1/reactions/%F0%9F%8E%89/")
    assert status == 200 and body["reactionsVersion"] == 1, body
    update = await alice.wait_for("chat:reactions-updated")
    assert (update["messageId"], update["reactions"], update["reactionsVersion"]) == ("r-1", body["reactions"], 1)
    status, body = await live.api("carol", "POST", f"sessions/{session}/read/", {"seq": 1})
    assert status == 200 and body["lastReadSeq"] == 1, body
    read = await alice.wait_for("chat:read-updated")
    assert (read["userId"], read["seq"], read["unreadCount"]) == (live.users["carol"], 1, 0)
