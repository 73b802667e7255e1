"""The one interface every agent backend implements, and what it is given.

A backend turns a session's context and the new user message into an async
stream of text chunks::

    class MyBackend(AgentBackend):
        name = "mine"

        async def stream(self, context: AgentContext) -> AsyncIterator[str]:
            yield "Hello"
            yield ", world"

The runner (:mod:`chat.agents.runner`) does everything else: the typing
indicator, relaying each chunk to the session as it is yielded, the
timeout, cancellation (the stream is cancelled like any task), storing the
reply.  A backend reports failure by raising :class:`BackendError` with a
stable code; any other exception counts as ``backend_error``.  Neither a
message nor a log line of a backend may contain a secret or an upstream
response body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, ClassVar

#: What a backend may report besides text: Parlant's status events map here.
STATUS_TYPING = "typing"
STATUS_PROCESSING = "processing"
STATUS_READY = "ready"

#: The longest an agent's ``timeout_s`` (and any per-read timeout) may be.
MAX_TIMEOUT_S = 120
#: The longest long-poll window a backend may ask its provider for.
MAX_WAIT_S = 60


class BackendError(Exception):
    """A run failed for a reason the backend understands.

    ``code`` ends up in the stream's final chunk, the run row and the
    system message's metadata; ``message`` is a sentence for people and
    must not quote upstream responses (they may echo a key).
    """

    code = "backend_error"

    def __init__(self, message: str = "The agent backend failed.", *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BackendConfigError(BackendError):
    code = "agent_misconfigured"


@dataclass(frozen=True)
class ContextMessage:
    """One message of the session as a backend sees it."""

    key: str
    seq: int
    #: ``user``, ``agent`` or ``system``.
    sender_type: str
    sender_name: str
    content: str


async def _ignore_status(status: str) -> None:
    return None


async def _no_state(state: dict[str, Any]) -> None:
    return None


@dataclass
class AgentContext:
    """Everything a backend gets for one run."""

    session_id: int
    session_key: str
    workspace_slug: str
    agent_key: str
    agent_name: str
    #: The agent's full configuration, secrets included: never log it.
    config: dict[str, Any]
    #: The user message being answered.
    message: ContextMessage
    #: Earlier messages of the session, oldest first (hidden ones left out);
    #: at most ``HISTORY_LIMIT`` of them.
    history: list[ContextMessage] = field(default_factory=list)
    #: What this backend stored for this session and agent in earlier runs.
    state: dict[str, Any] = field(default_factory=dict)
    #: Persist ``state`` (e.g. the id of a session on the provider's side).
    save_state: Callable[[dict[str, Any]], Awaitable[None]] = _no_state
    #: Report a status (``typing``, ``processing``, ``ready``): drives the typing indicator.
    report_status: Callable[[str], Awaitable[None]] = _ignore_status


class AgentBackend:
    """Subclass, set ``name``, implement :meth:`stream`; register in :mod:`chat.agents.backends`."""

    name: ClassVar[str] = ""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def stream(self, context: AgentContext) -> AsyncIterator[str]:  # pragma: no cover - interface
        raise NotImplementedError


def config_number(
    config: dict[str, Any], name: str, default: float, *, minimum: float = 0, maximum: float | None = None
) -> float:
    """A numeric config value, or :class:`BackendConfigError` naming the field (never its value)."""
    value = config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise BackendConfigError(f"Agent config {name!r} must be a number of at least {minimum}.")
    if maximum is not None and value > maximum:
        raise BackendConfigError(f"Agent config {name!r} must be a number of at most {maximum}.")
    return value


def config_str(config: dict[str, Any], name: str, default: str | None = None) -> str:
    value = config.get(name, default)
    if not isinstance(value, str) or not value:
        raise BackendConfigError(f"Agent config {name!r} must be a non-empty string.")
    return value
