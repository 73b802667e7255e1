"""Regenerating agent replies and rating them, end to end: real servers, real Socket.IO clients, real HTTP.

Every test runs on both backends (embedded SQLite + in-memory layer, and
PostgreSQL + Redis) except the two-process one (``services``).  The model
behind the ``gpt`` agent is a local server speaking OpenAI's streaming wire
format that numbers its answers, so each version of a reply reads differently.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Iterator

import aiohttp
import pytest

from tests.conftest import PYTHON, REPO_ROOT, ServerProcess
from tests.integration.clients import PyClient, until
from tests.integration.test_agents_backends import FakeOpenAI, ThreadedServer
from tests.integration.test_agents_e2e import (
    SERVER_ENV,
    assert_complete_stream,
    chunks,
    finals,
    history,
    new_session,
    received,
    send,
)

WS, OTHER_WS = "regen-a", "regen-b"
USERS = {
    "alice": ("regen_alice", WS, "member"),
    "carol": ("regen_carol", WS, "member"),
    "mod": ("regen_mod", WS, "moderator"),
    "eve": ("regen_eve", OTHER_WS, "member"),
}
UPDATED = "chat:message-updated"

SETUP = """
import io, json
from django.core.management import call_command
spec = json.loads({spec!r})
tokens = {{}}
for user, (username, workspace, role) in spec["users"].items():
    out = io.StringIO()
    call_command("chat_token", username, workspace=workspace, role=role, create=True, stdout=out)
    tokens[user] = out.getvalue().strip()
for workspace, key, backend, config in spec["agents"]:
    call_command("chat_agent", workspace, key, backend=backend, config=json.dumps(config), name=key.title(), stdout=io.StringIO())
print(json.dumps(tokens))
"""


def setup_data(server: ServerProcess, agents: list[tuple[str, str, str, dict]]) -> dict[str, str]:
    spec = json.dumps({"users": USERS, "agents": agents})
    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", SETUP.format(spec=spec)],
        cwd=REPO_ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class NumberedOpenAI(FakeOpenAI):
    """Answers ``Answer number N`` for its Nth request."""

    def words(self) -> list[str]:
        return ["Answer", " number", f" {len(self.requests)}"]


def agents(model_url: str) -> list[tuple[str, str, str, dict]]:
    gpt = {"base_url": f"{model_url}/v1", "model": "m", "api_key": "sk-test"}
    return [
        (WS, "gpt", "openai", gpt),
        (WS, "slow", "echo", {"delay_ms": 120}),
        (OTHER_WS, "gpt", "openai", gpt),
    ]


@dataclass
class Env:
    server: ServerProcess
    tokens: dict[str, str]
    clients: list[PyClient] = field(default_factory=list)

    async def client(self, user: str, server: ServerProcess | None = None) -> PyClient:
        client = await PyClient().connect((server or self.server).url, "websocket", auth={"token": self.tokens[user]})
        self.clients.append(client)
        return client

    async def api(self, user: str, path: str, **params: Any) -> tuple[int, Any, str]:
        """GET ``/api/v1/<path>``: status, JSON body (or None), raw text."""
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{self.server.url}/api/v1/{path}", params=params, headers=headers) as response:
                text = await response.text()
                is_json = response.content_type == "application/json"
                return response.status, json.loads(text) if is_json else None, text

    async def post(self, user: str, path: str, body: Any) -> int:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.server.url}/api/v1/{path}", json=body, headers=headers) as response:
                return response.status

    async def share(self, session: str, user: str) -> None:
        """Alice (the session's creator) shares it with ``user``, who may then join it."""
        headers = {"Authorization": f"Bearer {self.tokens['alice']}"}
        url = f"{self.server.url}/api/v1/workspaces/{WS}/sessions/{session}/share/"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json={"username": USERS[user][0]}, headers=headers) as response:
                assert response.status in (200, 201), await response.text()

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        self.clients.clear()


@pytest.fixture(scope="module")
def model() -> Iterator[NumberedOpenAI]:
    with ExitStack() as stack:
        yield stack.enter_context(ThreadedServer(NumberedOpenAI(delay_s=0.05)))


@pytest.fixture(scope="module")
def regen_server(module_server_factory, module_backend, model) -> tuple[ServerProcess, dict[str, str]]:
    # One run at a time per user: the run-cap test needs it; the others never run two of a user's at once.
    server = module_server_factory(
        module_backend,
        conformance=False,
        CHAT_AGENT_RUNS_PER_USER="1",
        **SERVER_ENV,
    )
    return server, setup_data(server, agents(model.url))


@pytest.fixture
async def env(regen_server) -> Iterator[Env]:
    environment = Env(*regen_server)
    yield environment
    await environment.close()


# --- helpers ----------------------------------------------------------------------------------


async def join(client: PyClient, session: str, workspace: str = WS, agent: str | None = None) -> None:
    payload = {"sessionId": session, "workspaceId": workspace, **({"agentId": agent} if agent else {})}
    [ack] = await client.call("chat:join-session", payload)
    assert ack["ok"], ack


async def regenerate(client: PyClient, session: str, reply: str, request: str) -> dict[str, Any]:
    [ack] = await client.call("chat:regenerate", {"sessionId": session, "messageId": reply, "requestId": request})
    return ack


async def rate(client: PyClient, session: str, reply: str, rating: str | None, **extra: Any) -> dict[str, Any]:
    [ack] = await client.call(
        "chat:rate-message", {"sessionId": session, "messageId": reply, "rating": rating, **extra}
    )
    return ack


def updates(client: PyClient, message_id: str) -> list[dict[str, Any]]:
    """The messages of the ``chat:message-updated`` events about ``message_id`` (each checked against its envelope)."""
    found = []
    for [event] in client.received(UPDATED):
        if event["messageId"] == message_id:
            message = event["message"]
            assert (message["id"], message["seq"], message["version"]) == (message_id, event["seq"], event["version"])
            found.append(message)
    return found


def version_chunks(client: PyClient, message_id: str, version: int) -> list[dict[str, Any]]:
    return [c for c in chunks(client, message_id) if c.get("version") == version]


async def first_reply(client: PyClient, session: str, key: str = "m1", content: str = "hello") -> dict[str, Any]:
    await send(client, session, key, content)
    assert await until(lambda: received(client, f"agent-{key}"), 15), client.events
    return received(client, f"agent-{key}")[0]


async def regenerated(client: PyClient, reply: str, version: int, timeout: float = 15) -> dict[str, Any]:
    found = await until(lambda: [u for u in updates(client, reply) if u["version"] == version], timeout)
    assert found, f"no {UPDATED} v{version} of {reply}: {client.events[-10:]}"
    return found[0]


# --- regenerate ---------------------------------------------------------------------------------


async def test_regenerate_twice_gives_three_versions_and_one_current(env):
    alice, carol = await env.client("alice"), await env.client("carol")
    session = new_session()
    await join(alice, session, agent="gpt")
    await env.share(session, "carol")
    await join(carol, session)
    first = await first_reply(alice, session)
    assert first["version"] == 1 and first["content"].startswith("Answer number")

    texts = [first["content"]]
    for version, request in ((2, "r1"), (3, "r2")):
        ack = await regenerate(alice, session, "agent-m1", request)
        assert ack["ok"] and ack["version"] == version and ack["duplicate"] is False, ack
        assert ack["messageId"] == "agent-m1" and ack["inReplyTo"] == "m1"
        assert ack["status"] in ("pending", "running")
        for client in (alice, carol):
            shown = await regenerated(client, "agent-m1", version)
            stream = version_chunks(client, "agent-m1", version)
            # The chunks carry the reply's id and the new version, index from 0, and end with its seq.
            assert assert_complete_stream(stream) == shown["content"]
            assert stream[-1]["seq"] == first["seq"] and shown["seq"] == first["seq"]
            assert shown["metadata"]["regenerated"] is True and shown["metadata"]["inReplyTo"] == "m1"
        texts.append(shown["content"])
    assert len(set(texts)) == 3, texts  # each version is a new answer

    # History: one current reply, version 3; no message was added.
    messages = await history(carol, session)
    assert [(m["id"], m["version"]) for m in messages] == [("m1", 1), ("agent-m1", 3)]
    assert messages[1]["content"] == texts[2]
    # Versions: the two it replaced, oldest first, browsable by members.
    status, body, _ = await env.api("carol", f"workspaces/{WS}/sessions/{session}/messages/agent-m1/versions/")
    assert status == 200, body
    assert body["version"] == 3
    assert [(v["version"], v["content"], v["reason"]) for v in body["results"]] == [
        (1, texts[0], "regenerate"),
        (2, texts[1], "regenerate"),
    ]
    # Nothing about the first answer was streamed or stored twice.
    assert len(received(carol, "agent-m1")) == 1 and len(finals(carol, "agent-m1")) == 3


async def test_a_regeneration_streams_its_tool_steps_with_the_new_version(env):
    alice = await env.client("alice")
    session = new_session()
    await join(alice, session, agent="slow")
    first = await first_reply(alice, session, content="/tool count these")
    assert [step["type"] for step in first["metadata"]["steps"]] == ["reasoning", "tool"]
    assert (await regenerate(alice, session, "agent-m1", "r1"))["ok"]
    shown = await regenerated(alice, "agent-m1", 2)
    # The new version's tool call and reasoning were relayed with its version, and are stored with it.
    for event in ("chat:agent-tool-call", "chat:agent-reasoning"):
        relayed = [args[0] for args in alice.received(event) if args[0]["messageId"] == "agent-m1"]
        assert {e.get("version") for e in relayed} == {None, 2}, (event, relayed)
    assert shown["metadata"]["steps"] == first["metadata"]["steps"]
    assert shown["content"] == first["content"] and shown["version"] == 2


async def test_a_repeated_request_id_returns_the_same_run(env):
    alice, carol = await env.client("alice"), await env.client("carol")
    session = new_session()
    await join(alice, session, agent="slow")
    await env.share(session, "carol")
    await join(carol, session)
    await first_reply(alice, session, content="one two three")
    acks = await asyncio.gather(*(regenerate(alice, session, "agent-m1", "same") for _ in range(4)))
    assert all(ack["ok"] and ack["version"] == 2 for ack in acks), acks
    assert sorted(ack["duplicate"] for ack in acks) == [False, True, True, True]
    # One at a time per reply: another request while it runs is refused.
    other = await regenerate(alice, session, "agent-m1", "other")
    assert other["ok"] is False and other["code"] == "agent_run_active", other
    await regenerated(carol, "agent-m1", 2)
    again = await regenerate(alice, session, "agent-m1", "same")
    assert again["ok"] and again["duplicate"] is True and again["status"] == "completed" and again["version"] == 2
    await asyncio.sleep(0.5)
    assert len(updates(carol, "agent-m1")) == 1 and len(finals(carol, "agent-m1")) == 2
    assert [m["version"] for m in await history(carol, session) if m["id"] == "agent-m1"] == [2]


async def test_cancel_a_regeneration(env):
    alice, carol = await env.client("alice"), await env.client("carol")
    session = new_session()
    await join(alice, session, agent="slow")
    await env.share(session, "carol")
    await join(carol, session)
    words = " ".join(f"w{i}" for i in range(30))
    first = await first_reply(alice, session, content=words)
    ack = await regenerate(alice, session, "agent-m1", "r1")
    assert ack["ok"], ack
    assert await until(lambda: len(version_chunks(carol, "agent-m1", 2)) >= 3, 10)
    [cancel] = await carol.call("chat:cancel-agent", {"sessionId": session, "messageId": "agent-m1"})
    assert cancel["ok"] is False and cancel["code"] == "forbidden"  # carol neither wrote m1 nor owns the session
    [cancel] = await alice.call("chat:cancel-agent", {"sessionId": session, "messageId": "agent-m1"})
    assert cancel["ok"] and cancel["status"] == "cancelling" and cancel["messageId"] == "agent-m1", cancel
    shown = await regenerated(carol, "agent-m1", 2)
    stream = version_chunks(carol, "agent-m1", 2)
    assert stream[-1]["cancelled"] is True
    partial = assert_complete_stream(stream)
    assert shown["content"] == partial and "w29" not in partial and shown["metadata"]["cancelled"] is True
    status, body, _ = await env.api("alice", f"workspaces/{WS}/sessions/{session}/messages/agent-m1/versions/")
    assert status == 200 and [v["content"] for v in body["results"]] == [first["content"]]
    # It is over: the reply can be regenerated again.
    assert (await regenerate(alice, session, "agent-m1", "r2"))["ok"]
    await regenerated(carol, "agent-m1", 3)


async def test_regenerating_beyond_the_run_caps_fails_and_keeps_the_reply(env):
    alice = await env.client("alice")
    busy, other = new_session(), new_session()
    await join(alice, other, agent="gpt")
    first = await first_reply(alice, other)
    await join(alice, busy, agent="slow")
    await send(alice, busy, "b1", " ".join(f"w{i}" for i in range(30)))  # runs about 4 s
    assert await until(lambda: chunks(alice, "agent-b1"), 10)
    ack = await regenerate(alice, other, "agent-m1", "r1")
    assert ack["ok"], ack  # accepted, then refused by the runner: one run per user at a time here
    final = await until(lambda: [c for c in finals(alice, "agent-m1") if c.get("version") == 2], 10)
    assert final and final[0]["error"]["code"] == "agent_run_limit"
    await asyncio.sleep(0.3)
    assert updates(alice, "agent-m1") == []
    [reply] = [m for m in await history(alice, other) if m["id"] == "agent-m1"]
    assert reply["version"] == 1 and reply["content"] == first["content"]
    [cancel] = await alice.call("chat:cancel-agent", {"sessionId": busy, "messageId": "agent-b1"})
    assert cancel["ok"]


# --- feedback -----------------------------------------------------------------------------------


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_feedback_from_two_users_is_aggregated_and_exported(env):
    alice, carol, mod = await env.client("alice"), await env.client("carol"), await env.client("mod")
    session = new_session()
    await join(alice, session, agent="gpt")
    await env.share(session, "carol")
    await join(carol, session)
    await join(mod, session)
    await first_reply(alice, session)
    ack = await rate(alice, session, "agent-m1", "down", comment="wrong")
    assert ack == {
        "ok": True,
        "sessionId": session,
        "messageId": "agent-m1",
        "rating": "down",
        "comment": "wrong",
        "feedback": {"up": 0, "down": 1},
    }
    ack = await rate(carol, session, "agent-m1", "up", comment='=HYPERLINK("http://x")')
    assert ack["feedback"] == {"up": 1, "down": 1} and ack["rating"] == "up"
    ack = await rate(alice, session, "agent-m1", "up", comment="better now")  # changed
    assert ack["feedback"] == {"up": 2, "down": 0}
    # Nothing is broadcast: ratings are evaluation data.
    assert not [e for e in mod.events if e["name"].startswith("chat:rat")]

    path = f"workspaces/{WS}/feedback/"
    status, body, _ = await env.api("mod", path, agent="gpt", session=session)
    assert status == 200, body
    rows = sorted(body["results"], key=lambda r: r["userId"])
    assert [(r["userId"], r["rating"], r["comment"], r["agentId"], r["messageId"], r["version"]) for r in rows] == [
        (USERS["alice"][0], "up", "better now", "gpt", "agent-m1", 1),
        (USERS["carol"][0], "up", '=HYPERLINK("http://x")', "gpt", "agent-m1", 1),
    ]
    assert all(r["workspaceId"] == WS and r["sessionId"] == session for r in rows)
    # Filters: another agent, a time range that excludes them, a rating.
    assert (await env.api("mod", path, agent="slow", session=session))[1]["results"] == []
    assert (await env.api("mod", path, session=session, since="2999-01-01T00:00:00Z"))[1]["results"] == []
    assert (await env.api("mod", path, session=session, until="2000-01-01T00:00:00Z"))[1]["results"] == []
    assert (await env.api("mod", path, session=session, rating="down"))[1]["results"] == []
    status, body, _ = await env.api("mod", path, session=session, limit="1")
    assert status == 200 and len(body["results"]) == 1 and body["next"]
    # CSV: the same rows, formula-looking cells defused.
    status, _, text = await env.api("mod", path, session=session, format="csv")
    assert status == 200
    exported = sorted(csv_rows(text), key=lambda r: r["userId"])
    assert [r["comment"] for r in exported] == ["better now", '\'=HYPERLINK("http://x")']
    assert {r["rating"] for r in exported} == {"up"} and {r["agentId"] for r in exported} == {"gpt"}
    # Members cannot export; another workspace's members get a 404 as for nothing there.
    assert (await env.api("alice", path))[0] == 403
    assert (await env.api("eve", path))[0] == 404
    # Clearing a rating.
    ack = await rate(carol, session, "agent-m1", None)
    assert ack["rating"] is None and ack["feedback"] == {"up": 1, "down": 0}
    assert len((await env.api("mod", path, session=session))[1]["results"]) == 1


async def test_hostile_ratings_and_regenerations(env):
    alice, carol, eve = await env.client("alice"), await env.client("carol"), await env.client("eve")
    session, elsewhere = new_session(), new_session()
    await join(alice, session, agent="gpt")
    await env.share(session, "carol")
    await join(carol, session)
    await first_reply(alice, session)
    await join(eve, elsewhere, workspace=OTHER_WS, agent="gpt")
    await first_reply(eve, elsewhere, key="e1")

    # A user's message, a reply of another workspace's session, a reply that does not exist: all not found.
    for target in ("m1", "agent-e1", "agent-nope"):
        ack = await rate(alice, session, target, "up")
        assert ack["ok"] is False and ack["code"] == "message_not_found", (target, ack)
        ack = await regenerate(alice, session, target, f"r-{target}")
        assert ack["ok"] is False and ack["code"] == "message_not_found", (target, ack)
    # Another workspace's session cannot even be named.
    for event in ("chat:rate-message", "chat:regenerate"):
        payload = {"sessionId": session, "workspaceId": WS, "messageId": "agent-m1", "rating": "up", "requestId": "x"}
        [ack] = await eve.call(event, payload)
        assert ack["ok"] is False and ack["code"] == "not_joined", ack
    # A huge comment, a made-up rating, a non-string: refused, nothing stored.
    for extra in ({"comment": "x" * 20_000}, {"rating": "meh"}, {"rating": True}, {"comment": 5}):
        ack = await rate(alice, session, "agent-m1", extra.pop("rating", "up"), **extra)
        assert ack["ok"] is False and ack["code"] == "invalid_payload", ack
    [ack] = await alice.call("chat:rate-message", {"sessionId": session, "messageId": "agent-m1"})
    assert ack["code"] == "invalid_payload"
    assert (await rate(carol, session, "agent-m1", "up"))["feedback"] == {"up": 1, "down": 0}
    # Regenerating someone else's reply: only its author, the session's owner and moderators may.
    ack = await regenerate(carol, session, "agent-m1", "r1")
    assert ack["ok"] is False and ack["code"] == "forbidden"
    for bad in ({"requestId": "no spaces"}, {"requestId": 7}, {"messageId": None}):
        [ack] = await alice.call(
            "chat:regenerate", {"sessionId": session, "messageId": "agent-m1", "requestId": "ok", **bad}
        )
        assert ack["ok"] is False and ack["code"] == "invalid_payload"
    # A muted member sets no agent to work.
    alice_name = USERS["alice"][0]
    assert await env.post("mod", f"workspaces/{WS}/members/{alice_name}/mute/", {"durationSeconds": 60}) == 200
    try:
        ack = await regenerate(alice, session, "agent-m1", "while-muted")
        assert ack["ok"] is False and ack["code"] == "muted", ack
    finally:
        assert await env.post("mod", f"workspaces/{WS}/members/{alice_name}/unmute/", {}) == 200
    # Nothing changed the reply.
    await asyncio.sleep(0.3)
    assert [m["version"] for m in await history(alice, session) if m["id"] == "agent-m1"] == [1]
    status, _, _ = await env.api("eve", f"workspaces/{WS}/sessions/{session}/messages/agent-m1/versions/")
    assert status == 404


# --- two server processes -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def regen_pair(module_server_factory, services_backend, model) -> tuple[ServerProcess, ServerProcess, dict[str, str]]:
    first = module_server_factory(services_backend, conformance=False, **SERVER_ENV)
    second = module_server_factory(services_backend, conformance=False, **SERVER_ENV)
    return first, second, setup_data(first, agents(model.url))


@pytest.mark.services
async def test_a_request_id_sent_to_two_server_processes_runs_once(regen_pair):
    first, second, tokens = regen_pair
    env = Env(first, tokens)
    try:
        alice = await env.client("alice", first)
        alice2 = await env.client("alice", second)
        session = new_session()
        await join(alice, session, agent="gpt")
        await join(alice2, session)
        await first_reply(alice, session)
        acks = await asyncio.gather(
            *(regenerate(client, session, "agent-m1", "twice") for client in (alice, alice2, alice, alice2))
        )
        assert all(ack["ok"] and ack["version"] == 2 for ack in acks), acks
        assert sorted(ack["duplicate"] for ack in acks) == [False, True, True, True]
        for client in (alice, alice2):
            await regenerated(client, "agent-m1", 2)
        await asyncio.sleep(0.5)
        for client in (alice, alice2):
            assert len(updates(client, "agent-m1")) == 1
            assert len([c for c in finals(client, "agent-m1") if c.get("version") == 2]) == 1
        status, body, _ = await env.api("alice", f"workspaces/{WS}/sessions/{session}/messages/agent-m1/versions/")
        assert status == 200 and body["version"] == 2 and len(body["results"]) == 1
    finally:
        await env.close()
