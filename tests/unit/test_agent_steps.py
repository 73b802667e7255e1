"""A reply's items and steps: one index sequence, folding, and the bounds on what a provider may stream."""

from __future__ import annotations

import json

import pytest

from chat.agents import steps
from chat.agents.backends import BackendError
from chat.agents.relay import Reply
from chat.agents.steps import ReasoningDelta, TextDelta, ToolCallDelta


def test_items_share_one_index_and_fold_into_steps():
    reply = Reply(limit=100)
    relayed = [
        reply.add(item)
        for item in (
            ReasoningDelta("Let me"),
            "Hello",
            ReasoningDelta(" think."),
            ToolCallDelta("c1", "search", '{"q":', "started"),
            TextDelta(" world"),
            ToolCallDelta("c1", arguments_delta=' "x"}'),
            ToolCallDelta("c1", status="completed", result=["a", 1]),
            ReasoningDelta("Done."),
        )
    ]
    assert [r[0] for r in relayed] == ["step", "text", "step", "step", "text", "step", "step", "step"]
    assert len(reply.items) == 8 and reply.content == "Hello world"
    assert reply.steps() == [
        {"type": "reasoning", "text": "Let me think."},
        {
            "type": "tool",
            "toolCallId": "c1",
            "name": "search",
            "arguments": '{"q": "x"}',
            "status": "completed",
            "result": '["a", 1]',
        },
        {"type": "reasoning", "text": "Done."},
    ]
    # The steps as far as any index: what a catch-up at that index carries.
    assert reply.steps(upto=4)[1]["arguments"] == '{"q":' and reply.steps(upto=4)[1]["status"] == "started"


def test_an_ended_call_takes_nothing_more_and_repeats_are_not_relayed():
    reply = Reply(limit=100)
    assert reply.add(ToolCallDelta("c", "f", "", "started")) is not None
    assert reply.add(ToolCallDelta("c", status="started")) is None  # nothing new
    assert reply.add(ToolCallDelta("c", status="failed")) is not None
    assert reply.add(ToolCallDelta("c", arguments_delta="late", status="completed")) is None
    assert reply.steps()[0]["status"] == "failed" and reply.close_open("failed") == []


def test_close_open_ends_every_open_call():
    reply = Reply(limit=100)
    reply.add(ToolCallDelta("a", "f", "{", "started"))
    reply.add(ToolCallDelta("b", "g", "", "started"))
    reply.add(ToolCallDelta("b", status="completed"))
    closed = reply.close_open("failed")
    assert [(e["toolCallId"], e["status"]) for e in closed] == [("a", "failed")]
    assert [s["status"] for s in reply.steps()] == ["failed", "completed"]


def test_bounds_steps_text_names_and_nul():
    reply = Reply(limit=100)
    for i in range(steps.MAX_STEPS + 5):
        reply.add(ToolCallDelta(f"c{i}", "n" * 500, "", "started"))
    assert len(reply.steps()) == steps.MAX_STEPS
    assert len(reply.steps()[0]["name"]) == steps.NAME_MAX
    reply = Reply(limit=100)
    reply.add(ToolCallDelta("c", "f", "x" * (steps.STEP_TEXT_MAX - 10), "started"))
    event = reply.add(ToolCallDelta("c", arguments_delta="y" * 50))[1]
    assert event["truncated"] is True and len(event["argumentsDelta"]) == 10
    assert reply.add(ToolCallDelta("c", arguments_delta="more")) is None  # full: nothing more to relay
    assert len(reply.steps()[0]["arguments"]) == steps.STEP_TEXT_MAX and reply.steps()[0]["truncated"]
    reply = Reply(limit=100)
    reply.add(ReasoningDelta("a\x00b"))
    reply.add("te\x00xt")
    assert reply.steps() == [{"type": "reasoning", "text": "ab"}] and reply.content == "te\x00xt"


def test_text_stops_at_the_limit():
    reply = Reply(limit=10)
    reply.add("12345678")
    assert reply.add("abcdef") == ("text", "ab") and reply.truncated
    assert reply.add(ToolCallDelta("c", "f", "", "started")) is not None  # steps are not text


@pytest.mark.parametrize(
    "item", [42, None, b"bytes", {"type": "tool"}, ToolCallDelta("", "f"), ToolCallDelta("c", status="x")]
)
def test_anything_else_is_a_backend_error(item):
    with pytest.raises(BackendError):
        Reply(limit=10).add(item)


def test_steps_for_metadata_fit_the_budget():
    big = [
        {
            "type": "tool",
            "toolCallId": f"c{i}",
            "name": "f",
            "arguments": "a" * 4000,
            "status": "completed",
            "result": "r" * 4000,
        }
        for i in range(8)
    ]
    cut = steps.for_metadata(big)
    assert len(json.dumps(cut).encode()) <= steps.METADATA_BUDGET
    assert all(s["truncated"] for s in cut) and [s["toolCallId"] for s in cut] == [f"c{i}" for i in range(8)]
    small = [{"type": "reasoning", "text": "short"}]
    assert steps.for_metadata(small) == small
