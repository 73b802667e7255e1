"""Errors of ``chat:cancel-agent`` and of saving an agent, with stable codes like every :class:`~chat.errors.ChatError`."""

from __future__ import annotations

from chat.errors import ChatError


class AgentRunNotFound(ChatError):
    code = "agent_run_not_found"
    default_message = "No agent reply with that id in this session."


class AgentRunFinished(ChatError):
    code = "agent_run_finished"
    default_message = "That agent reply has already finished."


class AgentConfigInvalid(ChatError):
    """An agent's backend or config that a workspace admin may not save (``chat.agents.validation``)."""

    code = "agent_config_invalid"
    default_message = "The agent's config is not valid."
