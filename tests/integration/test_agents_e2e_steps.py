"""Tool calls and reasoning end to end: every client ends with the same reply, steps and index sequence.

Real daphne servers (both backends: embedded and PostgreSQL+Redis), real
Socket.IO clients, and three agents that stream steps: the echo agent with
its fake tool step, an OpenAI-compatible provider streaming reasoning,
``tool_calls`` deltas and text, and a Parlant server streaming a message's
chunks after a ``tool`` event.  For each: one client present from the
start, one that disconnects mid-reply and rejoins, one that joins late.
What each shows is computed by the rule of docs/protocol.md ("Resuming a
streaming reply", "Steps"), implemented here independently of the server.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any, Iterator

import pytest

from chat.agents.backends.echo import echo_chunks
from tests.integration.clients import until
from tests.integration.test_agents_backend_steps import ARGUMENTS, tool_script
from tests.integration.test_agents_backends import FakeOpenAI, FakeParlant, ThreadedServer
from tests.integration.test_agents_e2e import SERVER_ENV, USERS, Env, join, new_session, send, setup_data

KINDS = ("chat:agent-stream-chunk", "chat:agent-tool-call", "chat:agent-reasoning")
WORDS = " ".join(f"w{i}" for i in range(14))
PARLANT_TOOL = {"tool_id": "orders:find", "arguments": {"id": 7}, "result": {"data": "shipped", "metadata": {}}}


def long_script() -> list[dict[str, Any]]:
    """Reasoning and two tool calls (arguments split across chunks), then the text word by word."""
    return [*tool_script(), *({"content": w if i == 0 else f" {w}"} for i, w in enumerate(WORDS.split(" ")))]


@pytest.fixture(scope="module")
def providers() -> Iterator[tuple[FakeOpenAI, FakeParlant]]:
    with ExitStack() as stack:
        openai = stack.enter_context(ThreadedServer(FakeOpenAI(script=long_script(), delay_s=0.12)))
        parlant = stack.enter_context(
            ThreadedServer(
                FakeParlant(
                    streaming=True, step_s=0.12, tool_calls=[PARLANT_TOOL], answer=lambda t: [f"Parlant: {WORDS}"]
                )
            )
        )
        yield openai, parlant


@pytest.fixture(scope="module")
def steps_server(module_server_factory, module_backend, providers):
    openai, parlant = providers
    agents = {
        "echo-tools": ("echo", {"delay_ms": 120, "tool_step": True}),
        "gpt-tools": ("openai", {"base_url": f"{openai.url}/v1", "model": "m", "api_key": "sk-t"}),
        "parlant-tools": ("parlant", {"url": parlant.url, "agent_id": "ag_1", "wait_for_data_s": 5}),
    }
    server = module_server_factory(module_backend, conformance=False, **SERVER_ENV)
    return server, setup_data(server, USERS, agents)


@pytest.fixture
async def env(steps_server) -> Iterator[Env]:
    environment = Env(*steps_server)
    yield environment
    await environment.close()


# --- what a client shows, by the protocol's rule ---------------------------------------------------------


def reply_events(client: Any, message_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (e["name"], e["args"][0])
        for e in client.events
        if e["name"] in KINDS and e["args"][0]["messageId"] == message_id
    ]


def apply_step(steps: list[dict[str, Any]], name: str, event: dict[str, Any]) -> list[dict[str, Any]]:
    steps = [dict(s) for s in steps]
    if name == "chat:agent-reasoning":
        if steps and steps[-1]["type"] == "reasoning":
            steps[-1]["text"] += event["text"]
        else:
            steps.append({"type": "reasoning", "text": event["text"]})
        return steps
    step = next((s for s in steps if s["type"] == "tool" and s["toolCallId"] == event["toolCallId"]), None)
    if step is None:
        step = {"type": "tool", "toolCallId": event["toolCallId"], "name": event["name"], "arguments": ""}
        steps.append(step)
    step["arguments"] += event["argumentsDelta"]
    step["status"] = event["status"]
    if "result" in event:
        step["result"] = event["result"]
    return steps


def as_shown(events: list[tuple[str, dict[str, Any]]]) -> tuple[str, list[dict[str, Any]], list[int], int | None]:
    """(text, steps, indexes held in order, final index) of a reply, as a client applying the rule shows it."""
    text, steps, held, final = "", [], [], None
    for name, event in events:
        last = held[-1] if held else -1
        if name == KINDS[0] and event["isComplete"]:
            final = event["index"]
        elif name == KINDS[0] and event.get("catchUp"):
            if event["index"] >= last:
                text, steps, held = event["chunk"], event["steps"], list(range(event["index"] + 1))
        elif event["index"] <= last:
            continue  # included already
        elif name == KINDS[0]:
            text, held = text + event["chunk"], [*held, event["index"]]
        else:
            steps, held = apply_step(steps, name, event), [*held, event["index"]]
    return text, steps, held, final


def stored(client: Any, message_id: str) -> list[dict[str, Any]]:
    return [a[0] for a in client.received("chat:message-received") if a[0]["id"] == message_id]


# --- the test -------------------------------------------------------------------------------------------


EXPECTED = {
    "echo-tools": (
        "".join(echo_chunks(WORDS)),
        ["reasoning", "tool"],
        {"count_words": (json.dumps({"text": WORDS}), json.dumps({"words": 14}))},
    ),
    "gpt-tools": (
        WORDS,
        ["reasoning", "tool", "tool"],
        {"get_weather": (ARGUMENTS, None), "get_time": ('{"tz": "CET"}', None)},
    ),
    "parlant-tools": (f"Parlant: {WORDS}", ["tool"], {"orders:find": ('{"id": 7}', "shipped")}),
}


@pytest.mark.parametrize("agent", sorted(EXPECTED))
async def test_late_and_reconnecting_clients_end_with_the_same_reply_steps_and_indexes(env, agent):
    present, away, late = await env.client("alice"), await env.client("mod"), await env.client("mod")
    session = new_session()
    await join(present, session, agent)
    await join(away, session)
    await send(present, session, "m1", WORDS)
    # The one that goes away: after it has a few events, while steps are still streaming.
    assert await until(lambda: len(reply_events(away, "agent-m1")) >= 2, 15)
    await away.sio.disconnect()
    had = len(reply_events(away, "agent-m1"))
    assert await until(lambda: len(reply_events(present, "agent-m1")) >= had + 3, 15)
    await away.connect(env.server.url, "websocket", auth={"token": env.tokens["mod"]})
    await join(away, session)
    # The late one joins further on.
    assert await until(lambda: len(reply_events(present, "agent-m1")) >= had + 6, 15)
    await join(late, session)
    for client in (present, away, late):
        assert await until(lambda c=client: stored(c, "agent-m1"), 30), f"{agent}: no stored reply"

    shown = as_shown(reply_events(present, "agent-m1"))
    text, steps, held, final = shown
    assert held == list(range(final)), "the client present from the start holds every index once, in order"
    for other in (away, late):
        events = reply_events(other, "agent-m1")
        [catch_up] = [e for n, e in events if e.get("catchUp")]
        assert catch_up["index"] > 0
        assert as_shown(events) == shown, agent
    # What they show is what the agent said and what is stored.
    expected_text, kinds, tools = EXPECTED[agent]
    assert text == expected_text
    assert [s["type"] for s in steps] == kinds
    for step in steps:
        if step["type"] == "tool":
            arguments, result = tools[step["name"]]
            assert json.loads(step["arguments"]) == json.loads(arguments) and step["status"] == "completed"
            assert step.get("result") == result
    [message] = stored(late, "agent-m1")
    assert message["content"] == expected_text and message["metadata"]["steps"] == steps
