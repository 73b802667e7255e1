"""Who may connect, and from where: tokens, one-time socket tokens, the external verifier, origins.

Two servers per backend:

- ``auth``: defaults for origins (the site's own hosts), the external
  verifier (a real aiohttp server started here) with a 3 s cache;
- ``strict``: ``CHAT_SOCKET_TOKEN_LIFETIME_S=1`` and an explicit
  ``CHAT_ALLOWED_ORIGINS``.

Refusals are checked over both transports with python-socketio (the
``connect_error`` it reports) and, for "no handler runs", with raw packets.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from tests.conftest import REPO_ROOT, ServerProcess
from tests.integration.chat_client import (
    TRANSPORTS,
    ChatClient,
    client_pool,
    db_execute,
    db_rows,
    issue_tokens,
    session_pk,
    unique,
)
from tests.integration.hostile import (
    HIGH_LIMITS,
    RawPolling,
    Verifier,
    better_auth,
    connect_error_packet,
    engine_error_body,
    event_of,
    last_event_id,
    open_raw,
    session_cookie,
    socket_token,
    wait_security_events,
)

UNAUTHENTICATED = "Authentication required: pass a valid token in the auth payload."
CACHE_S = 2
CSRF = "A" * 32


@dataclass
class World:
    server: ServerProcess
    ws: str
    users: dict[str, str]
    tokens: dict[str, str]
    #: Security events above this id were written by this module's servers.
    first_event_id: int
    #: A logged-in Django session of ``users["cookie"]`` (auth server only).
    cookie: str = ""

    @property
    def url(self) -> str:
        return self.server.url


def _world(server: ServerProcess, roles: dict[str, str]) -> World:
    ws, suffix = unique("aws"), unique("u")
    users = {name: f"{name}-{suffix}" for name in roles}
    tokens = issue_tokens(server, [(users[name], ws, role) for name, role in roles.items()])
    return World(server, ws, users, {name: tokens[users[name]] for name in roles}, last_event_id(server))


@pytest.fixture(scope="module")
def verifier():
    server = Verifier().start()
    yield server
    server.stop()


ROLES = {
    "alice": "member",
    "bob": "member",
    "mod": "moderator",
    "revoked": "member",
    "expired": "member",
    "inactive": "member",
    "cookie": "member",
}


@pytest.fixture(scope="module")
def auth(module_server_factory, module_backend, verifier) -> World:
    server = module_server_factory(
        module_backend,
        conformance=False,
        CHAT_EXTERNAL_AUTH_URL=verifier.url,
        CHAT_EXTERNAL_AUTH_CACHE_S=str(CACHE_S),
        **HIGH_LIMITS,
    )
    world = _world(server, ROLES)
    users = world.users
    db_execute(
        server,
        "UPDATE security_apitoken SET revoked_at = CURRENT_TIMESTAMP WHERE user_id IN "
        "(SELECT id FROM auth_user WHERE username = ?)",
        (users["revoked"],),
    )
    db_execute(
        server,
        "UPDATE security_apitoken SET expires_at = '2000-01-01 00:00:00' WHERE user_id IN "
        "(SELECT id FROM auth_user WHERE username = ?)",
        (users["expired"],),
    )
    db_execute(server, "UPDATE auth_user SET is_active = ? WHERE username = ?", (False, users["inactive"]))
    world.cookie = session_cookie(server, users["cookie"])
    return world


ALLOWED = ("http://good.example", "https://app.good.example")


@pytest.fixture(scope="module")
def strict(module_server_factory, module_backend) -> World:
    server = module_server_factory(
        module_backend,
        conformance=False,
        CHAT_SOCKET_TOKEN_LIFETIME_S="1",
        CHAT_ALLOWED_ORIGINS=",".join(ALLOWED),
        # The documented defaults of the send and connection limits (30/min, 5), shown below.
        **{k: v for k, v in HIGH_LIMITS.items() if k not in ("CHAT_MESSAGE_RATE_LIMIT", "CHAT_CONNECTION_LIMIT")},
    )
    return _world(server, {"alice": "member", "defaults": "member"})


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def connect(
    client: ChatClient,
    url: str,
    transports: list[str],
    *,
    auth: Any = None,
    headers: dict[str, str] | None = None,
    expect_error: bool = False,
) -> ChatClient:
    """``ChatClient.connect`` with extra HTTP headers (cookies, origin)."""
    try:
        await client.sio.connect(url, auth=auth, headers=headers or {}, transports=transports, wait_timeout=8)
    except Exception as error:  # socketio.exceptions.ConnectionError
        assert expect_error, f"{client.label}: connection failed: {error!r}; stream {client.stream}"
        return client
    assert not expect_error, f"{client.label}: connected although a refusal was expected; {client.stream}"
    return client


def refusal(client: ChatClient) -> dict[str, Any]:
    """The single ``connect_error`` a refused client saw; its data."""
    assert client.names() == ["connect_error"], client.stream
    error = client.events("connect_error")[0]
    assert isinstance(error, dict), error
    return error


def assert_unauthenticated(client: ChatClient, reason: str) -> None:
    error = refusal(client)
    assert error == {"message": UNAUTHENTICATED, "data": {"code": "unauthenticated", "reason": reason}}, error
    assert not client.connected


async def assert_auth_failure_recorded(world: World, reason: str) -> None:
    """An ``authentication_failed`` event with this reason (deduplicated per address and reason for 60 s)."""
    rows = await wait_security_events(
        world.server, world.first_event_id, event_of("authentication_failed", reason=reason)
    )
    assert all(row["username"] is None for row in rows), rows
    assert all(row["ip"] == "127.0.0.1" for row in rows), rows
    assert all(set(row["detail"]) == {"reason"} for row in rows), rows  # never the token


async def user_of(client: ChatClient, world: World, workspace: str | None = None) -> str:
    """Join a fresh session and return the userName the server put in our presence."""
    success = await client.join(workspace or world.ws, unique("who"))
    return success["presence"]["userName"]


# --- no valid credentials ---------------------------------------------------------------------------


def _cases(world: World, verifier: Verifier) -> dict[str, tuple[Any, str]]:
    bad_shape = unique("ext-bad-shape")
    verifier.answers[bad_shape] = (200, {"user": {"id": 42}, "session": {}})
    not_json = unique("ext-not-json")
    verifier.answers[not_json] = (200, "this is not json")
    failing = unique("ext-500")
    verifier.answers[failing] = (500, {"error": "boom"})
    return {
        "no-auth": (None, "no_credentials"),
        "empty-auth": ({}, "no_credentials"),
        "empty-token": ({"token": ""}, "malformed_token"),
        "number-token": ({"token": 42}, "malformed_token"),
        "list-token": ({"token": ["chat_x"]}, "malformed_token"),
        "oversized-token": ({"token": "chat_" + "x" * 600}, "malformed_token"),
        "forged-api-token": ({"token": "chat_" + "A" * 43}, "invalid_token"),
        "revoked-api-token": ({"token": world.tokens["revoked"]}, "invalid_token"),
        "expired-api-token": ({"token": world.tokens["expired"]}, "invalid_token"),
        "inactive-user": ({"token": world.tokens["inactive"]}, "invalid_token"),
        "forged-socket-token": ({"token": "sock_" + "A" * 43}, "unknown_token"),
        "external-rejected": ({"token": unique("ext-unknown")}, "external_rejected"),
        "external-bad-shape": ({"token": bad_shape}, "external_rejected"),
        "external-not-json": ({"token": not_json}, "external_rejected"),
        "external-500": ({"token": failing}, "external_rejected"),
    }


CASE_NAMES = [
    "no-auth", "empty-auth", "empty-token", "number-token", "list-token", "oversized-token", "forged-api-token",
    "revoked-api-token", "expired-api-token", "inactive-user", "forged-socket-token", "external-rejected",
    "external-bad-shape", "external-not-json", "external-500",
]  # fmt: skip


@pytest.mark.parametrize("transports", TRANSPORTS)
@pytest.mark.parametrize("case", CASE_NAMES)
async def test_without_valid_credentials_connect_error_unauthenticated(auth, verifier, new, transports, case):
    auth_payload, reason = _cases(auth, verifier)[case]
    client = await connect(new(case), auth.url, transports, auth=auth_payload, expect_error=True)
    assert_unauthenticated(client, reason)
    await client.assert_no_events(within=0.2, since=1)
    await assert_auth_failure_recorded(auth, reason)


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_no_handler_runs_for_a_refused_socket(auth, transport):
    """CONNECT with a bad token and a join right behind it: refused, no ack, nothing stored, later events refused too."""
    session = unique("ghost")
    join = '421["chat:join-session",%s]' % json.dumps({"sessionId": session, "workspaceId": auth.ws})
    typing = '422["chat:typing",%s]' % json.dumps({"sessionId": session, "isTyping": True})
    async with aiohttp.ClientSession() as http:
        client = await open_raw(http, auth.url, transport)
        try:
            await client.send('40{"token":"chat_forged-token-value"}', join)
            refused = connect_error_packet(UNAUTHENTICATED, "unauthenticated", reason="invalid_token")
            await client.wait_packet(lambda p: p == refused, 8)
            await client.send(typing)
            not_connected = connect_error_packet("Not connected to this namespace.", "not_connected")
            await client.wait_packet(lambda p: p == not_connected, 8)
            await asyncio.sleep(0.3)
            assert [p for p in client.messages() if p not in (refused, not_connected)] == [], client.packets
            assert not client.closed, "a refused CONNECT leaves the Engine.IO connection to the client"
        finally:
            await client.aclose()
    assert session_pk(auth.server, auth.ws, session) is None


# --- one-time socket tokens -------------------------------------------------------------------------


def _expiry(body: dict[str, Any]) -> float:
    return datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_socket_token_works_once_and_a_replay_is_refused_and_recorded(auth, new, transports):
    status, body = await socket_token(auth.url, auth.tokens["alice"])
    assert status == 201, body
    token = body["token"]
    assert token.startswith("sock_") and len(token) >= 40, body
    assert 50 <= _expiry(body) - time.time() <= 70, body  # CHAT_SOCKET_TOKEN_LIFETIME_S defaults to 60

    first = await connect(new("first"), auth.url, transports, auth={"token": token})
    assert await user_of(first, auth) == auth.users["alice"]
    await first.disconnect()

    replay = await connect(new("replay"), auth.url, transports, auth={"token": token}, expect_error=True)
    assert_unauthenticated(replay, "token_replayed")
    await assert_auth_failure_recorded(auth, "token_replayed")


async def test_a_socket_token_wins_exactly_one_of_concurrent_connects(auth, new):
    status, body = await socket_token(auth.url, auth.tokens["bob"])
    assert status == 201, body
    clients = [new(f"racer{n}") for n in range(6)]
    transports = [["websocket"], ["polling"]]
    await asyncio.gather(*(_try_connect(c, auth.url, transports[n % 2], body["token"]) for n, c in enumerate(clients)))
    winners = [c for c in clients if c.names() == ["connect"]]
    losers = [c for c in clients if c.names() == ["connect_error"]]
    assert len(winners) == 1 and len(losers) == 5, [c.stream for c in clients]
    for loser in losers:
        assert loser.events("connect_error")[0]["data"] == {"code": "unauthenticated", "reason": "token_replayed"}


async def _try_connect(client: ChatClient, url: str, transports: list[str], token: str) -> None:
    try:
        await client.sio.connect(url, auth={"token": token}, transports=transports, wait_timeout=8)
    except Exception:
        pass


async def test_socket_token_by_session_cookie_needs_csrf_and_is_not_an_api_token(auth, new):
    cookie = auth.cookie
    # A logged-in browser session, without the CSRF token: refused (a cross-site form cannot mint tokens).
    status, body = await socket_token(auth.url, cookies={"sessionid": cookie})
    assert status == 403, body
    status, body = await socket_token(
        auth.url, cookies={"sessionid": cookie, "csrftoken": CSRF}, headers={"X-CSRFToken": CSRF}
    )
    assert status == 201, body
    client = await connect(new("cookie-minted"), auth.url, ["websocket"], auth={"token": body["token"]})
    assert await user_of(client, auth) == auth.users["cookie"]
    # Nobody else can mint one: no credentials, a forged API token, the socket token itself as a bearer token.
    assert (await socket_token(auth.url))[0] in (401, 403)
    assert (await socket_token(auth.url, "chat_" + "B" * 43))[0] == 401
    assert (await socket_token(auth.url, body["token"]))[0] == 401


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_an_expired_socket_token_is_refused_and_recorded(strict, new, transports):
    asked_at = time.time()
    status, body = await socket_token(strict.url, strict.tokens["alice"])
    assert status == 201, body
    assert 0.5 <= _expiry(body) - asked_at <= 1.5 + (time.time() - asked_at), body  # CHAT_SOCKET_TOKEN_LIFETIME_S=1
    await asyncio.sleep(max(0.0, _expiry(body) - time.time()) + 0.3)
    client = await connect(new("late"), strict.url, transports, auth={"token": body["token"]}, expect_error=True)
    assert_unauthenticated(client, "token_expired")
    await assert_auth_failure_recorded(strict, "token_expired")


# --- the session cookie and cross-site WebSocket hijacking --------------------------------------------


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_session_cookie_connects_from_own_pages_only(auth, new, transports):
    cookie = auth.cookie
    own = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{auth.server.port}"}
    client = await connect(new("own-page"), auth.url, transports, headers=own)
    assert await user_of(client, auth) == auth.users["cookie"]
    # The same cookie, sent by the browser from another site's page: refused before any handler runs.
    hijack = {"Cookie": f"sessionid={cookie}", "Origin": "http://evil.example"}
    evil = await connect(new("hijacker"), auth.url, transports, headers=hijack, expect_error=True)
    assert evil.names() in ([], ["connect_error"]), evil.stream
    assert not evil.connected


# --- the external verifier -----------------------------------------------------------------------


async def test_external_verifier_maps_better_auth_identity_and_is_cached(auth, verifier, new):
    token, user_id, org = unique("ext-token"), unique("ba"), unique("org")
    verifier.answers[token] = (200, better_auth(user_id, "Ada Lovelace", org))
    clients = []
    for n, transports in enumerate((["websocket"], ["polling"], ["websocket"])):
        clients.append(await connect(new(f"ext{n}"), auth.url, transports, auth={"token": token}))
    assert verifier.count(token) == 1, verifier.calls  # asked once within CHAT_EXTERNAL_AUTH_CACHE_S
    # The identity became a local user, member of the organisation's workspace.
    assert await user_of(clients[0], auth, org) == f"ext-{user_id}"
    rows = db_rows(auth.server, "SELECT first_name FROM auth_user WHERE username = ?", (f"ext-{user_id}",))
    assert rows == [("Ada Lovelace",)]
    # After the cache period the verifier is asked again (and its answer still holds).
    await asyncio.sleep(CACHE_S + 0.5)
    await connect(new("ext-later"), auth.url, ["websocket"], auth={"token": token})
    assert verifier.count(token) == 2, verifier.calls
    # A rejected answer is never cached as a success: the verifier now says no.
    verifier.answers[token] = (401, {"error": "revoked"})
    await asyncio.sleep(CACHE_S + 0.5)
    refused = await connect(new("ext-revoked"), auth.url, ["websocket"], auth={"token": token}, expect_error=True)
    assert_unauthenticated(refused, "external_rejected")


async def test_external_identity_without_organisation_is_a_member_of_nothing(auth, verifier, new):
    token, user_id = unique("ext-token"), unique("ba")
    verifier.answers[token] = (200, better_auth(user_id, "Nobody", None))
    client = await connect(new("no-org"), auth.url, ["websocket"], auth={"token": token})
    ack = await client.call("chat:join-session", {"sessionId": unique("s"), "workspaceId": auth.ws})
    assert ack["ok"] is False and ack["code"] == "not_a_member", ack


async def test_own_tokens_are_never_sent_to_the_external_verifier(auth, verifier, new):
    status, body = await socket_token(auth.url, auth.tokens["alice"])
    assert status == 201
    await connect(new("api"), auth.url, ["websocket"], auth={"token": auth.tokens["alice"]})
    await connect(new("sock"), auth.url, ["websocket"], auth={"token": body["token"]})
    await connect(new("forged"), auth.url, ["websocket"], auth={"token": "chat_" + "C" * 43}, expect_error=True)
    await connect(new("replayed"), auth.url, ["websocket"], auth={"token": body["token"]}, expect_error=True)
    leaked = [t for t in verifier.calls if t.startswith(("chat_", "sock_"))]
    assert leaked == [], "the server's own credentials must never reach a third party"


# --- manage.py chat_token ------------------------------------------------------------------------------


def _chat_token(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "chat_token", *args],
        env=server.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_chat_token_command_prints_a_working_token(auth, new):
    user = unique("cli")
    done = _chat_token(auth.server, user, "--workspace", auth.ws, "--role", "moderator", "--create")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chat_") and len(lines[0]) >= 40, done.stdout
    token = lines[0]
    # It works on a socket, with the role it was given: a moderator may join a member's session...
    owner = await connect(new("owner"), auth.url, ["websocket"], auth={"token": auth.tokens["alice"]})
    session = unique("s")
    await owner.join(auth.ws, session)
    moderator = await connect(new("moderator"), auth.url, ["polling"], auth={"token": token})
    await moderator.join(auth.ws, session)
    # ...which a member may not.
    bob = await connect(new("bob"), auth.url, ["websocket"], auth={"token": auth.tokens["bob"]})
    ack = await bob.call("chat:join-session", {"sessionId": session, "workspaceId": auth.ws})
    assert ack["ok"] is False and ack["code"] == "forbidden", ack
    # And on the REST API.
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{auth.url}/api/v1/workspaces/", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200, await r.text()
            assert auth.ws in json.dumps(await r.json())


def test_chat_token_command_refuses_what_does_not_exist_without_create(auth):
    done = _chat_token(auth.server, unique("nobody"))
    assert done.returncode != 0 and done.stdout.strip() == "", (done.stdout, done.stderr)
    assert "--create" in done.stderr
    done = _chat_token(auth.server, auth.users["alice"], "--workspace", unique("nows"))
    assert done.returncode != 0 and "--create" in done.stderr and done.stdout.strip() == ""


# --- origins ----------------------------------------------------------------------------------------


def _origins_default(port: int) -> list[tuple[str, bool]]:
    return [
        (f"http://127.0.0.1:{port}", True),
        (f"http://localhost:{port}", True),
        ("http://evil.example", False),
        ("http://127.0.0.1.evil.example", False),
        ("http://evil.example/http://127.0.0.1", False),
        ("http://127.0.0.1@evil.example", False),
        ("null", False),
        # Issue #17: the scheme and the port count too, not only the host.
        (f"https://127.0.0.1:{port}", False),
        (f"http://127.0.0.1:{port + 1}", False),
        ("http://127.0.0.1", False),
    ]


ORIGINS_STRICT = [
    ("http://good.example", True),
    ("https://app.good.example", True),
    ("https://good.example", False),
    ("http://good.example.evil.example", False),
    ("http://evil.example", False),
    ("http://app.good.example", False),
]


async def _check_origin(world: World, origin: str, allowed: bool) -> None:
    async with aiohttp.ClientSession() as http:
        raw = RawPolling(http, world.url, {"Origin": origin})
        async with http.get(raw.query(), headers={"Origin": origin}) as response:
            body = await response.text()
            cors = response.headers.get("Access-Control-Allow-Origin")
            if allowed:
                assert response.status == 200 and body.startswith("0{"), (origin, response.status, body)
                assert cors == origin and response.headers.get("Access-Control-Allow-Credentials") == "true"
            else:
                assert response.status == 403, (origin, response.status, body)
                assert json.loads(body) == engine_error_body(4, "Forbidden", "forbidden", "Forbidden")
                assert cors is None, (origin, response.headers)
        preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        async with http.options(raw.query(), headers=preflight) as response:
            if allowed:
                assert response.status == 204 and response.headers.get("Access-Control-Allow-Origin") == origin
            else:
                assert response.status == 403 and "Access-Control-Allow-Origin" not in response.headers
        ws_url = world.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        if allowed:
            ws = await http.ws_connect(ws_url, headers={"Origin": origin})
            first = await ws.receive(timeout=5)
            assert first.data.startswith("0{"), first
            await ws.close()
        else:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(ws_url, headers={"Origin": origin})
            assert refused.value.status == 403


async def test_origins_default_to_the_sites_own_hosts(auth):
    for origin, allowed in _origins_default(auth.server.port):
        await _check_origin(auth, origin, allowed)
    # No Origin at all (not a browser): allowed, and no CORS headers are sent.
    async with aiohttp.ClientSession() as http:
        async with http.get(RawPolling(http, auth.url).query()) as response:
            assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers


async def test_origins_follow_chat_allowed_origins(strict):
    for origin, allowed in [*ORIGINS_STRICT, (f"http://127.0.0.1:{strict.server.port}", False)]:
        await _check_origin(strict, origin, allowed)


async def test_cross_site_post_into_a_live_session_is_refused(auth):
    """A page on another site POSTing into someone's polling session (its sid leaked): refused, nothing runs."""
    session = unique("csrf")
    async with aiohttp.ClientSession() as http:
        victim = await RawPolling(http, auth.url).open()
        try:
            assert (await victim.connect({"token": auth.tokens["alice"]})).startswith('40{"sid"')
            join = '421["chat:join-session",%s]' % json.dumps({"sessionId": session, "workspaceId": auth.ws})
            status, body = await victim.post(join, headers={"Origin": "http://evil.example"})
            assert (status, json.loads(body)) == (403, engine_error_body(4, "Forbidden", "forbidden", "Forbidden"))
            await asyncio.sleep(0.3)
            assert session_pk(auth.server, auth.ws, session) is None
            assert not any(isinstance(p, str) and p.startswith("43") for p in victim.packets), victim.packets
            # The victim's own connection is untouched.
            since = len(victim.packets)
            assert (await victim.send(join))[0] == 200
            ack = await victim.wait_packet(lambda p: isinstance(p, str) and p.startswith("431"), 8, since)
            assert json.loads(ack[3:])[0]["ok"] is True, ack
        finally:
            await victim.aclose()


async def test_documented_default_limits(strict, new):
    """CHAT_MESSAGE_RATE_LIMIT defaults to 30 per minute and CHAT_CONNECTION_LIMIT to 5."""
    token = strict.tokens["defaults"]
    clients = [
        await connect(new(f"d{n}"), strict.url, [["websocket"], ["polling"]][n % 2], auth={"token": token})
        for n in range(5)
    ]
    sixth = await connect(new("sixth"), strict.url, ["websocket"], auth={"token": token}, expect_error=True)
    assert refusal(sixth)["data"] == {"code": "connection_limit", "limit": 5}
    session = unique("dflt")
    await clients[0].join(strict.ws, session)
    for n in range(30):
        ack = await clients[0].send(session, f"default limit {n} {unique('d')}")
        assert ack["ok"] is True, (n, ack)
    ack = await clients[0].send(session, "one too many")
    assert ack["ok"] is False and ack["code"] == "rate_limited" and ack["retryAfter"] > 0, ack
