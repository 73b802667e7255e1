"""What a backend's stream may yield besides text, and how a reply's steps are folded and bounded.

A backend yields, in the order they happen:

- ``str`` or :class:`TextDelta` -- more of the reply's text;
- :class:`ToolCallDelta` -- a tool call the agent makes (or made): its
  ``id`` and ``name`` once, its arguments as they stream (``arguments_delta``,
  pieces of the JSON text, joined they are the arguments exactly), its
  ``status`` (``started`` -> ``running`` -> ``completed`` | ``failed``) and,
  when the agent service ran the tool and says so, its ``result``.  We
  carry and show tool calls; we never execute one;
- :class:`ReasoningDelta` -- more of the reasoning summary the provider
  sends (``delta.reasoning_content`` and the like).

The runner gives every item one ``index`` (text, tool call and reasoning
events share one sequence per reply) and keeps the reply's *stream*: a list
whose item ``i`` is what index ``i`` carried -- a text chunk (``str``) or a
step event (``dict`` with ``type``).  :func:`fold` turns a stream into the
reply's *steps*: one entry per tool call (arguments joined, latest status,
result) and one per run of consecutive reasoning, in the order they began;
those are stored in the reply's ``metadata.steps`` and sent in a joiner's
catch-up.

Bounds (a reply is written by a provider, not by us): at most
:data:`MAX_STEPS` steps per reply (later ones are not relayed), at most
:data:`STEP_TEXT_MAX` characters of a step's arguments, reasoning or result
(the rest is dropped and the step marked ``truncated``), names of at most
:data:`NAME_MAX` characters, and the steps stored with a message fit in
:data:`METADATA_BUDGET` bytes of JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: Tool-call statuses, in the order a call goes through them.
STARTED, RUNNING, COMPLETED, FAILED = "started", "running", "completed", "failed"
STATUSES = (STARTED, RUNNING, COMPLETED, FAILED)
ENDED = (COMPLETED, FAILED)

TOOL, REASONING = "tool", "reasoning"

MAX_STEPS = 32
STEP_TEXT_MAX = 4000
NAME_MAX = 128
ID_MAX = 128
#: What the steps may take of a stored message's metadata (its whole limit is 16 KiB).
METADATA_BUDGET = 12 * 1024


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """One update of a tool call; only ``id`` is needed on updates after the first."""

    id: str
    name: str = ""
    arguments_delta: str = ""
    status: str = RUNNING
    #: The tool's result when the agent service reports it (text, or any JSON value).
    result: Any = None


def clean(text: str) -> str:
    """Text as it may be stored (PostgreSQL's jsonb holds no NUL)."""
    return text.replace("\x00", "")


def result_text(result: Any) -> str:
    """A result as the text clients show: strings as they are, anything else as JSON."""
    if result is None:
        return ""
    if isinstance(result, str):
        return clean(result)
    try:
        return clean(json.dumps(result, ensure_ascii=False, sort_keys=True, default=str))
    except (TypeError, ValueError):
        return ""


def fold(stream: list[Any]) -> list[dict[str, Any]]:
    """The steps of a reply from its stream (see the module docstring)."""
    steps: list[dict[str, Any]] = []
    tools: dict[str, dict[str, Any]] = {}
    for item in stream:
        if not isinstance(item, dict):
            continue
        if item.get("type") == TOOL:
            step = tools.get(item.get("toolCallId", ""))
            if step is None:
                step = {
                    "type": TOOL,
                    "toolCallId": item.get("toolCallId", ""),
                    "name": item.get("name", ""),
                    "arguments": "",
                    "status": STARTED,
                }
                tools[step["toolCallId"]] = step
                steps.append(step)
            step["arguments"] += item.get("argumentsDelta", "")
            step["status"] = item.get("status", step["status"])
            if "result" in item:
                step["result"] = item["result"]
            if item.get("truncated"):
                step["truncated"] = True
        elif item.get("type") == REASONING:
            if steps and steps[-1]["type"] == REASONING:
                steps[-1]["text"] += item.get("text", "")
            else:
                steps.append({"type": REASONING, "text": item.get("text", "")})
    return steps


def close_open(stream: list[Any], status: str) -> list[dict[str, Any]]:
    """Step events that end every tool call of ``stream`` not ended yet, with ``status``."""
    return [
        {"type": TOOL, "toolCallId": step["toolCallId"], "name": step["name"], "argumentsDelta": "", "status": status}
        for step in fold(stream)
        if step["type"] == TOOL and step["status"] not in ENDED
    ]


def for_metadata(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``steps`` cut so their JSON fits :data:`METADATA_BUDGET` (long texts shortened, marked ``truncated``)."""
    limit = STEP_TEXT_MAX
    while True:
        cut = [_shorten(step, limit) for step in steps]
        if len(json.dumps(cut, ensure_ascii=False).encode()) <= METADATA_BUDGET or limit < 16:
            return cut
        limit //= 2


def _shorten(step: dict[str, Any], limit: int) -> dict[str, Any]:
    step = dict(step)
    for key in ("arguments", "text", "result"):
        value = step.get(key)
        if isinstance(value, str) and len(value) > limit:
            step[key] = value[:limit]
            step["truncated"] = True
    return step
