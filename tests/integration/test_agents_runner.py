"""The agent runner in-process, against the test database: runs, queueing, outcomes, leases.

``chat.notify.to_session`` is replaced by a recorder, so these tests see
exactly what the session would be told, in order, without sockets.  The
end-to-end behaviour with real clients and servers is in
``test_agents_e2e.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from chat import notify
from chat.agents import runner as runner_module
from chat.agents import runs
from chat.agents.backends.echo import echo_chunks
from chat.agents.errors import AgentRunFinished, AgentRunNotFound
from chat.errors import PermissionDenied
from chat.models import (
    Agent,
    AgentRun,
    AgentRunStatus,
    ChatMessage,
    ChatSession,
    Membership,
    Role,
    Workspace,
)
from chat.services import messages

pytestmark = pytest.mark.django_db(transaction=True)


class Told:
    """Everything announced to sessions, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    async def __call__(
        self, workspace: str, session: str, event: str, payload: dict[str, Any], *, exclude=(), seq=None
    ) -> None:
        self.events.append((session, event, payload))

    def of(self, event: str, session: str | None = None) -> list[dict[str, Any]]:
        return [p for s, e, p in self.events if e == event and (session is None or s == session)]

    def chunks(self, session: str | None = None, message_id: str | None = None) -> list[dict[str, Any]]:
        return [
            p for p in self.of("chat:agent-stream-chunk", session) if message_id is None or p["messageId"] == message_id
        ]

    def finals(self, session: str | None = None) -> list[dict[str, Any]]:
        return [p for p in self.chunks(session) if p["isComplete"]]


@pytest.fixture
def told(monkeypatch) -> Told:
    recorder = Told()
    monkeypatch.setattr(notify, "to_session", recorder)
    return recorder


@pytest.fixture
async def runner():
    yield runner_module.runner
    await runner_module.runner.stop()


@dataclasses.dataclass
class World:
    workspace: Workspace
    alice: Any
    bob: Any
    mod: Any
    echo: Agent

    def session(self, key: str, agent: Agent | None = None, owner: Any = None) -> ChatSession:
        session = ChatSession.objects.create(
            workspace=self.workspace, key=key, agent=agent or self.echo, created_by=owner or self.alice
        )
        session.shared_with.add(self.bob)
        return session

    def agent(self, key: str, backend: str = "echo", **config: Any) -> Agent:
        return Agent.objects.create(workspace=self.workspace, key=key, name=key.title(), backend=backend, config=config)


@pytest.fixture
def world() -> World:
    User = get_user_model()
    workspace = Workspace.objects.create(slug="acme", name="Acme")
    alice, bob, mod = (User.objects.create_user(name) for name in ("alice", "bob", "mod"))
    Membership.objects.create(user=alice, workspace=workspace, role=Role.MEMBER)
    Membership.objects.create(user=bob, workspace=workspace, role=Role.MEMBER)
    Membership.objects.create(user=mod, workspace=workspace, role=Role.MODERATOR)
    echo = Agent.objects.create(workspace=workspace, key="echo", name="Echo", backend="echo", config={"delay_ms": 1})
    return World(workspace, alice, bob, mod, echo)


@database_sync_to_async
def send(session: ChatSession, user: Any, key: str, content: str) -> int:
    return messages.store_message(session.pk, messages.Sender.for_user(user), key, content).message.pk


async def say(session: ChatSession, user: Any, key: str, content: str) -> int | None:
    """Store a user message and call the hook, as ``chat:send-message`` does."""
    pk = await send(session, user, key, content)
    return await runner_module.on_user_message(session.pk, pk)


@database_sync_to_async
def history(session: ChatSession) -> list[ChatMessage]:
    return list(ChatMessage.objects.filter(session=session).order_by("seq"))


@database_sync_to_async
def run_of(key: str) -> AgentRun:
    return AgentRun.objects.get(message__key=key)


async def until(check, timeout: float = 5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


# --- the happy path -------------------------------------------------------------------------


async def test_a_user_message_gets_one_streamed_and_stored_reply(world, told, runner):
    session = await database_sync_to_async(world.session)("s1")
    run_id = await say(session, world.alice, "m1", "hello agent world")
    # The hook again (a resend, another worker): still one run.
    pk = await database_sync_to_async(lambda: ChatMessage.objects.get(key="m1").pk)()
    assert await runner_module.on_user_message(session.pk, pk) == run_id
    await runner.idle()

    expected = echo_chunks("hello agent world")
    chunks = told.chunks("s1")
    assert [c["chunk"] for c in chunks[:-1]] == expected
    assert [c["index"] for c in chunks] == list(range(len(expected) + 1))
    assert {c["messageId"] for c in chunks} == {"agent-m1"}
    final = chunks[-1]
    assert final["isComplete"] and final["chunk"] == "" and "error" not in final
    assert all(not c["isComplete"] for c in chunks[:-1])
    assert set(chunks[0]) >= {"sessionId", "messageId", "chunk", "isComplete", "timestamp"}

    stored = await history(session)
    assert [(m.key, m.seq, m.sender_type) for m in stored] == [("m1", 1, "user"), ("agent-m1", 2, "agent")]
    assert stored[1].content == "".join(expected) and stored[1].agent_id == world.echo.pk
    assert stored[1].metadata == {"agentId": "echo", "inReplyTo": "m1", "agentRun": "completed"}
    assert final["seq"] == 2

    # Order of what the session is told: typing on, chunks, typing off, final chunk, the stored message.
    names = [e for s, e, p in told.events]
    assert names[0] == "chat:typing-indicator" and told.events[0][2]["isTyping"] is True
    assert told.events[0][2]["senderType"] == "agent" and told.events[0][2]["agentId"] == "echo"
    assert names[-3:] == ["chat:typing-indicator", "chat:agent-stream-chunk", "chat:message-received"]
    assert told.events[-3][2]["isTyping"] is False
    assert told.of("chat:message-received")[0]["id"] == "agent-m1"
    assert (await run_of("m1")).status == AgentRunStatus.COMPLETED


async def test_no_agent_no_run_and_agent_messages_trigger_nothing(world, told, runner):
    plain = await database_sync_to_async(lambda: ChatSession.objects.create(workspace=world.workspace, key="plain"))()
    assert await say(plain, world.alice, "p1", "anyone?") is None
    session = await database_sync_to_async(world.session)("s2")
    await say(session, world.alice, "m1", "hi")
    await runner.idle()
    reply = await database_sync_to_async(lambda: ChatMessage.objects.get(key="agent-m1"))()
    assert await runner_module.on_user_message(session.pk, reply.pk) is None
    assert await database_sync_to_async(AgentRun.objects.count)() == 1


async def test_runs_of_a_session_are_queued_in_order(world, told, runner):
    session = await database_sync_to_async(world.session)("s3")
    for i in range(1, 5):
        await say(session, world.alice if i % 2 else world.bob, f"m{i}", f"message {i} " + "word " * 5)
    await runner.idle()
    stored = await history(session)
    seq = {m.key: m.seq for m in stored}
    replies = [m.key for m in stored if m.sender_type == "agent"]
    assert replies == ["agent-m1", "agent-m2", "agent-m3", "agent-m4"]
    assert all(seq[f"agent-m{i}"] > seq[f"m{i}"] for i in range(1, 5))
    # Chunks of one reply never interleave with another's.
    ids = [c["messageId"] for c in told.chunks("s3")]
    assert ids == sorted(ids, key=lambda k: int(k[len("agent-m") :]))


async def test_sessions_do_not_wait_for_each_other(world, told, runner):
    slow = await database_sync_to_async(world.agent)("slow", delay_ms=200)
    a = await database_sync_to_async(world.session)("slow-session", slow)
    b = await database_sync_to_async(world.session)("fast-session")
    await say(a, world.alice, "a1", "one two three four five six")
    await say(b, world.alice, "b1", "quick")
    await until(lambda: told.finals("fast-session"))
    assert not told.finals("slow-session"), "the fast session waited for the slow one"
    await runner.idle()


# --- failures, timeouts, cancelling ---------------------------------------------------------------


async def test_timeout_ends_the_stream_with_an_error_and_a_system_message(world, told, runner):
    agent = await database_sync_to_async(world.agent)("sleepy", delay_ms=100, timeout_s=0.25)
    session = await database_sync_to_async(world.session)("s4", agent)
    await say(session, world.alice, "m1", "a b c d e f g h")
    await runner.idle()
    final = told.finals("s4")[-1]
    assert final["error"]["code"] == "timeout" and final["isComplete"]
    assert 0 < final["index"] < 9
    stored = await history(session)
    assert [(m.key, m.sender_type) for m in stored] == [("m1", "user"), ("agent-m1-error", "system")]
    assert "could not answer" in stored[1].content and stored[1].metadata["error"] == "timeout"
    assert (await run_of("m1")).status == AgentRunStatus.TIMED_OUT
    # The session is still usable: the next message gets its run.
    await database_sync_to_async(Agent.objects.filter(pk=agent.pk).update)(config={"delay_ms": 1})
    await say(session, world.alice, "m2", "again")
    await runner.idle()
    assert (await run_of("m2")).status == AgentRunStatus.COMPLETED


async def test_default_timeout_comes_from_settings(world, told, runner, monkeypatch):
    monkeypatch.setattr(settings, "CHAT", dataclasses.replace(settings.CHAT), raising=False)
    object.__setattr__(settings.CHAT, "agent_timeout_s", 0.2)
    assert runner_module.run_timeout_s({}) == 0.2
    assert runner_module.run_timeout_s({"timeout_s": 3}) == 3


async def test_backend_misconfiguration_fails_cleanly(world, told, runner):
    agent = await database_sync_to_async(world.agent)("broken", backend="nope")
    session = await database_sync_to_async(world.session)("s5", agent)
    await say(session, world.alice, "m1", "hi")
    await runner.idle()
    assert told.finals("s5")[-1]["error"]["code"] == "agent_misconfigured"
    assert (await history(session))[-1].sender_type == "system"


async def test_cancel_a_running_reply_stores_it_as_far_as_it_got(world, told, runner):
    slow = await database_sync_to_async(world.agent)("slow", delay_ms=60)
    session = await database_sync_to_async(world.session)("s6", slow)
    await say(session, world.alice, "m1", " ".join(f"w{i}" for i in range(30)))
    await until(lambda: len(told.chunks("s6")) >= 3)
    request = await runner_module.cancel(session.pk, "agent-m1", world.alice, False)
    assert request.status == "cancelling"
    await runner.idle()
    final = told.finals("s6")[-1]
    assert final["cancelled"] is True and "error" not in final
    sent = "".join(c["chunk"] for c in told.chunks("s6") if not c["isComplete"])
    stored = (await history(session))[-1]
    assert stored.key == "agent-m1" and stored.content == sent and len(sent) < len("Echo: " + "w0 " * 30)
    assert stored.metadata["cancelled"] is True and stored.metadata["cancelledBy"] == "alice"
    assert final["seq"] == stored.seq
    assert (await run_of("m1")).status == AgentRunStatus.CANCELLED
    with pytest.raises(AgentRunFinished):
        await runner_module.cancel(session.pk, "m1", world.alice, False)


async def test_cancel_a_queued_reply_and_who_may_cancel(world, told, runner):
    slow = await database_sync_to_async(world.agent)("slow", delay_ms=40)
    session = await database_sync_to_async(world.session)("s7", slow)
    await say(session, world.alice, "m1", "one two three four five")
    await say(session, world.bob, "m2", "second")
    with pytest.raises(AgentRunNotFound):
        await runner_module.cancel(session.pk, "nothing", world.alice, False)
    # bob wrote m2, alice owns the session: both may; an outsider may not.
    outsider = await database_sync_to_async(get_user_model().objects.create_user)("eve")
    with pytest.raises(PermissionDenied):
        await runner_module.cancel(session.pk, "m2", outsider, False)
    request = await runner_module.cancel(session.pk, "m2", world.bob, False)
    assert request.status == "cancelled" and request.ticket.reply_key == "agent-m2"
    await runner.idle()
    assert [c for c in told.chunks("s7", "agent-m2")] == [told.finals("s7")[0]]
    assert told.finals("s7")[0]["cancelled"] is True
    stored = await history(session)
    assert [m.key for m in stored] == ["m1", "m2", "agent-m1"]
    # A moderator may cancel anyone's reply.
    await say(session, world.alice, "m3", " ".join(["x"] * 40))
    await until(lambda: told.chunks("s7", "agent-m3"))
    assert (await runner_module.cancel(session.pk, "agent-m3", world.mod, True)).status == "cancelling"
    await runner.idle()
    assert (await run_of("m3")).cancelled_by == "mod"


async def test_cancel_reaches_the_run_through_its_worker_channel(world, told, runner):
    """A cancel handled elsewhere arrives as a channel-layer message on the running worker's channel."""
    slow = await database_sync_to_async(world.agent)("slow", delay_ms=50)
    session = await database_sync_to_async(world.session)("s8", slow)
    await say(session, world.alice, "m1", " ".join(["x"] * 40))
    await until(lambda: len(told.chunks("s8")) >= 2)
    run = await run_of("m1")
    assert run.worker_channel == runner.channel
    await runner.layer.send(run.worker_channel, {"type": runner_module.CANCEL_MESSAGE, "run": run.pk})
    await runner.idle()
    assert told.finals("s8")[-1].get("cancelled") is True


# --- leases and recovery --------------------------------------------------------------------------


async def test_a_run_whose_worker_died_is_failed_and_the_queue_moves_on(world, told, runner):
    session = await database_sync_to_async(world.session)("s9")
    m1 = await send(session, world.alice, "m1", "lost one")

    def dead_worker_claimed_it():
        run_id, _ = runs.create_run(session.pk, m1)
        AgentRun.objects.filter(pk=run_id).update(
            status=AgentRunStatus.RUNNING,
            worker_id="dead-worker",
            lease_expires_at=timezone.now() - timedelta(seconds=1),
            started_at=timezone.now() - timedelta(seconds=40),
        )

    await database_sync_to_async(dead_worker_claimed_it)()
    await say(session, world.alice, "m2", "next one")
    await runner.idle()
    assert (await run_of("m1")).status == AgentRunStatus.FAILED and (await run_of("m1")).error == "worker_lost"
    assert told.finals("s9")[0]["error"]["code"] == "worker_lost"
    stored = await history(session)
    assert [(m.key, m.sender_type) for m in stored] == [
        ("m1", "user"),
        ("m2", "user"),
        ("agent-m1-error", "system"),
        ("agent-m2", "agent"),
    ]


async def test_a_live_lease_elsewhere_keeps_the_queue_waiting(world, told, runner):
    session = await database_sync_to_async(world.session)("s10")
    m1 = await send(session, world.alice, "m1", "held elsewhere")

    def other_worker_runs_it():
        run_id, _ = runs.create_run(session.pk, m1)
        AgentRun.objects.filter(pk=run_id).update(
            status=AgentRunStatus.RUNNING, worker_id="other", lease_expires_at=timezone.now() + timedelta(seconds=30)
        )
        return run_id

    run_id = await database_sync_to_async(other_worker_runs_it)()
    await say(session, world.alice, "m2", "waits")
    await runner.idle()
    assert (await run_of("m2")).status == AgentRunStatus.PENDING
    assert await database_sync_to_async(runs.sessions_needing_attention)() == []
    # The other worker finishes: it drains the queue (here: we do, as it would).
    await database_sync_to_async(AgentRun.objects.filter(pk=run_id).update)(status=AgentRunStatus.COMPLETED)
    runner.kick(session.pk)
    await runner.idle()
    assert (await run_of("m2")).status == AgentRunStatus.COMPLETED


def test_claims_are_exclusive_and_ordered(world):
    session = world.session("s11")
    ids = [
        messages.store_message(session.pk, messages.Sender.for_user(world.alice), f"m{i}", "x").message.pk
        for i in (1, 2)
    ]
    for pk in ids:
        runs.create_run(session.pk, pk)
    first = runs.claim_next(session.pk, "w1", "c1", 30)
    assert first.kind == runs.ClaimKind.RUN and first.ticket.trigger_key == "m1"
    # Another worker (or the same one again) finds the session busy: m2 must wait for m1.
    assert runs.claim_next(session.pk, "w2", "c2", 30).kind == runs.ClaimKind.BUSY
    runs.finish_run(first.ticket, AgentRunStatus.COMPLETED, worker_id="w1", content="done")
    second = runs.claim_next(session.pk, "w2", "c2", 30)
    assert second.kind == runs.ClaimKind.RUN and second.ticket.trigger_key == "m2"
    # Finishing a run that is not ours stores nothing.
    assert runs.finish_run(second.ticket, AgentRunStatus.COMPLETED, worker_id="w1", content="x").held is False
    assert runs.claim_next(session.pk, "w1", "c1", 30).kind == runs.ClaimKind.BUSY


def test_an_earlier_message_without_its_run_yet_is_waited_for(world):
    session = world.session("s12")
    store = messages.store_message
    store(session.pk, messages.Sender.for_user(world.alice), "m1", "x")
    m2 = store(session.pk, messages.Sender.for_user(world.bob), "m2", "y").message.pk
    runs.create_run(session.pk, m2)
    assert runs.claim_next(session.pk, "w1", "c1", 30).kind == runs.ClaimKind.WAIT
    ChatMessage.objects.filter(key="m1").update(created_at=timezone.now() - timedelta(seconds=60))
    assert runs.claim_next(session.pk, "w1", "c1", 30).kind == runs.ClaimKind.RUN


def test_reply_keys_are_deterministic_short_and_do_not_collide(world):
    session = world.session("s13")
    assert runs.derive_key("m1") == "agent-m1"
    long_key = "k" * 128
    assert len(runs.derive_key(long_key)) <= 128 and runs.derive_key(long_key) == runs.derive_key(long_key)
    assert len(runs.derive_key(long_key, "-error")) <= 128
    # A client took "agent-m1" for a message of its own before m1 was answered.
    store = messages.store_message
    store(session.pk, messages.Sender.for_user(world.bob), "agent-m1", "mine")
    m1 = store(session.pk, messages.Sender.for_user(world.alice), "m1", "hello").message.pk
    run_id, created = runs.create_run(session.pk, m1)
    assert created and AgentRun.objects.get(pk=run_id).reply_key == "agent-m1-2"


async def test_replies_longer_than_a_message_may_be_are_cut(world, told, runner, monkeypatch):
    monkeypatch.setattr(settings, "CHAT", dataclasses.replace(settings.CHAT, message_max_length=22), raising=False)
    session = await database_sync_to_async(world.session)("s14")
    await say(session, world.alice, "m1", "aaa bbb ccc ddd eee")
    await runner.idle()
    stored = (await history(session))[-1]
    assert stored.content == "Echo: aaa bbb ccc ddd " and stored.metadata["truncated"] is True
    assert told.finals("s14")[-1]["truncated"] is True


async def test_stored_replies_are_the_reply_verbatim_with_its_rendered_html(world, told, runner):
    agent = await database_sync_to_async(world.agent)("html", prefix="<b>bold</b> <script>alert(1)</script> **hi** ")
    session = await database_sync_to_async(world.session)("s15", agent)
    await say(session, world.alice, "m1", "a < b & c")
    await runner.idle()
    stored = (await history(session))[-1]
    # Markdown by default: the reply exactly as streamed, and its HTML from the one renderer (raw HTML is text).
    assert stored.content == "<b>bold</b> <script>alert(1)</script> **hi** a < b & c"
    assert stored.content_type == "markdown"
    assert stored.html == (
        "<p>&lt;b&gt;bold&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt; <strong>hi</strong> a &lt; b &amp; c</p>\n"
    )
    assert told.of("chat:message-received", "s15")[-1]["html"] == stored.html
    # An agent configured for text stores text, with no HTML.
    plain = await database_sync_to_async(world.agent)("plain", content_type="text", prefix="**hi** ")
    session = await database_sync_to_async(world.session)("s16", plain)
    await say(session, world.alice, "m1", "there")
    await runner.idle()
    stored = (await history(session))[-1]
    assert (stored.content_type, stored.content, stored.html) == ("text", "**hi** there", "")


async def test_runs_are_measured(world, told, runner, monkeypatch):
    calls: list[tuple] = []

    class Timer:
        def __init__(self, backend):
            calls.append(("start", backend))

        def first_chunk(self):
            calls.append(("first",))

        def finished(self, error=None):
            calls.append(("finished", error))

    monkeypatch.setattr(runner_module.metrics, "agent_run", Timer)
    sleepy = await database_sync_to_async(world.agent)("sleepy", delay_ms=100, timeout_s=0.25)
    session = await database_sync_to_async(world.session)("s17")
    await say(session, world.alice, "m1", "a b")
    await runner.idle()
    assert calls == [("start", "echo"), ("first",), ("finished", None)]
    calls.clear()
    await database_sync_to_async(ChatSession.objects.filter(pk=session.pk).update)(agent=sleepy)
    await say(session, world.alice, "m2", "a b c d e f")
    await runner.idle()
    assert calls[0] == ("start", "echo") and calls[-1] == ("finished", "timeout")


def test_chat_agent_command_creates_updates_and_masks(world):
    import io
    import json

    from django.core.management import CommandError, call_command

    out = io.StringIO()
    config = {"model": "m", "api_key": "sk-secret-value-1"}
    call_command("chat_agent", "acme", "gpt", backend="openai", config=json.dumps(config), name="GPT", stdout=out)
    shown = json.loads(out.getvalue())
    assert shown["created"] is True and shown["config"] == {"model": "m", "api_key": "********"}
    assert "sk-secret" not in out.getvalue()
    assert Agent.objects.get(key="gpt").config == config
    call_command("chat_agent", "acme", "gpt", backend="echo", config='{"delay_ms": 5}', stdout=io.StringIO())
    assert Agent.objects.get(key="gpt").backend == "echo"
    for bad in (
        {"backend": "nope"},
        {"config": "not json"},
        {"config": "[1, 2]"},
    ):
        with pytest.raises(CommandError):
            call_command("chat_agent", "acme", "x", stdout=io.StringIO(), **bad)
    with pytest.raises(CommandError):
        call_command("chat_agent", "nowhere", "x", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("chat_agent", "acme", "bad key!", stdout=io.StringIO())
    call_command("chat_agent", "new-space", "x", create_workspace=True, stdout=io.StringIO())
    assert Agent.objects.filter(workspace__slug="new-space", key="x").exists()


def test_a_message_in_a_session_without_agent_costs_one_query(world, django_assert_num_queries):
    plain = ChatSession.objects.create(workspace=world.workspace, key="plain-2")
    pk = messages.store_message(plain.pk, messages.Sender.for_user(world.alice), "p1", "hi").message.pk
    with django_assert_num_queries(1):
        assert runs.create_run(plain.pk, pk) == (None, False)


# --- per-tenant caps ------------------------------------------------------------------------------


async def test_unbounded_agent_runs_per_user_and_workspace(world, told, runner, monkeypatch):
    """Issue #17: one user (or workspace) could hold every agent slot of a worker; now each has a share."""
    monkeypatch.setattr(settings, "CHAT", dataclasses.replace(settings.CHAT), raising=False)
    object.__setattr__(settings.CHAT, "agent_runs_per_user", 2)
    object.__setattr__(settings.CHAT, "agent_runs_per_workspace", 3)
    slow = await database_sync_to_async(world.agent)("slow", delay_ms=100)
    words = " ".join(f"w{n}" for n in range(40))  # four seconds of chunks

    async def streaming(name: str, user: Any) -> ChatSession:
        session = await database_sync_to_async(world.session)(name, slow, user)
        await say(session, user, f"{name}-m", words)
        await until(lambda: told.chunks(name))
        return session

    async def refused(name: str, user: Any) -> None:
        session = await database_sync_to_async(world.session)(name, slow, user)
        await say(session, user, f"{name}-m", words)
        final = await until(lambda: told.finals(name))
        error = final[-1]["error"]
        assert error == {
            "code": "agent_run_limit",
            "message": f"Slow could not answer: {runs.FAILURE_REASONS['agent_run_limit']}.",
        }
        stored = await history(session)
        assert [(m.sender_type, m.metadata.get("error")) for m in stored] == [
            ("user", None),
            ("system", "agent_run_limit"),
        ]

    await streaming("alice-1", world.alice)
    await streaming("alice-2", world.alice)
    await refused("alice-3", world.alice)
    await streaming("bob-1", world.bob)  # another user of the workspace still gets a slot...
    await refused("mod-1", world.mod)  # ...until the workspace's share is used
    await runner.idle(timeout=20)
    # Shares are given back: the user's next message is answered.
    again = await database_sync_to_async(world.session)("alice-4", world.echo, world.alice)
    await say(again, world.alice, "alice-4-m", "hello")
    await runner.idle()
    assert (await run_of("alice-4-m")).status == AgentRunStatus.COMPLETED
