"""``echo``: a built-in backend that needs nothing, for demos and tests.

It answers ``<prefix><the user's message>`` word by word: the first chunk
is the first word, every later chunk a space and the next word, so the
chunks joined are exactly the reply.  It sleeps ``delay_ms`` before each
chunk.

With ``"tool_step": true``, or for a message starting with ``/tool``, it
first shows what a tool-using agent streams (:func:`echo_steps`): a line
of reasoning, then a fake ``count_words`` tool call whose arguments arrive
in two pieces and which completes with a result -- for tests and demos.

Config: ``{"delay_ms": 60, "prefix": "Echo: ", "tool_step": false}`` (all optional).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import AsyncIterator

from chat.agents.backends.base import AgentBackend, AgentContext, BackendConfigError, config_number
from chat.agents.steps import COMPLETED, RUNNING, STARTED, ReasoningDelta, ToolCallDelta

DEFAULT_DELAY_MS = 60
DEFAULT_PREFIX = "Echo: "


def echo_chunks(text: str, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """The chunks the echo backend yields for ``text``: deterministic, joined they are the reply."""
    words = re.findall(r"\S+", f"{prefix}{text}")
    return [word if i == 0 else f" {word}" for i, word in enumerate(words)]


TOOL_PREFIX = "/tool"


def echo_steps(text: str) -> list[ReasoningDelta | ToolCallDelta]:
    """The steps the echo backend shows before its text when asked to (deterministic)."""
    arguments = json.dumps({"text": text})
    half = len(arguments) // 2
    return [
        ReasoningDelta("The user wants their words back; counting them first."),
        ToolCallDelta("echo-call-1", "count_words", status=STARTED),
        ToolCallDelta("echo-call-1", arguments_delta=arguments[:half], status=RUNNING),
        ToolCallDelta("echo-call-1", arguments_delta=arguments[half:], status=RUNNING),
        ToolCallDelta("echo-call-1", status=COMPLETED, result={"words": len(re.findall(r"\S+", text))}),
    ]


class EchoBackend(AgentBackend):
    name = "echo"

    async def stream(self, context: AgentContext) -> AsyncIterator[str | ReasoningDelta | ToolCallDelta]:
        delay = config_number(self.config, "delay_ms", DEFAULT_DELAY_MS) / 1000
        prefix = self.config.get("prefix", DEFAULT_PREFIX)
        if not isinstance(prefix, str):
            raise BackendConfigError("Agent config 'prefix' must be a string.")
        await context.report_status("typing")
        text = context.message.content
        if self.config.get("tool_step") is True or text.startswith(TOOL_PREFIX):
            for step in echo_steps(text):
                await asyncio.sleep(delay)
                yield step
        for chunk in echo_chunks(text, prefix):
            await asyncio.sleep(delay)
            yield chunk
