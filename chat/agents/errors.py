"""Errors of ``chat:cancel-agent``, ``chat:regenerate`` and of saving an agent, with stable codes like every :class:`~chat.errors.ChatError`."""

from __future__ import annotations

from chat.errors import ChatError


class AgentRunNotFound(ChatError):
    code = "agent_run_not_found"
    default_message = "No agent reply with that id in this session."


class AgentRunFinished(ChatError):
    code = "agent_run_finished"
    default_message = "That agent reply has already finished."


class AgentRunActive(ChatError):
    """``chat:regenerate`` while a run of the same message is queued or running (one at a time per reply)."""

    code = "agent_run_active"
    default_message = "The agent is already answering that message; cancel it or wait for it to finish."


class AgentConfigInvalid(ChatError):
    """An agent's backend or config that a workspace admin may not save (``chat.agents.validation``)."""

    code = "agent_config_invalid"
    default_message = "The agent's config is not valid."
