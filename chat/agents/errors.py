"""Errors of ``chat:cancel-agent``, with stable codes like every :class:`~chat.errors.ChatError`."""

from __future__ import annotations

from chat.errors import ChatError


class AgentRunNotFound(ChatError):
    code = "agent_run_not_found"
    default_message = "No agent reply with that id in this session."


class AgentRunFinished(ChatError):
    code = "agent_run_finished"
    default_message = "That agent reply has already finished."
