"""Issue #17, one test per finding: each attack fails with a specific code or a bounded effect,
and a bystander in another workspace keeps its latency throughout.

One uvicorn server per backend (embedded SQLite; PostgreSQL and Redis), run
as production runs it.  The attacker and its victims live in one workspace;
the bystander is a pair of members of another workspace who keep sending
each other messages.  Their round trip (send -> the other's
``chat:message-received``) is measured before the attack (the baseline)
and while it runs; the median during the attack may be at most
:data:`LATENCY_RATIO` times the baseline's (the baseline floored at
:data:`FLOOR_S`, so that a 2 ms baseline does not make a 20 ms blip a
failure on a shared machine).

What each finding's other tests show in depth is named in its docstring;
``docs/threat-model.md`` maps every boundary to its tests.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import pytest

from tests.conftest import ServerProcess
from tests.integration.chat_client import ChatClient, client_pool, issue_tokens, server_python, unique
from tests.integration.hostile import HIGH_LIMITS, Verifier, open_raw
from tests.integration.test_security_login import attempt as login_attempt
from tests.integration.test_security_login import fresh_window

LATENCY_RATIO = 5.0
FLOOR_S = 0.05
BASELINE_ROUNDS = 7
API = "/api/v1"

ENV = {
    **HIGH_LIMITS,
    "CHAT_PARLANT_MAX_OPEN_REQUESTS": "3",
    "CHAT_API_RATE_LIMIT": "100000/m",
    "CHAT_AGENT_RUNS_PER_USER": "2",
    "CHAT_PENDING_SESSIONS_PER_ADDRESS": "5",
    "CHAT_LOGIN_RATE_LIMIT": "5/m",
}

ROLES = {"mallory": "member", "victim": "member", "mod": "moderator", "boss": "admin"}
ELSEWHERE = {"by1": "moderator", "by2": "moderator"}  # moderators may join any session of theirs


@dataclass
class World:
    server: ServerProcess
    ws: str
    other_ws: str
    tokens: dict[str, str]
    users: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    async def api(self, who: str, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        async with aiohttp.ClientSession() as http:
            async with http.request(method, f"{self.url}{path}", json=body, headers=headers, **kwargs) as response:
                text = await response.text()
                try:
                    return response.status, json.loads(text) if text else None
                except ValueError:
                    return response.status, text


@pytest.fixture(scope="module")
def verifier() -> Iterator[Verifier]:
    server = Verifier().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def world(module_server_factory, module_backend, verifier) -> World:
    env = {**ENV, "CHAT_EXTERNAL_AUTH_URL": verifier.url}
    server = module_server_factory(module_backend, conformance=False, server="uvicorn", **env)
    ws, other_ws, suffix = unique("hws"), unique("hby"), unique("u")
    users = {name: f"{name}-{suffix}" for name in {**ROLES, **ELSEWHERE}}
    specs = [(users[name], ws, role) for name, role in ROLES.items()]
    specs += [(users[name], other_ws, role) for name, role in ELSEWHERE.items()]
    tokens = issue_tokens(server, specs)
    return World(server, ws, other_ws, {name: tokens[users[name]] for name in users}, users)


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


# --- the bystander ----------------------------------------------------------------------------------


@dataclass
class Bystander:
    """Two moderators of another workspace, one over WebSocket and one over polling, chatting."""

    sender: ChatClient
    receiver: ChatClient
    session: str
    samples: list[float] = field(default_factory=list)

    async def round_trip(self) -> float:
        mid, mark, start = unique("by"), self.receiver.mark(), time.monotonic()
        ack = await self.sender.send(self.session, f"still chatting {mid}", mid, timeout=30)
        assert ack.get("ok") is True, ack
        await self.receiver.wait_for("chat:message-received", lambda m: m["id"] == mid, timeout=30, since=mark)
        return time.monotonic() - start

    async def baseline(self) -> float:
        return statistics.median([await self.round_trip() for _ in range(BASELINE_ROUNDS)])

    async def during(self, attack: Awaitable[Any]) -> tuple[Any, float]:
        """Run ``attack`` while chatting; its result and the bystander's median round trip meanwhile."""
        task = asyncio.ensure_future(attack)
        samples: list[float] = []
        while not task.done() or len(samples) < 3:
            samples.append(await self.round_trip())
        return await task, statistics.median(samples)


@asynccontextmanager
async def bystander(world: World, new) -> AsyncIterator[Bystander]:
    session = unique("calm")
    sender = await new("by1").connect(world.url, world.tokens["by1"], ["websocket"])
    receiver = await new("by2").connect(world.url, world.tokens["by2"], ["polling"])
    await sender.join(world.other_ws, session)
    await receiver.join(world.other_ws, session)
    yield Bystander(sender, receiver, session)
    assert sender.connected and receiver.connected


async def unharmed(world: World, new, attack: Callable[[], Awaitable[Any]]) -> Any:
    """Run the attack next to a bystander; assert the bystander's latency held; the attack's result."""
    async with bystander(world, new) as calm:
        before = await calm.baseline()
        result, during = await calm.during(attack())
    assert during <= LATENCY_RATIO * max(before, FLOOR_S), (
        f"bystander: {before * 1000:.0f} ms before, {during * 1000:.0f} ms during"
    )
    return result


# --- one message freezes a worker --------------------------------------------------------------------


async def test_one_message_cannot_freeze_a_worker(world, new):
    """The quadratic script-tag pattern: ``"<" + " " * n``, by socket at the length limit and by REST
    far over it.  Length first, linear screening (``test_security_bounded_input.py`` measures the ratio)."""
    mallory = await new("mallory").connect(world.url, world.tokens["mallory"], ["websocket"])
    session = unique("frz")
    await mallory.join(world.ws, session)

    async def attack() -> list[Any]:
        answers = []
        for _ in range(5):
            answers.append(await mallory.send(session, "<" + " " * 9_999, unique("m"), timeout=30))
            answers.append(await mallory.send(session, "<" + "\t" * 20_000, unique("m"), timeout=30))
            answers.append(
                await world.api(
                    "mallory",
                    "POST",
                    f"{API}/workspaces/{world.ws}/sessions/{session}/messages/",
                    {"id": unique("m"), "content": "<" + " " * 1_000_000},
                )
            )
        return answers

    answers = await unharmed(world, new, attack)
    for socket_fit, socket_long, (status, body) in zip(answers[0::3], answers[1::3], answers[2::3]):
        # Under the length limit the text is stored as typed (one long run of spaces is spam).
        assert socket_fit.get("ok") is True or socket_fit.get("code") == "spam_detected", socket_fit
        assert socket_long.get("ok") is False and socket_long["code"] == "message_too_long", socket_long
        assert (status, body["code"]) == (413, "payload_too_large"), (status, body)


# --- a moderator reaches the server's secrets --------------------------------------------------------


class Catcher(ThreadingHTTPServer):
    """A loopback HTTP server that counts every request: where a leaked key would land."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                catcher.requests.append(f"{self.path} {self.headers.get('Authorization', '')}")
                self.send_response(404)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


STORE_ECHO = """
import django, json, sys
django.setup()
from chat.models import Agent, Workspace
Agent.objects.update_or_create(
    workspace=Workspace.objects.get(slug=sys.argv[1]), key=sys.argv[2],
    defaults={"name": "Slow echo", "backend": "echo", "config": json.loads(sys.argv[3])},
)
print("ok")
"""

STORE_AGENT = """
import django, json, sys
django.setup()
from chat.models import Agent, ChatSession, Workspace
workspace = Workspace.objects.get(slug=sys.argv[1])
agent, _ = Agent.objects.update_or_create(
    workspace=workspace, key=sys.argv[2], defaults={"name": "Leaky", "backend": "openai", "config": json.loads(sys.argv[3])}
)
print(agent.pk)
"""


async def test_a_moderator_cannot_send_the_servers_secrets_to_any_host(world, new):
    """An agent aimed at loopback naming ``DJANGO_SECRET_KEY``: refused when saved
    (``test_admin.py::test_moderator_cannot_point_an_agent_at_loopback``,
    ``::test_api_key_env_outside_prefix_is_refused``) and, stored behind the admin's back, refused
    when run: nothing reaches the host, and the session is told a code, not a port scan."""
    catcher = Catcher()
    try:
        config = {
            "base_url": f"http://127.0.0.1:{catcher.server_address[1]}/v1",
            "model": "m",
            "api_key_env": "DJANGO_SECRET_KEY",
        }
        await asyncio.to_thread(server_python, world.server, "-c", STORE_AGENT, world.ws, "leaky", json.dumps(config))
        victim = await new("victim").connect(world.url, world.tokens["victim"], ["websocket"])
        session = unique("leak")
        await victim.join(world.ws, session, agentId="leaky")

        async def attack() -> dict[str, Any]:
            assert (await victim.send(session, "hello agent"))["ok"] is True
            return await victim.wait_for("chat:agent-stream-chunk", lambda c: c.get("isComplete"), timeout=30)

        final = await unharmed(world, new, attack)
        assert final["error"]["code"] == "agent_misconfigured", final
        text = json.dumps(final)
        assert "127.0.0.1" not in text and "404" not in text and "Error" not in text, final
        assert catcher.requests == []
    finally:
        catcher.shutdown()


# --- access changes outlive their moment ----------------------------------------------------------------


async def test_access_changes_reach_live_sockets_without_harm_to_others(world, new):
    """Unshare while the socket is joined: it leaves at once with ``access_revoked``
    (every change in ``test_access_changes.py``, across workers)."""
    session = unique("acc")
    status, body = await world.api("boss", "POST", f"{API}/workspaces/{world.ws}/sessions/", {"id": session})
    assert status == 201, body
    status, body = await world.api(
        "boss", "POST", f"{API}/workspaces/{world.ws}/sessions/{session}/share/", {"username": world.users["victim"]}
    )
    assert status == 200, body
    victim = await new("victim").connect(world.url, world.tokens["victim"], ["websocket"])
    await victim.join(world.ws, session)

    async def attack() -> dict[str, Any]:
        status, body = await world.api(
            "boss", "DELETE", f"{API}/workspaces/{world.ws}/sessions/{session}/share/{world.users['victim']}/"
        )
        assert status == 200, body
        return await victim.wait_for("chat:session-left", timeout=10)

    left = await unharmed(world, new, attack)
    assert left["code"] == "access_revoked" and left["sessionId"] == session, left
    answer = await victim.send(session, "still here?")
    assert answer["ok"] is False and answer["code"] == "not_joined", answer


# --- unbounded per-user resources -----------------------------------------------------------------------


async def test_parlant_long_polls_per_user_are_capped(world, new):
    """A user opening long-polls without end gets 429 ``too_many_open_requests`` past the cap;
    the worker's other users are not slowed."""
    session = unique("pl")
    status, body = await world.api("mallory", "POST", f"{API}/workspaces/{world.ws}/sessions/", {"id": session})
    assert status == 201, body
    poll = f"/parlant/{world.ws}/sessions/{session}/events?min_offset=100000&wait_for_data=20"

    async def attack() -> list[tuple[int, Any]]:
        polls = [asyncio.ensure_future(world.api("mallory", "GET", poll)) for _ in range(3)]
        await asyncio.sleep(1.0)
        refused = [await world.api("mallory", "GET", poll) for _ in range(20)]
        for task in polls:
            task.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
        return refused

    refused = await unharmed(world, new, attack)
    assert {(status, body["code"]) for status, body in refused} == {(429, "too_many_open_requests")}, refused


async def test_a_polling_post_of_endless_packets_is_cut_off(world, new):
    """One POST used to start a task per packet before any limit: past ``CHAT_MAX_PACKETS_PER_POST``
    (500) the request is refused and the session closed (``test_security_caps.py`` in depth)."""

    async def attack() -> tuple[int, str]:
        async with aiohttp.ClientSession() as http:
            client = await open_raw(http, world.url, "polling")
            try:
                assert (await client.connect({"token": world.tokens["mallory"]})).startswith('40{"sid"')
                return await client.send(*['42["no-such-event"]'] * 5_000)
            finally:
                await client.aclose()

    status, body = await unharmed(world, new, attack)
    assert status == 400 and json.loads(body)["context"]["code"] == "too_many_packets", body


async def test_unauthenticated_engine_io_sessions_per_address_are_capped(world, new):
    """Handshakes that never authenticate, from one address: past ``CHAT_PENDING_SESSIONS_PER_ADDRESS``
    the next is refused with 429 ``too_many_sessions``; authenticated sockets (the bystander) are unaffected."""

    async def attack() -> list[tuple[int, str]]:
        async with aiohttp.ClientSession() as http:
            pending = [await open_raw(http, world.url, "polling") for _ in range(5)]
            try:
                answers = []
                for _ in range(20):
                    async with http.get(f"{world.url}/socket.io/?EIO=4&transport=polling") as response:
                        answers.append((response.status, await response.text()))
                return answers
            finally:
                for client in pending:
                    await client.aclose()

    answers = await unharmed(world, new, attack)
    assert {(status, json.loads(body)["context"]["code"]) for status, body in answers} == {(429, "too_many_sessions")}


async def test_a_slow_external_verifier_stalls_nobody(world, new, verifier):
    """The verifier used to be a blocking call on the thread all database work shares: connects
    whose verifier takes its time no longer hold up anyone (``test_security_auth_limits.py`` in depth)."""
    # Four at once: under this server's cap on unauthenticated sessions per address (5).
    tokens = [unique("held") for _ in range(4)]
    verifier.hold(*tokens)

    async def attack() -> list[ChatClient]:
        async def connect(token: str) -> ChatClient:
            client = new("external")
            try:
                await client.sio.connect(world.url, auth={"token": token}, transports=["websocket"], wait_timeout=30)
            except Exception:
                pass
            return client

        waiting = [asyncio.ensure_future(connect(token)) for token in tokens]
        await asyncio.sleep(2.0)  # every one of them is waiting for the verifier meanwhile
        verifier.release()
        return await asyncio.gather(*waiting)

    refused = await unharmed(world, new, attack)
    for client in refused:
        assert client.names() == ["connect_error"], client.stream
        error = client.events("connect_error")[0]
        assert isinstance(error, dict) and error["data"]["code"] == "unauthenticated", client.stream


async def test_monitoring_shows_no_tenant_another_tenants_figures(world, new):
    """Any staff user used to read every workspace's counts: the metrics API and the health
    figures are for superusers and the ops token only (``test_monitoring_endpoints.py``)."""

    async def attack() -> list[tuple[int, Any]]:
        return [await world.api(who, "GET", f"{API}/metrics/") for who in ("boss", "mod", "mallory")]

    for status, body in await unharmed(world, new, attack):
        assert status == 403, body


async def test_agent_runs_per_user_are_capped(world, new):
    """One user could hold every agent slot of a worker: past ``CHAT_AGENT_RUNS_PER_USER`` the next
    reply fails at once with ``agent_run_limit`` (``test_agents_runner.py`` in depth)."""
    config = {"delay_ms": 150}
    await asyncio.to_thread(server_python, world.server, "-c", STORE_ECHO, world.ws, "slowecho", json.dumps(config))
    mallory = await new("mallory").connect(world.url, world.tokens["mallory"], ["websocket"])
    sessions = [unique("run") for _ in range(3)]
    for session in sessions:
        await mallory.join(world.ws, session, agentId="slowecho")
    words = " ".join(f"w{n}" for n in range(30))

    async def attack() -> list[dict[str, Any]]:
        for session in sessions:
            assert (await mallory.send(session, words))["ok"] is True
            await asyncio.sleep(0.3)  # the first two are streaming before the third asks
        return [
            await mallory.wait_for(
                "chat:agent-stream-chunk", lambda c, s=session: c.get("isComplete") and c["sessionId"] == s, timeout=30
            )
            for session in sessions
        ]

    finals = await unharmed(world, new, attack)
    assert [final.get("error", {}).get("code") for final in finals] == [None, None, "agent_run_limit"], finals


async def test_agent_reply_ids_cannot_be_squatted(world, new):
    """A member who sent ``agent-<m>`` before ``m`` owned the id of the agent's reply to it: refused."""
    mallory = await new("mallory").connect(world.url, world.tokens["mallory"], ["websocket"])
    session = unique("sq")
    await mallory.join(world.ws, session)

    async def attack() -> list[dict[str, Any]]:
        return [await mallory.send(session, "mine now", f"agent-{unique('m')}") for _ in range(20)]

    for answer in await unharmed(world, new, attack):
        assert answer["ok"] is False and answer["code"] == "invalid_payload", answer


async def test_login_pages_are_throttled(world, new):
    """Password guessing on ``/login/`` and ``/admin/login/``: past ``CHAT_LOGIN_RATE_LIMIT`` per address, 429."""

    async def attack() -> list[tuple[int, str | None]]:
        async with aiohttp.ClientSession() as http:
            return [await login_attempt(http, f"{world.url}/login/", f"guess{n}") for n in range(12)]

    await fresh_window(margin_s=25)  # the bystander's baseline, then the attack
    answers = await unharmed(world, new, attack)
    assert [status for status, _ in answers[:5]] == [200] * 5, answers
    assert all(status == 429 and retry for status, retry in answers[5:]), answers
