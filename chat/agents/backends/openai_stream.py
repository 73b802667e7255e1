"""Reading an OpenAI-compatible chat-completions stream: text, tool-call deltas and reasoning.

The stream is Server-Sent Events, one ``data: {json}`` per event (a
``chat.completion.chunk``), ending with ``data: [DONE]``.  Of each chunk's
``choices[0]`` we read:

- ``delta.content`` -- more of the reply's text (yielded as ``str``);
- ``delta.reasoning_content`` (DeepSeek, vLLM, llama.cpp) or
  ``delta.reasoning`` (OpenRouter, Ollama) -- more of the reasoning, as
  :class:`~chat.agents.steps.ReasoningDelta`;
- ``delta.tool_calls`` -- a list of ``{index, id?, type?, function: {name?,
  arguments?}}``: a call is keyed by its ``index``; its ``id`` and
  ``function.name`` come once (in the first delta of that index), its
  ``function.arguments`` in pieces that joined are the arguments' JSON
  text exactly.  Each becomes a :class:`~chat.agents.steps.ToolCallDelta`
  (``started`` for the first, ``running`` for the pieces after it);
- ``finish_reason`` -- any value ends the choice; every tool call still open
  is then ``completed`` (``tool_calls`` says the model stopped to have them
  run: the agent service runs them, we only show them).

A body that ends without ``[DONE]`` and without a ``finish_reason`` was cut
off: :class:`BackendError` ``stream_interrupted`` (the runner then marks any
open tool call ``failed``; nothing half-streamed is stored as complete).
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import aiohttp

from chat.agents.backends.base import BackendError
from chat.agents.backends.sse import events as sse_events
from chat.agents.steps import COMPLETED, MAX_STEPS, RUNNING, STARTED, ReasoningDelta, ToolCallDelta

REASONING_FIELDS = ("reasoning_content", "reasoning")
#: Tool calls tracked at once (a provider numbering calls without end costs no more memory than this).
MAX_OPEN_CALLS = 2 * MAX_STEPS

Item = str | ReasoningDelta | ToolCallDelta


class ChunkReader:
    """Turns chat-completion chunks (parsed JSON) into what the backend yields."""

    def __init__(self) -> None:
        #: Open tool calls: the provider's ``index`` -> our id for the call.
        self.calls: dict[int, str] = {}
        self.finished = False

    def read(self, event: Any) -> list[Item]:
        if not isinstance(event, dict):
            return []
        if "error" in event:
            raise BackendError("The agent's provider reported an error mid-stream.", code="upstream_error")
        choices = event.get("choices") or []
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return []
        choice = choices[0]
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        items: list[Item] = []
        for name in REASONING_FIELDS:
            text = delta.get(name)
            if isinstance(text, str) and text:
                items.append(ReasoningDelta(text))
                break
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                if isinstance(call, dict):
                    items.extend(self._tool_call(call))
        content = delta.get("content")
        if isinstance(content, str) and content:
            items.append(content)
        if choice.get("finish_reason"):
            self.finished = True
            items.extend(ToolCallDelta(call_id, status=COMPLETED) for call_id in self.calls.values())
            self.calls.clear()
        return items

    def _tool_call(self, call: dict[str, Any]) -> list[ToolCallDelta]:
        index = call.get("index", 0)
        if not isinstance(index, int) or isinstance(index, bool):
            raise BackendError("The agent's provider sent a malformed tool call.", code="upstream_error")
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        piece = function.get("arguments")
        piece = piece if isinstance(piece, str) else ""
        if index not in self.calls:
            if len(self.calls) >= MAX_OPEN_CALLS:
                return []  # beyond what a reply may show anyway (steps.MAX_STEPS): not tracked
            call_id = call.get("id")
            call_id = call_id if isinstance(call_id, str) and call_id else f"call_{index}"
            name = function.get("name")
            self.calls[index] = call_id
            return [ToolCallDelta(call_id, name if isinstance(name, str) else "", piece, STARTED)]
        return [ToolCallDelta(self.calls[index], arguments_delta=piece, status=RUNNING)] if piece else []


async def read_stream(response: aiohttp.ClientResponse) -> AsyncIterator[Item]:
    """What an SSE chat-completions response streams, in order (see the module docstring)."""
    reader = ChunkReader()
    async for data in sse_events(response):
        if data.strip() == "[DONE]":
            return
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            raise BackendError("The agent's provider sent an unreadable stream.", code="upstream_error") from None
        for item in reader.read(event):
            yield item
    if not reader.finished:
        raise BackendError("The agent's stream was cut off.", code="stream_interrupted")
