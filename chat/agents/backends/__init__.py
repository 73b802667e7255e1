"""The agent backends, by the name an ``Agent.backend`` field holds."""

from __future__ import annotations

from typing import Any

from chat.agents.backends.base import (
    AgentBackend,
    AgentContext,
    BackendConfigError,
    BackendError,
    ContextMessage,
)
from chat.agents.backends.echo import EchoBackend
from chat.agents.backends.openai import OpenAIBackend
from chat.agents.backends.parlant import ParlantBackend

BACKENDS: dict[str, type[AgentBackend]] = {
    EchoBackend.name: EchoBackend,
    ParlantBackend.name: ParlantBackend,
    OpenAIBackend.name: OpenAIBackend,
}


def make_backend(name: str, config: dict[str, Any]) -> AgentBackend:
    backend = BACKENDS.get(name)
    if backend is None:
        raise BackendConfigError(f"Unknown agent backend {name[:32]!r}.")
    if not isinstance(config, dict):
        raise BackendConfigError("Agent config must be a JSON object.")
    return backend(config)


__all__ = [
    "BACKENDS",
    "AgentBackend",
    "AgentContext",
    "BackendConfigError",
    "BackendError",
    "ContextMessage",
    "make_backend",
]
