"""What a workspace admin may put in an agent's config: :func:`validate_agent_config`.

Hosts and credentials are the operator's: a config may only name a URL on
a host of ``CHAT_AGENT_ALLOWED_HOSTS`` (:mod:`chat.agents.network`), and
``api_key_env`` may only name variables starting with ``CHAT_AGENT_KEY_``
(:data:`chat.agents.backends.openai.KEY_ENV_PREFIX`), read only for hosts
the operator listed by name.
Timeouts are bounded.  Every surface that saves an agent (the admin, the
``chat_agent`` command) calls :func:`validate_agent_config`; the backends
check the same rules again when they run, for configs saved before.

:func:`edited_config` is how a form that showed :func:`~chat.agents.secrets.masked_config`
saves what comes back: masked secrets keep their stored values unless the
URL they were for changed, in which case they must be entered again.
"""

from __future__ import annotations

from typing import Any

from chat.agents.backends import BACKENDS, openai, parlant
from chat.agents.backends.base import MAX_TIMEOUT_S, MAX_WAIT_S, BackendConfigError
from chat.agents.errors import AgentConfigInvalid
from chat.agents.network import OutboundPolicy
from chat.agents.secrets import MASK, unmask_config

#: Config fields holding the URL an agent calls, by backend.
URL_FIELDS = {"openai": "base_url", "parlant": "url"}
CONTENT_TYPES = ("markdown", "text")


def _number(config: dict[str, Any], name: str, low: float, high: float, *, low_inclusive: bool = True) -> None:
    value = config.get(name)
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (value >= low if low_inclusive else value > low) and value <= high
    if not ok:
        raise AgentConfigInvalid(f"Agent config {name!r} must be a number from {low} to {high}.")


def _string(config: dict[str, Any], name: str, *, required: bool = False) -> None:
    value = config.get(name)
    if value is None and not required:
        return
    if not isinstance(value, str) or not value:
        raise AgentConfigInvalid(f"Agent config {name!r} must be a non-empty string.")


def _no_masks_left(value: Any, path: str = "") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _no_masks_left(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            _no_masks_left(item, path)
    elif isinstance(value, str) and MASK in value:
        raise AgentConfigInvalid(
            f"Agent config {path!r} still shows {MASK}: enter the secret again (it is not kept when the URL changes)."
        )


def validate_agent_config(backend: str, config: Any) -> dict[str, Any]:
    """``config`` if a workspace admin may save it for ``backend``, else :class:`AgentConfigInvalid` saying why."""
    if backend not in BACKENDS:
        raise AgentConfigInvalid(f"Unknown agent backend; choose one of {', '.join(sorted(BACKENDS))}.")
    if not isinstance(config, dict):
        raise AgentConfigInvalid("The agent config must be a JSON object.")
    _no_masks_left(config)
    _number(config, "timeout_s", 0, MAX_TIMEOUT_S, low_inclusive=False)
    if config.get("content_type", "markdown") not in CONTENT_TYPES:
        raise AgentConfigInvalid("Agent config 'content_type' must be 'markdown' or 'text'.")
    policy = OutboundPolicy.from_settings()
    try:
        if backend == "openai":
            _validate_openai(config, policy)
        elif backend == "parlant":
            _validate_parlant(config, policy)
    except BackendConfigError as error:
        raise AgentConfigInvalid(error.message) from None
    return config


def _validate_openai(config: dict[str, Any], policy: OutboundPolicy) -> None:
    _string(config, "model", required=True)
    _string(config, "system_prompt")
    base_url = config.get("base_url", openai.DEFAULT_BASE_URL)
    if not isinstance(base_url, str):
        raise AgentConfigInvalid("Agent config 'base_url' must be an http or https URL.")
    host = policy.check_url(base_url, "base_url")
    # Checks api_key/api_keys/api_key_env and their count, reading no variable.
    openai.resolve_keys(config, {}, from_environment=policy.host_listed(host))
    _number(config, "read_timeout_s", 1, MAX_TIMEOUT_S)
    _number(config, "max_context_messages", 0, 200)
    _number(config, "max_context_chars", 0, 200_000)


def _validate_parlant(config: dict[str, Any], policy: OutboundPolicy) -> None:
    _string(config, "agent_id", required=True)
    _string(config, "customer_id")
    url = config.get("url", parlant.DEFAULT_URL)
    if not isinstance(url, str):
        raise AgentConfigInvalid("Agent config 'url' must be an http or https URL.")
    policy.check_url(url, "url")
    _number(config, "wait_for_data_s", 1, MAX_WAIT_S)


def edited_config(new: Any, old: Any) -> Any:
    """``new`` (an edited masked config) with the stored secrets put back -- unless the agent's URL changed.

    A key entered for one host must not follow the agent to another: when
    ``base_url``/``url`` differs from the stored one, masks are left as they
    are and :func:`validate_agent_config` asks for the secrets again.
    """
    if not isinstance(new, dict) or not isinstance(old, dict):
        return new
    for name in set(URL_FIELDS.values()):
        if name in new or name in old:
            if unmask_config(new.get(name), old.get(name)) != old.get(name):
                return new
    return unmask_config(new, old)
