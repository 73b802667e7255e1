"""Agents end to end: real daphne servers, real Socket.IO clients, real HTTP providers.

Every test here runs on both backends (``embedded``: SQLite and the
in-memory channel layer; ``services``: PostgreSQL and Redis) except the
two-process test, which needs what two processes can share (``services``).

The fake OpenAI and Parlant servers of ``test_agents_backends.py`` run in a
thread of the test process; the chat server calls them over 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Iterator

import pytest

from chat.agents.backends.echo import echo_chunks
from tests.conftest import PYTHON, REPO_ROOT, ServerProcess
from tests.integration.clients import PyClient, until
from tests.integration.test_agents_backends import FakeOpenAI, FakeParlant, ThreadedServer

WORKSPACE = "agents-e2e"
STREAM = "chat:agent-stream-chunk"


# --- servers ----------------------------------------------------------------------------------


SETUP = """
import io, json
from django.core.management import call_command
spec = json.loads({spec!r})
tokens = {{}}
for user, (username, role) in spec["users"].items():
    out = io.StringIO()
    call_command("chat_token", username, workspace=spec["workspace"], role=role, create=True, stdout=out)
    tokens[user] = out.getvalue().strip()
for key, (backend, config) in spec["agents"].items():
    call_command("chat_agent", spec["workspace"], key, backend=backend, config=json.dumps(config), name=key.title(), stdout=io.StringIO())
print(json.dumps(tokens))
"""


def setup_data(server: ServerProcess, users: dict[str, str], agents: dict[str, tuple[str, dict]]) -> dict[str, str]:
    """Users (with API tokens) and agents in the server's database, through ``chat_token`` and ``chat_agent``."""
    users_spec = {user: (USERNAMES[user], role) for user, role in users.items()}
    spec = json.dumps({"workspace": WORKSPACE, "users": users_spec, "agents": agents})
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


USERS = {"alice": "member", "mod": "moderator"}
#: Usernames are global: these are ours, whatever other modules create in a shared database.
USERNAMES = {"alice": "agents_alice", "mod": "agents_mod"}
#: Generous limits: these tests send far more than a person would, and must not be rate limited.
SERVER_ENV = {
    "CHAT_MESSAGE_RATE_LIMIT": "100000",
    "CHAT_JOIN_RATE_LIMIT": "100000",
    "CHAT_TYPING_RATE_LIMIT": "100000",
    "CHAT_HISTORY_RATE_LIMIT": "100000",
    "CHAT_SPAM_MAX_REPEATS": "100000",
    "CHAT_CONNECTION_LIMIT": "1000",
}


@dataclass
class Fakes:
    openai: FakeOpenAI
    openai_cut: FakeOpenAI
    parlant: FakeParlant

    def agents(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return {
            "echo": ("echo", {"delay_ms": 10}),
            "slow": ("echo", {"delay_ms": 120}),
            "sleepy": ("echo", {"delay_ms": 100, "timeout_s": 0.4}),
            "gpt": ("openai", {"base_url": f"{self.openai.url}/v1", "model": "m", "api_keys": ["sk-rl-1", "sk-ok-2"]}),
            "gpt-down": ("openai", {"base_url": f"{self.openai.url}/v1", "model": "m", "api_key": "sk-down"}),
            "gpt-cut": ("openai", {"base_url": f"{self.openai_cut.url}/v1", "model": "m", "api_key": "sk-cut"}),
            "parlant": ("parlant", {"url": self.parlant.url, "agent_id": "ag_1", "wait_for_data_s": 5}),
            # A path the provider does not serve (404) and a closed port: what a port scan would try.
            "gpt-missing": ("openai", {"base_url": f"{self.openai.url}/nope", "model": "m", "api_key": "sk-missing"}),
            "gpt-closed": ("openai", {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": "sk-closed"}),
        }


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with ExitStack() as stack:
        openai = stack.enter_context(
            ThreadedServer(
                FakeOpenAI(reply="Hello from the model", delay_s=0.01, rate_limited={"sk-rl-1"}, failing={"sk-down"})
            )
        )
        cut = stack.enter_context(ThreadedServer(FakeOpenAI(reply="one two three four five six", cut_after=3)))
        parlant = stack.enter_context(ThreadedServer(FakeParlant(step_s=0.01)))
        yield Fakes(openai, cut, parlant)


@dataclass
class Env:
    server: ServerProcess
    tokens: dict[str, str]
    clients: list[PyClient] = field(default_factory=list)

    async def client(self, user: str, server: ServerProcess | None = None) -> PyClient:
        client = await PyClient().connect((server or self.server).url, "websocket", auth={"token": self.tokens[user]})
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        self.clients.clear()


@pytest.fixture(scope="module")
def agent_server(module_server_factory, module_backend, fakes) -> tuple[ServerProcess, dict[str, str]]:
    server = module_server_factory(module_backend, conformance=False, **SERVER_ENV)
    return server, setup_data(server, USERS, fakes.agents())


@pytest.fixture
async def env(agent_server) -> Iterator[Env]:
    environment = Env(*agent_server)
    yield environment
    await environment.close()


_counter = iter(range(10**6))


def new_session() -> str:
    return f"s{time.monotonic_ns()}-{next(_counter)}"


# --- client helpers -----------------------------------------------------------------------------


async def join(client: PyClient, session: str, agent: str | None = None) -> dict[str, Any]:
    payload = {"sessionId": session, "workspaceId": WORKSPACE}
    if agent:
        payload["agentId"] = agent
    [ack] = await client.call("chat:join-session", payload)
    assert ack["ok"], ack
    return ack


async def send(client: PyClient, session: str, key: str, content: str) -> dict[str, Any]:
    [ack] = await client.call("chat:send-message", {"message": {"id": key, "sessionId": session, "content": content}})
    assert ack["ok"], ack
    return ack


def chunks(client: PyClient, message_id: str) -> list[dict[str, Any]]:
    return [args[0] for args in client.received(STREAM) if args[0]["messageId"] == message_id]


def finals(client: PyClient, message_id: str) -> list[dict[str, Any]]:
    return [c for c in chunks(client, message_id) if c["isComplete"]]


def received(client: PyClient, message_id: str) -> list[dict[str, Any]]:
    return [args[0] for args in client.received("chat:message-received") if args[0]["id"] == message_id]


def system_notes(client: PyClient, in_reply_to: str) -> list[dict[str, Any]]:
    return [
        args[0]
        for args in client.received("chat:message-received")
        if args[0]["senderType"] == "system" and args[0]["metadata"].get("inReplyTo") == in_reply_to
    ]


async def finished(client: PyClient, message_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The final chunk of ``message_id``, once it and the stored message (if any) have arrived."""
    final = await until(lambda: finals(client, message_id), timeout)
    assert final, f"no final chunk for {message_id}; events: {client.events}"
    final = final[0]
    if "seq" in final:
        assert await until(lambda: received(client, message_id), timeout), "stored reply not broadcast"
    elif "error" in final:
        assert await until(lambda: system_notes(client, final["inReplyTo"]), timeout), "no system note"
    return final


def assert_complete_stream(stream: list[dict[str, Any]], *, first_index: int = 0) -> str:
    """Indices contiguous from ``first_index``, one final chunk, last; returns the text."""
    assert [c["index"] for c in stream] == list(range(first_index, first_index + len(stream)))
    assert [c["isComplete"] for c in stream] == [False] * (len(stream) - 1) + [True]
    assert all({"sessionId", "messageId", "chunk", "isComplete", "timestamp"} <= set(c) for c in stream)
    return "".join(c["chunk"] for c in stream)


async def history(client: PyClient, session: str) -> list[dict[str, Any]]:
    [ack] = await client.call("chat:request-history", {"sessionId": session, "limit": 200})
    assert ack["ok"], ack
    return client.received("chat:history-response")[-1][0]["messages"]


# --- streaming ----------------------------------------------------------------------------------


async def test_echo_reply_streams_in_order_to_everyone(env):
    alice, mod = await env.client("alice"), await env.client("mod")
    session = new_session()
    await join(alice, session, "echo")
    await join(mod, session)
    text = "one two three four five six seven"
    sent = await send(alice, session, "m1", text)
    for client in (alice, mod):
        final = await finished(client, "agent-m1")
        stream = chunks(client, "agent-m1")
        assert assert_complete_stream(stream) == "".join(echo_chunks(text))
        assert [c["chunk"] for c in stream[:-1]] == echo_chunks(text)
        assert final["seq"] == sent["seq"] + 1 and final["inReplyTo"] == "m1"
        [stored] = received(client, "agent-m1")
        assert stored["senderType"] == "agent" and stored["content"] == "Echo: " + text
        assert stored["seq"] == final["seq"] and stored["userName"] == "Echo"
        # Typing on before the first chunk, off before the final one; the stored message last.
        names = [(e["name"], e["args"][0].get("isTyping"), e["args"][0].get("isComplete")) for e in client.events]
        first_chunk = next(i for i, n in enumerate(names) if n[0] == STREAM)
        typing_on = names.index(("chat:typing-indicator", True, None))
        typing_off = names.index(("chat:typing-indicator", False, None))
        final_at = names.index((STREAM, None, True))
        assert typing_on < first_chunk < typing_off < final_at < len(names) - 1
        assert names[-1][0] == "chat:message-received"
    assert [(m["id"], m["seq"], m["senderType"]) for m in await history(mod, session)] == [
        ("m1", 1, "user"),
        ("agent-m1", 2, "agent"),
    ]


def as_shown(stream: list[dict[str, Any]]) -> tuple[str, list[int], int | None]:
    """What a client shows of a reply from the chunks it received, by the rule of docs/protocol.md
    ("Resuming a streaming reply"): the text, the indexes it holds, in order, and the final chunk's index."""
    text, held, final = "", [], None
    for chunk in stream:
        if chunk["isComplete"]:
            final = chunk["index"]
        elif chunk.get("catchUp"):
            if chunk["index"] >= (held[-1] if held else -1):  # it includes every chunk held so far
                text, held = chunk["chunk"], list(range(chunk["index"] + 1))
        elif chunk["index"] <= (held[-1] if held else -1):
            continue  # already held (a catch-up included it)
        else:
            text, held = text + chunk["chunk"], [*held, chunk["index"]]
    return text, held, final


def catch_ups(client: PyClient, message_id: str) -> list[dict[str, Any]]:
    return [c for c in chunks(client, message_id) if c.get("catchUp")]


async def test_a_late_joiner_ends_with_the_same_reply_and_index_sequence(env):
    alice, late = await env.client("alice"), await env.client("mod")
    session = new_session()
    await join(alice, session, "slow")
    text = " ".join(f"word{i}" for i in range(30))  # about 3.5 s of streaming
    await send(alice, session, "m1", text)
    assert await until(lambda: len(chunks(alice, "agent-m1")) >= 4, 10)
    ack = await join(late, session)
    assert ack["lastSeq"] == 1  # the reply is not stored yet
    for client in (alice, late):
        await finished(client, "agent-m1")
    # The joiner got what it missed as one catch-up (the text so far), then the rest live.
    [catch_up] = catch_ups(late, "agent-m1")
    assert catch_up["index"] >= 3 and catch_up["chunk"].startswith("Echo: word0 word1")
    assert catch_ups(alice, "agent-m1") == []
    shown = as_shown(chunks(alice, "agent-m1"))
    assert shown[0] == "".join(echo_chunks(text)) and shown[1] == list(range(shown[2]))
    assert as_shown(chunks(late, "agent-m1")) == shown
    [stored] = received(late, "agent-m1")
    assert stored["content"] == "Echo: " + text
    assert [m["id"] for m in await history(late, session)] == ["m1", "agent-m1"]


async def test_a_reconnecting_client_ends_with_the_same_reply(env):
    alice, mod = await env.client("alice"), await env.client("mod")
    session = new_session()
    await join(alice, session, "slow")
    await join(mod, session)
    text = " ".join(f"word{i}" for i in range(30))  # about 3.5 s of streaming
    await send(alice, session, "m1", text)
    assert await until(lambda: len(chunks(mod, "agent-m1")) >= 3, 10)
    await mod.sio.disconnect()
    had = len(chunks(mod, "agent-m1"))
    # The reply goes on while mod is away: it misses at least three chunks.
    assert await until(lambda: len(chunks(alice, "agent-m1")) >= had + 3, 10)
    await mod.connect(env.server.url, "websocket", auth={"token": env.tokens["mod"]})
    await join(mod, session)
    for client in (alice, mod):
        await finished(client, "agent-m1")
    [catch_up] = catch_ups(mod, "agent-m1")
    assert catch_up["index"] >= had + 2
    shown = as_shown(chunks(alice, "agent-m1"))
    assert shown[0] == "".join(echo_chunks(text)) and shown[1] == list(range(shown[2]))
    assert as_shown(chunks(mod, "agent-m1")) == shown


async def test_cancel_mid_stream_stores_the_reply_as_far_as_it_got(env):
    alice, mod = await env.client("alice"), await env.client("mod")
    session = new_session()
    await join(alice, session, "slow")
    await join(mod, session)
    await send(alice, session, "m1", " ".join(f"word{i}" for i in range(40)))
    assert await until(lambda: len(chunks(mod, "agent-m1")) >= 3, 10)
    [ack] = await mod.call("chat:cancel-agent", {"sessionId": session, "messageId": "agent-m1"})
    assert ack == {"ok": True, "sessionId": session, "messageId": "agent-m1", "inReplyTo": "m1", "status": "cancelling"}
    for client in (alice, mod):
        final = await finished(client, "agent-m1")
        assert final["cancelled"] is True and "error" not in final
        text = assert_complete_stream(chunks(client, "agent-m1"))
        [stored] = received(client, "agent-m1")
        assert stored["content"] == text and stored["metadata"]["cancelled"] is True
        assert stored["metadata"]["cancelledBy"] == USERNAMES["mod"] and stored["seq"] == final["seq"]
        assert text.startswith("Echo: word0") and "word39" not in text
    # Cancelling again: it is over.
    [again] = await alice.call("chat:cancel-agent", {"sessionId": session, "messageId": "m1"})
    assert again["ok"] is False and again["code"] == "agent_run_finished"
    assert alice.received("chat:cancel-agent-error")[-1][0]["code"] == "agent_run_finished"
    [unknown] = await alice.call("chat:cancel-agent", {"sessionId": session, "messageId": "nope"})
    assert unknown["code"] == "agent_run_not_found"
    [elsewhere] = await alice.call("chat:cancel-agent", {"sessionId": "not-joined", "messageId": "m1"})
    assert elsewhere["code"] == "not_joined"


async def test_the_author_cancels_a_queued_reply_before_it_starts(env):
    alice = await env.client("alice")
    session = new_session()
    await join(alice, session, "slow")
    await send(alice, session, "m1", "the first reply takes a while to finish " * 4)  # about 3.5 s
    await send(alice, session, "m2", "second")
    [ack] = await alice.call("chat:cancel-agent", {"sessionId": session, "messageId": "m2"})
    assert ack["ok"] and ack["status"] == "cancelled" and ack["messageId"] == "agent-m2"
    await finished(alice, "agent-m1")
    assert chunks(alice, "agent-m2") == [finals(alice, "agent-m2")[0]]
    assert finals(alice, "agent-m2")[0]["cancelled"] is True
    await asyncio.sleep(0.3)
    assert [m["id"] for m in await history(alice, session)] == ["m1", "m2", "agent-m1"]


# --- failures -----------------------------------------------------------------------------------


async def test_timeout_ends_the_stream_with_an_error_and_the_session_stays_usable(env):
    alice = await env.client("alice")
    session = new_session()
    await join(alice, session, "sleepy")
    await send(alice, session, "m1", "this reply is much too slow to finish in time")
    final = await finished(alice, "agent-m1")
    assert final["error"]["code"] == "timeout" and final["isComplete"] is True
    assert_complete_stream(chunks(alice, "agent-m1"))
    [note] = system_notes(alice, "m1")
    assert "could not answer" in note["content"] and note["metadata"]["error"] == "timeout"
    assert ("chat:typing-indicator", False) in [(e["name"], e["args"][0].get("isTyping")) for e in alice.events]
    # Still usable: messages are stored and the next run happens.
    await send(alice, session, "m2", "hi")
    assert "seq" in await finished(alice, "agent-m2")  # short enough to finish in time
    assert [m["senderType"] for m in await history(alice, session)] == ["user", "system", "user", "agent"]


async def test_backend_errors_end_the_stream_with_an_error(env, fakes):
    alice = await env.client("alice")
    down, cut = new_session(), new_session()
    await join(alice, down, "gpt-down")
    await join(alice, cut, "gpt-cut")
    await send(alice, down, "d1", "anyone there?")
    await send(alice, cut, "c1", "tell me something")
    final = await finished(alice, "agent-d1")
    assert final["error"]["code"] == "upstream_error" and chunks(alice, "agent-d1") == [final]
    assert "sk-down" not in json.dumps(alice.events)
    final = await finished(alice, "agent-c1")
    assert final["error"]["code"] == "stream_interrupted"
    assert assert_complete_stream(chunks(alice, "agent-c1")) == "one two three"
    assert [m["senderType"] for m in await history(alice, cut)] == ["user", "system"]


async def test_agent_errors_shown_to_clients_are_codes(env, fakes):
    """No upstream status, exception type, host or port reaches the session: a code and a fixed sentence."""
    alice = await env.client("alice")
    answers = {}
    for agent in ("gpt-missing", "gpt-closed", "gpt-down"):
        session = new_session()
        await join(alice, session, agent)
        await send(alice, session, f"{agent}-m", "hello?")
        answers[agent] = await finished(alice, f"agent-{agent}-m")
    assert {agent: final["error"]["code"] for agent, final in answers.items()} == {
        "gpt-missing": "upstream_error",
        "gpt-closed": "backend_unreachable",
        "gpt-down": "upstream_error",
    }
    # A 404 and a 503 read the same: the sentence says nothing a scan could tell apart.
    reasons = {agent: final["error"]["message"].split(": ", 1)[1] for agent, final in answers.items()}
    assert reasons["gpt-missing"] == reasons["gpt-down"] == "its provider answered with an error."
    notes = [note for agent in answers for note in system_notes(alice, f"{agent}-m")]
    shown = json.dumps([final["error"] for final in answers.values()] + [note["content"] for note in notes])
    assert len(notes) == 3
    port = fakes.openai.url.rsplit(":", 1)[1]
    for leak in ("HTTP", "404", "503", "Error)", "ClientConnector", "127.0.0.1", port, ":9/", "sk-"):
        assert leak not in shown, leak


async def test_openai_backend_end_to_end_with_key_rotation(env, fakes):
    alice = await env.client("alice")
    session = new_session()
    await join(alice, session, "gpt")
    before = len(fakes.openai.requests)
    await send(alice, session, "m1", "hello model")
    final = await finished(alice, "agent-m1")
    assert assert_complete_stream(chunks(alice, "agent-m1")) == "Hello from the model" and final["seq"] == 2
    tried = [(r.key, r.status) for r in fakes.openai.requests[before:]]
    assert tried == [("sk-rl-1", 429), ("sk-ok-2", 200)] or tried == [("sk-ok-2", 200)]
    await send(alice, session, "m2", "and again")
    await finished(alice, "agent-m2")
    sent = fakes.openai.requests[-1].body["messages"]
    assert [m["content"] for m in sent] == ["hello model", "Hello from the model", "and again"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]


async def test_parlant_backend_end_to_end(env, fakes):
    alice = await env.client("alice")
    session = new_session()
    await join(alice, session, "parlant")
    sessions_before = len(fakes.parlant.session_requests)
    await send(alice, session, "m1", "where is my order?")
    await finished(alice, "agent-m1")
    assert assert_complete_stream(chunks(alice, "agent-m1")) == "Parlant heard: where is my order?"
    typing = [e["args"][0]["isTyping"] for e in alice.events if e["name"] == "chat:typing-indicator"]
    assert typing[0] is True and typing[-1] is False
    await send(alice, session, "m2", "thanks")
    await finished(alice, "agent-m2")
    assert len(fakes.parlant.session_requests) == sessions_before + 1  # one Parlant session per chat session
    assert [m["content"] for m in await history(alice, session)][-1] == "Parlant heard: thanks"


# --- exactly once, isolation --------------------------------------------------------------------


async def test_resent_message_ids_trigger_one_run(env):
    alice, mod = await env.client("alice"), await env.client("mod")
    session = new_session()
    await join(alice, session, "echo")
    await join(mod, session)
    await send(alice, session, "m1", "only once please")
    for client in (alice, alice, mod):
        assert (await send(client, session, "m1", "only once please"))["duplicate"] is True
    await finished(alice, "agent-m1")
    await asyncio.sleep(0.5)
    for client in (alice, mod):
        assert len(finals(client, "agent-m1")) == 1 and len(received(client, "agent-m1")) == 1
        assert_complete_stream(chunks(client, "agent-m1"))
    assert [m["id"] for m in await history(alice, session)] == ["m1", "agent-m1"]


async def test_a_running_agent_blocks_neither_the_socket_nor_other_sessions(env):
    alice = await env.client("alice")
    slow, fast = new_session(), new_session()
    await join(alice, slow, "slow")
    await join(alice, fast, "echo")
    await send(alice, slow, "a1", " ".join(["slowly"] * 30))  # about 3.7 s of streaming
    assert await until(lambda: chunks(alice, "agent-a1"), 10)
    # The same socket's events are answered while its session's agent streams...
    await history(alice, slow)
    [ack] = await alice.call("chat:typing", {"sessionId": slow, "isTyping": True})
    assert ack["ok"] and not finals(alice, "agent-a1"), "the socket waited for the agent"
    # ...and another session's agent answers without waiting for it.
    await send(alice, fast, "b1", "quick one")
    await finished(alice, "agent-b1")
    assert not finals(alice, "agent-a1"), "the other session's reply waited for the slow one"
    await finished(alice, "agent-a1", timeout=20)


@pytest.fixture(scope="module")
def server_pair(module_server_factory, services_backend) -> tuple[ServerProcess, ServerProcess, dict[str, str]]:
    """Two server processes sharing PostgreSQL and Redis, as two workers behind a load balancer."""
    first = module_server_factory(services_backend, conformance=False, **SERVER_ENV)
    second = module_server_factory(services_backend, conformance=False, **SERVER_ENV)
    agents = {"echo": ("echo", {"delay_ms": 10}), "slow": ("echo", {"delay_ms": 120})}
    return first, second, setup_data(first, USERS, agents)


@pytest.fixture
async def pair_env(server_pair) -> Iterator[tuple[Env, ServerProcess, ServerProcess]]:
    first, second, tokens = server_pair
    environment = Env(first, tokens)
    yield environment, first, second
    await environment.close()


@pytest.mark.services
async def test_exactly_once_with_two_server_processes_and_resends(pair_env):
    env, first, second = pair_env
    alice = await env.client("alice", first)
    mod = await env.client("mod", second)
    session = new_session()
    await join(alice, session, "echo")
    await join(mod, session)
    ids = [f"m{i}" for i in range(1, 7)]

    async def send_all(client: PyClient, keys: list[str]) -> None:
        for key in keys:
            await send(client, session, key, f"message {key} with a few words")

    # Every id is sent through both processes at about the same time, plus mod's own messages.
    await asyncio.gather(send_all(alice, ids), send_all(mod, ids), send_all(mod, ["n1", "n2"]))
    replies = [f"agent-{key}" for key in [*ids, "n1", "n2"]]
    for client in (alice, mod):
        for reply in replies:
            await finished(client, reply, timeout=20)
    await asyncio.sleep(0.5)
    for client in (alice, mod):
        for reply in replies:
            assert len(finals(client, reply)) == 1, reply
            assert len(received(client, reply)) == 1, reply
            assert_complete_stream(chunks(client, reply))
    stored = await history(alice, session)
    users = [m for m in stored if m["senderType"] == "user"]
    agents = [m for m in stored if m["senderType"] == "agent"]
    assert sorted(m["id"] for m in users) == sorted([*ids, "n1", "n2"])
    # One reply per message, stored in the order of the messages they answer.
    assert [m["id"] for m in agents] == [f"agent-{m['id']}" for m in users]
    assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1))


@pytest.mark.services
async def test_cancel_reaches_the_run_on_another_server_process(pair_env):
    env, first, second = pair_env
    alice = await env.client("alice", first)
    mod = await env.client("mod", second)
    session = new_session()
    await join(alice, session, "slow")
    await join(mod, session)
    # The hook runs where alice's message arrives: the first process runs the reply.
    await send(alice, session, "m1", " ".join(f"w{i}" for i in range(40)))
    assert await until(lambda: len(chunks(mod, "agent-m1")) >= 2, 10)
    [ack] = await mod.call("chat:cancel-agent", {"sessionId": session, "messageId": "agent-m1"})
    assert ack["ok"] and ack["status"] == "cancelling"
    final = await finished(mod, "agent-m1")
    assert final["cancelled"] is True
    await finished(alice, "agent-m1")
    text = assert_complete_stream(chunks(alice, "agent-m1"))
    # Stopped well before the end: the cancel crossed processes at once, not at the next lease renewal.
    assert "w39" not in text and len(chunks(alice, "agent-m1")) < 30
    assert received(alice, "agent-m1")[0]["metadata"]["cancelled"] is True


@pytest.mark.services
async def test_a_late_joiner_on_another_server_process_gets_the_same_reply(pair_env):
    env, first, second = pair_env
    alice = await env.client("alice", first)
    late = await env.client("mod", second)
    session = new_session()
    await join(alice, session, "slow")
    # The reply runs on the first process; the joiner's catch-up comes from there.
    text = " ".join(f"word{i}" for i in range(30))
    await send(alice, session, "m1", text)
    assert await until(lambda: len(chunks(alice, "agent-m1")) >= 4, 10)
    await join(late, session)
    for client in (alice, late):
        await finished(client, "agent-m1")
    [catch_up] = catch_ups(late, "agent-m1")
    assert catch_up["index"] >= 3
    shown = as_shown(chunks(alice, "agent-m1"))
    assert shown[0] == "".join(echo_chunks(text)) and shown[1] == list(range(shown[2]))
    assert as_shown(chunks(late, "agent-m1")) == shown


# --- the operator's outbound policy -------------------------------------------------------------

ROW = """
import json
from chat.models import Agent, Workspace
spec = json.loads({spec!r})
Agent.objects.update_or_create(
    workspace=Workspace.objects.get(slug=spec["workspace"]), key=spec["key"],
    defaults={{"name": spec["key"], "backend": "openai", "config": spec["config"]}},
)
"""


def manage(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=REPO_ROOT, env=server.env, capture_output=True, text=True, timeout=120
    )


async def test_moderator_cannot_point_an_agent_at_loopback_even_through_a_stored_config(server_factory, backend, fakes):
    """With the operator's defaults, an agent aimed at 127.0.0.1 is refused when saved and never calls it when run."""
    server = server_factory(
        backend,
        conformance=False,
        CHAT_AGENT_ALLOWED_HOSTS=None,
        CHAT_AGENT_ALLOW_PRIVATE_NETWORKS=None,
        **SERVER_ENV,
    )
    tokens = setup_data(server, {"alice": "member"}, {"echo": ("echo", {})})
    config = {"base_url": f"{fakes.openai.url}/v1", "model": "m", "api_key": "sk-ok-2"}
    refused = manage(server, "chat_agent", WORKSPACE, "loopback", "--backend", "openai", "--config", json.dumps(config))
    assert refused.returncode != 0 and "CHAT_AGENT_ALLOWED_HOSTS" in refused.stderr
    # A row saved before the policy existed (or written around it) is checked again when it runs.
    spec = json.dumps({"workspace": WORKSPACE, "key": "loopback", "config": config})
    done = manage(server, "shell", "-c", ROW.format(spec=spec))
    assert done.returncode == 0, done.stderr
    environment = Env(server, tokens)
    try:
        alice = await environment.client("alice")
        session = new_session()
        await join(alice, session, "loopback")
        before = len(fakes.openai.requests)
        await send(alice, session, "l1", "fetch the secrets")
        final = await finished(alice, "agent-l1")
        assert final["error"]["code"] == "agent_misconfigured"
        assert len(fakes.openai.requests) == before
    finally:
        await environment.close()
