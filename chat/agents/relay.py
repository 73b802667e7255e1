"""A reply as it streams: every item a backend yields, given its ``index``, checked and bounded.

:class:`Reply` is the runner's record of one reply in progress.  Each
accepted item is appended to ``items`` (so an item's position is its
``index``, shared by text, tool-call and reasoning events): a text chunk
as a ``str``, a step event as a ``dict`` (see :mod:`chat.agents.steps`).
Only this worker's runner touches it, on one event loop, so reading it
between two awaits (a catch-up) sees a consistent reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chat.agents import steps
from chat.agents.backends.base import BackendError
from chat.agents.steps import ReasoningDelta, TextDelta, ToolCallDelta


@dataclass
class _Tool:
    name: str
    status: str
    length: int = 0
    truncated: bool = False


@dataclass
class Reply:
    #: The longest the text may get (``CHAT_MESSAGE_MAX_LENGTH``).
    limit: int
    items: list[Any] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    length: int = 0
    _tools: dict[str, _Tool] = field(default_factory=dict)
    _reasoning_length: int = 0
    _steps: int = 0

    @property
    def content(self) -> str:
        return "".join(self.parts)

    @property
    def truncated(self) -> bool:
        return self.length >= self.limit

    def steps(self, upto: int | None = None) -> list[dict[str, Any]]:
        return steps.fold(self.items if upto is None else self.items[:upto])

    def add(self, item: Any) -> tuple[str, Any] | None:
        """Record what the backend yielded: ``("text", chunk)`` or ``("step", event)`` to relay, or ``None``.

        Raises :class:`BackendError` for something that is none of the kinds a backend may yield.
        """
        if isinstance(item, TextDelta):
            item = item.text
        if isinstance(item, str):
            chunk = self._text(item)
            return ("text", chunk) if chunk else None
        if isinstance(item, ToolCallDelta):
            event = self._tool(item)
        elif isinstance(item, ReasoningDelta):
            event = self._reasoning(item)
        else:
            raise BackendError("The backend produced something other than text or a step.")
        if event is None:
            return None
        self.items.append(event)
        return "step", event

    def close_open(self, status: str) -> list[dict[str, Any]]:
        """End every tool call still open with ``status``; the events to relay."""
        events = steps.close_open(self.items, status)
        for event in events:
            self._tools[event["toolCallId"]].status = status
            self.items.append(event)
        return events

    # --- kinds -------------------------------------------------------------------------

    def _text(self, chunk: str) -> str:
        if not chunk:
            return ""
        chunk = chunk[: self.limit - self.length]
        if chunk:
            self.items.append(chunk)
            self.parts.append(chunk)
            self.length += len(chunk)
        return chunk

    def _tool(self, delta: ToolCallDelta) -> dict[str, Any] | None:
        if not isinstance(delta.id, str) or not delta.id or delta.status not in steps.STATUSES:
            raise BackendError("The backend produced a malformed tool call.")
        call_id = steps.clean(delta.id[: steps.ID_MAX])
        tool = self._tools.get(call_id)
        new = tool is None
        if tool is None:
            if self._steps >= steps.MAX_STEPS:
                return None
            self._steps += 1
            tool = self._tools[call_id] = _Tool(steps.clean(str(delta.name or "tool"))[: steps.NAME_MAX], steps.STARTED)
        elif tool.status in steps.ENDED:
            return None  # nothing changes an ended call
        event: dict[str, Any] = {"type": steps.TOOL, "toolCallId": call_id, "name": tool.name}
        piece = steps.clean(delta.arguments_delta or "")
        room = steps.STEP_TEXT_MAX - tool.length
        if len(piece) > room:
            piece, tool.truncated = piece[:room], True
            event["truncated"] = True
        tool.length += len(piece)
        event["argumentsDelta"] = piece
        event["status"] = delta.status
        if delta.result is not None:
            result = steps.result_text(delta.result)
            if len(result) > steps.STEP_TEXT_MAX:
                result, event["truncated"] = result[: steps.STEP_TEXT_MAX], True
            event["result"] = result
        if not new and not piece and delta.status == tool.status and "result" not in event:
            return None  # nothing new
        tool.status = delta.status
        return event

    def _reasoning(self, delta: ReasoningDelta) -> dict[str, Any] | None:
        text = steps.clean(delta.text or "")
        if not text:
            return None
        if not self._last_step_is_reasoning():
            if self._steps >= steps.MAX_STEPS:
                return None
            self._steps += 1
            self._reasoning_length = 0
        room = steps.STEP_TEXT_MAX - self._reasoning_length
        if room <= 0:
            return None
        text = text[:room]
        self._reasoning_length += len(text)
        return {"type": steps.REASONING, "text": text}

    def _last_step_is_reasoning(self) -> bool:
        for item in reversed(self.items):
            if isinstance(item, dict):
                return item.get("type") == steps.REASONING
        return False
