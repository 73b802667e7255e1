"""Tool calls, reasoning and Parlant's streaming messages, against the local servers speaking each wire format.

The servers are :class:`FakeOpenAI` and :class:`FakeParlant` of
``test_agents_backends.py``: the OpenAI one streams ``delta`` objects
verbatim (``delta.tool_calls`` keyed by ``index``, arguments split across
chunks; ``delta.reasoning_content``), the Parlant one streams a message's
``data.chunks`` as they grow (``?sse=true``, or JSON only, as older
servers answer) and emits ``tool`` events.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chat.agents.backends import BackendError, make_backend
from chat.agents.relay import Reply
from chat.agents.steps import ReasoningDelta, ToolCallDelta
from tests.integration import test_agents_backends
from tests.integration.test_agents_backends import collect, context, openai_config, parlant_config

# Fixtures shared with the backends' tests.
_loopback_allowed, _fresh_rotation = test_agents_backends._loopback_allowed, test_agents_backends._fresh_rotation
fake_openai, fake_parlant = test_agents_backends.fake_openai, test_agents_backends.fake_parlant

#: Arguments with escapes, non-ASCII and nesting, cut at awkward places (inside an escape, a word, a number).
ARGUMENTS = json.dumps({"city": 'Zürich "Altstadt"', "days": [1, 2, 3], "units": {"temp": "°C"}}, ensure_ascii=False)
PIECES = [ARGUMENTS[:1], ARGUMENTS[1:9], ARGUMENTS[9:10], ARGUMENTS[10:23], ARGUMENTS[23:24], ARGUMENTS[24:]]


def tool_script() -> list[dict[str, Any]]:
    """Reasoning, two tool calls streamed interleaved (by ``index``), then text, as OpenAI sends them."""
    first = {"index": 0, "id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    second = {"index": 1, "id": "call_t2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
    script: list[dict[str, Any]] = [
        {"role": "assistant", "reasoning_content": "Need the weather"},
        {"reasoning_content": " and the time."},
        {"tool_calls": [first]},
        {"tool_calls": [second]},
    ]
    for i, piece in enumerate(PIECES):
        script.append({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        if i == 2:
            script.append({"tool_calls": [{"index": 1, "function": {"arguments": '{"tz": "CET"}'}}]})
    return script


async def test_openai_tool_call_deltas_are_reassembled_exactly(fake_openai):
    fake_openai.script = tool_script()
    fake_openai.finish_reason = "tool_calls"
    items = await collect("openai", context(config=openai_config(fake_openai)))
    assert [i.text for i in items if isinstance(i, ReasoningDelta)] == ["Need the weather", " and the time."]
    calls = [i for i in items if isinstance(i, ToolCallDelta)]
    weather = [c for c in calls if c.id == "call_w1"]
    assert weather[0].name == "get_weather" and weather[0].status == "started"
    assert "".join(c.arguments_delta for c in weather) == ARGUMENTS
    assert json.loads("".join(c.arguments_delta for c in weather))["city"] == 'Zürich "Altstadt"'
    assert [c.status for c in weather] == ["started"] + ["running"] * len(PIECES) + ["completed"]
    time_call = [c for c in calls if c.id == "call_t2"]
    assert "".join(c.arguments_delta for c in time_call) == '{"tz": "CET"}' and time_call[-1].status == "completed"
    # Through the runner's record: one step per call, in the order they began, reasoning first.
    reply = Reply(limit=1000)
    for item in items:
        reply.add(item)
    steps = reply.steps()
    assert [s["type"] for s in steps] == ["reasoning", "tool", "tool"]
    assert steps[0]["text"] == "Need the weather and the time."
    assert steps[1] == {
        "type": "tool",
        "toolCallId": "call_w1",
        "name": "get_weather",
        "arguments": ARGUMENTS,
        "status": "completed",
    }
    assert reply.content == ""


async def test_openai_reasoning_field_and_text_after_tool_calls(fake_openai):
    fake_openai.script = [
        {"reasoning": "Thinking."},
        {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "lookup", "arguments": '{"q": 1}'}}]},
        {"content": "The answer"},
        {"content": " is 42."},
    ]
    items = await collect("openai", context(config=openai_config(fake_openai)))
    assert items == [
        ReasoningDelta("Thinking."),
        ToolCallDelta("c", "lookup", '{"q": 1}', "started"),
        "The answer",
        " is 42.",
        ToolCallDelta("c", status="completed"),
    ]


async def test_openai_stream_cut_mid_tool_call_is_interrupted_and_never_complete(fake_openai):
    fake_openai.script = tool_script()
    fake_openai.cut_after = 7  # inside the first call's arguments
    got: list[Any] = []
    ctx = context(config=openai_config(fake_openai))
    with pytest.raises(BackendError) as raised:
        async for item in make_backend("openai", ctx.config).stream(ctx):
            got.append(item)
    assert raised.value.code == "stream_interrupted"
    calls = [i for i in got if isinstance(i, ToolCallDelta)]
    assert calls and all(c.status in ("started", "running") for c in calls)
    # The runner closes what is open as failed: nothing half-streamed is stored as complete.
    reply = Reply(limit=1000)
    for item in got:
        reply.add(item)
    closed = reply.close_open("failed")
    assert {e["toolCallId"] for e in closed} == {"call_w1", "call_t2"}
    assert [s["status"] for s in reply.steps() if s["type"] == "tool"] == ["failed", "failed"]
    assert reply.steps()[1]["arguments"] == ARGUMENTS[: len(reply.steps()[1]["arguments"])] != ARGUMENTS


async def test_parlant_non_streaming_server_passes_whole_messages(fake_parlant):
    fake_parlant.answer = lambda text: ["One whole message.", "And another."]
    got = await collect("parlant", context(config=parlant_config(fake_parlant)))
    assert got == ["One whole message.", "\n\nAnd another."]
    assert fake_parlant.event_streams == 0


async def test_parlant_streaming_several_messages_chunk_by_chunk(fake_parlant):
    fake_parlant.streaming = True
    fake_parlant.answer = lambda text: ["First part here.", "Second part."]
    got = await collect("parlant", context(config=parlant_config(fake_parlant)))
    assert got == ["First", " part", " here.", "\n\nSecond", " part."]
    assert fake_parlant.event_streams == 2


async def test_parlant_streaming_without_sse_falls_back_to_the_whole_message(fake_parlant):
    fake_parlant.streaming = True
    fake_parlant.sse = False
    fake_parlant.step_s = 0.03
    got = await collect("parlant", context("a b c", config=parlant_config(fake_parlant)))
    # What had streamed when the event was listed, then the rest once complete: the same text, exactly.
    assert "".join(got) == "Parlant heard: a b c" and got[0] == "Parlant"


async def test_parlant_tool_events_become_completed_tool_steps(fake_parlant):
    fake_parlant.streaming = True
    fake_parlant.tool_calls = [
        {
            "tool_id": "orders:find_order",
            "arguments": {"order": "A-17"},
            "result": {"data": {"status": "shipped"}, "metadata": {}, "control": {}},
        }
    ]
    got = await collect("parlant", context("where?", config=parlant_config(fake_parlant)))
    [step] = [i for i in got if isinstance(i, ToolCallDelta)]
    assert step.name == "orders:find_order" and step.status == "completed"
    assert json.loads(step.arguments_delta) == {"order": "A-17"} and step.result == {"status": "shipped"}
    assert got.index(step) == 0 and "".join(i for i in got if isinstance(i, str)) == "Parlant heard: where?"
    assert all("tool" in p["kinds"].split(",") for p in fake_parlant.polls)
