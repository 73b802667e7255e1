"""The runner relaying tool calls and reasoning: one index sequence, stored steps, catch-up, interruption.

In-process against the test database, like ``test_agents_runner.py`` (whose
fixtures these are): ``chat.notify`` is replaced by recorders.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async

from chat import notify
from chat.agents import runner as runner_module
from chat.agents.backends.echo import echo_chunks
from chat.models import AgentRunStatus, ChatMessage
from tests.integration import test_agents_backends, test_agents_runner
from tests.integration.test_agents_backend_steps import ARGUMENTS, tool_script
from tests.integration.test_agents_backends import FakeOpenAI
from tests.integration.test_agents_runner import history, run_of, say, until

# Fixtures shared with the runner's and the backends' tests.
world, told, runner = test_agents_runner.world, test_agents_runner.told, test_agents_runner.runner
_loopback_allowed = test_agents_backends._loopback_allowed

pytestmark = pytest.mark.django_db(transaction=True)

KINDS = ("chat:agent-stream-chunk", "chat:agent-tool-call", "chat:agent-reasoning")


def reply_events(told: Any, session: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e, p) for s, e, p in told.events if s == session and e in KINDS]


async def test_echo_tool_step_shares_the_index_and_is_stored_with_the_reply(world, told, runner):
    agent = await database_sync_to_async(world.agent)("tools", delay_ms=1, tool_step=True)
    session = await database_sync_to_async(world.session)("st1", agent)
    await say(session, world.alice, "m1", "count these words")
    await runner.idle()
    events = reply_events(told, "st1")
    # Reasoning, the tool call's four updates, the text, the final chunk: one index sequence, in order.
    assert [p["index"] for _, p in events] == list(range(len(events)))
    assert [e for e, _ in events][:6] == ["chat:agent-reasoning"] + ["chat:agent-tool-call"] * 4 + [KINDS[0]]
    calls = [p for e, p in events if e == "chat:agent-tool-call"]
    assert [c["status"] for c in calls] == ["started", "running", "running", "completed"]
    assert {c["toolCallId"] for c in calls} == {"echo-call-1"} and calls[0]["name"] == "count_words"
    assert "".join(c["argumentsDelta"] for c in calls) == json.dumps({"text": "count these words"})
    assert calls[-1]["result"] == '{"words": 3}'
    final = events[-1][1]
    assert final["isComplete"] and final["index"] == len(events) - 1
    stored = (await history(session))[-1]
    assert stored.content == "".join(echo_chunks("count these words"))
    assert stored.metadata["steps"] == [
        {"type": "reasoning", "text": "The user wants their words back; counting them first."},
        {
            "type": "tool",
            "toolCallId": "echo-call-1",
            "name": "count_words",
            "arguments": json.dumps({"text": "count these words"}),
            "status": "completed",
            "result": '{"words": 3}',
        },
    ]
    run = await run_of("m1")
    # The run keeps every item by index: text chunks as strings, step events as objects.
    assert len(run.stream) == run.chunks == final["index"]
    assert [isinstance(item, str) for item in run.stream] == [e == KINDS[0] for e, _ in events[:-1]]


async def test_a_catch_up_carries_the_steps_so_far(world, told, runner, monkeypatch):
    sent: list[tuple[str, str, dict[str, Any]]] = []

    async def to_socket(socket_id: str, event: str, payload: dict[str, Any]) -> None:
        sent.append((socket_id, event, payload))

    monkeypatch.setattr(notify, "to_socket", to_socket)
    agent = await database_sync_to_async(world.agent)("slowtools", delay_ms=40, tool_step=True)
    session = await database_sync_to_async(world.session)("st2", agent)
    await say(session, world.alice, "m1", "one two three four five six seven eight")
    await until(lambda: len(told.chunks("st2")) >= 2, 10)
    await runner_module.catch_up(session.pk, "socket-1")
    await runner.idle()
    [(socket_id, event, catch_up)] = sent
    assert socket_id == "socket-1" and event == KINDS[0] and catch_up["catchUp"] is True
    events = reply_events(told, "st2")
    before = [p for _, p in events if p["index"] <= catch_up["index"]]
    # Exactly what the session had been told up to that index: the text and the folded steps.
    assert catch_up["chunk"] == "".join(p["chunk"] for e, p in events if e == KINDS[0] and p in before)
    [tool] = [s for s in catch_up["steps"] if s["type"] == "tool"]
    assert tool["status"] == "completed" and tool["arguments"] == json.dumps(
        {"text": "one two three four five six seven eight"}
    )
    assert catch_up["steps"][0]["type"] == "reasoning"


@pytest.fixture
async def cut_openai():
    server = FakeOpenAI(script=tool_script(), cut_after=7)
    await server.start()
    yield server
    await server.stop()


async def test_a_stream_cut_mid_tool_call_fails_and_stores_nothing_as_complete(world, told, runner, cut_openai):
    agent = await database_sync_to_async(world.agent)(
        "cut", backend="openai", base_url=f"{cut_openai.url}/v1", model="m", api_key="sk-cut"
    )
    session = await database_sync_to_async(world.session)("st3", agent)
    await say(session, world.alice, "m1", "weather?")
    await runner.idle()
    events = reply_events(told, "st3")
    assert [p["index"] for _, p in events] == list(range(len(events)))
    final = events[-1][1]
    assert final["error"]["code"] == "stream_interrupted"
    closing = [p for e, p in events if e == "chat:agent-tool-call" and p["status"] in ("completed", "failed")]
    assert {(p["toolCallId"], p["status"]) for p in closing} == {("call_w1", "failed"), ("call_t2", "failed")}
    run = await run_of("m1")
    assert run.status == AgentRunStatus.FAILED
    statuses = [i["status"] for i in run.stream if isinstance(i, dict) and i["type"] == "tool"]
    assert "completed" not in statuses and statuses[-2:] == ["failed", "failed"]
    arguments = "".join(
        i.get("argumentsDelta", "") for i in run.stream if isinstance(i, dict) and i.get("toolCallId") == "call_w1"
    )
    assert ARGUMENTS.startswith(arguments) and arguments != ARGUMENTS
    keys = await database_sync_to_async(
        lambda: list(ChatMessage.objects.filter(session=session).values_list("key", flat=True))
    )()
    assert "agent-m1" not in keys and "agent-m1-error" in keys
