"""``openai``: any OpenAI-compatible chat-completions endpoint, streamed.

Wire format (the public OpenAI API, also spoken by vLLM, llama.cpp, Ollama,
LiteLLM...): ``POST {base_url}/chat/completions`` with
``{"model", "messages", "stream": true}`` and ``Authorization: Bearer <key>``;
the answer is Server-Sent Events, one ``data: {json}`` per event with the
text in ``choices[0].delta.content``, ending with ``data: [DONE]``; tool
calls (``delta.tool_calls``) and reasoning (``delta.reasoning_content`` /
``delta.reasoning``) are passed on as steps (:mod:`.openai_stream` reads
the stream).

Config::

    {
      "base_url": "https://api.openai.com/v1",   # default
      "model": "gpt-4o-mini",                    # required
      "api_key": "sk-...",          # or "api_keys": ["sk-1", "sk-2"],
      "api_key_env": ["CHAT_AGENT_KEY_TEAM"],    # or variables holding keys (CHAT_AGENT_KEY_* only)
      "system_prompt": "...",                    # optional
      "max_context_messages": 20,                # default 20
      "max_context_chars": 24000,                # default 24000
      "temperature": 0.2, "max_tokens": 512,     # optional, passed through
      "read_timeout_s": 60                       # longest silence mid-stream
    }

Keys.  Explicit ``api_key``/``api_keys`` win (at most ``MAX_KEYS``);
otherwise the variables named by ``api_key_env``, which must start with
``CHAT_AGENT_KEY_``; otherwise ``OPENAI_API_KEY_1``, ``_2``, ``_3`` and
``OPENAI_API_KEY`` from the environment.  Keys from the environment are
the operator's: they are read only when ``base_url``'s host is listed by
name in ``CHAT_AGENT_ALLOWED_HOSTS`` (:mod:`chat.agents.network` decides
where an agent may connect at all).  No key at all is allowed (local
servers need none): the request is sent without ``Authorization``.

Rotation.  A ``429`` or ``5xx`` answer before the stream starts moves to the
next key and retries, each key at most once per run; the next run of any
agent with the same keys starts from the key after the last one that
failed, so load spreads away from a rate-limited key.  Once text has been
streamed nothing is retried: a stream that ends without ``[DONE]`` (and
without a ``finish_reason``) fails with ``stream_interrupted``.

Context.  The session's recent history goes first (``user`` messages as
``user``, the agent's as ``assistant``; system notes are left out), bounded
by ``max_context_messages`` messages and ``max_context_chars`` characters of
content, newest kept; the new message always goes last, after the optional
``system_prompt``.

Nothing here logs or raises a key, a header or an upstream body: errors
carry a status code at most, and only the server log sees that (clients
get the code, :mod:`chat.agents.runner`).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, AsyncIterator

import aiohttp

from chat.agents import network
from chat.agents.backends.base import (
    MAX_TIMEOUT_S,
    AgentBackend,
    AgentContext,
    BackendConfigError,
    BackendError,
    ContextMessage,
    config_number,
    config_str,
)
from chat.agents.backends.openai_stream import Item, read_stream

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = ("OPENAI_API_KEY_1", "OPENAI_API_KEY_2", "OPENAI_API_KEY_3", "OPENAI_API_KEY")
DEFAULT_MAX_CONTEXT_MESSAGES = 20
DEFAULT_MAX_CONTEXT_CHARS = 24_000
DEFAULT_READ_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 10
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: The only environment variables ``api_key_env`` may name start with this.
KEY_ENV_PREFIX = "CHAT_AGENT_KEY_"
_KEY_ENV_NAME = re.compile(rf"^{KEY_ENV_PREFIX}[A-Z0-9_]{{1,64}}$")
#: Most keys one agent rotates through (each is tried at most once per run).
MAX_KEYS = 8
#: Where the next run starts in each key set (by the set's size and a hash
#: of it, never the keys themselves): shared by every agent of the process.
_rotation: dict[int, int] = {}


def key_env_names(config: dict[str, Any]) -> list[str] | None:
    """The variables ``api_key_env`` names (``None`` when unset); only ``CHAT_AGENT_KEY_*`` ones are allowed."""
    names = config.get("api_key_env")
    if names in (None, "", []):
        return None
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) and _KEY_ENV_NAME.match(n) for n in names):
        raise BackendConfigError(f"Agent config 'api_key_env' may only name variables starting with {KEY_ENV_PREFIX}.")
    return names


def resolve_keys(
    config: dict[str, Any], environ: dict[str, str] | os._Environ = os.environ, *, from_environment: bool = True
) -> list[str]:
    """The keys to rotate through: the config's own, else the environment's (only when ``from_environment``)."""
    explicit = config.get("api_keys") or []
    if isinstance(explicit, str):
        explicit = [explicit]
    if config.get("api_key"):
        explicit = [config["api_key"], *explicit]
    if not isinstance(explicit, list) or not all(isinstance(k, str) for k in explicit):
        raise BackendConfigError("Agent config 'api_key'/'api_keys' must be strings.")
    names = key_env_names(config)
    if explicit:
        keys = explicit
    elif names is not None and not from_environment:
        raise BackendConfigError("Agent config 'api_key_env' is only allowed for hosts the operator listed by name.")
    elif from_environment:
        keys = [environ.get(name, "") for name in (names or DEFAULT_KEY_ENV)]
    else:
        keys = []
    unique: list[str] = []
    for key in keys:
        key = key.strip()
        if key and key not in unique:
            unique.append(key)
    if len(unique) > MAX_KEYS:
        raise BackendConfigError(f"An agent may rotate through at most {MAX_KEYS} keys.")
    return unique


def build_messages(context: AgentContext, config: dict[str, Any]) -> list[dict[str, Any]]:
    max_messages = int(config_number(config, "max_context_messages", DEFAULT_MAX_CONTEXT_MESSAGES))
    budget = int(config_number(config, "max_context_chars", DEFAULT_MAX_CONTEXT_CHARS))
    budget -= len(context.message.content)
    picked: list[ContextMessage] = []
    for message in reversed(context.history):
        if len(picked) >= max_messages:
            break
        if message.sender_type not in ("user", "agent"):
            continue
        if len(message.content) > budget:
            break
        budget -= len(message.content)
        picked.append(message)
    messages: list[dict[str, Any]] = []
    system_prompt = config.get("system_prompt")
    if isinstance(system_prompt, str) and system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    for message in [*reversed(picked), context.message]:
        entry: dict[str, Any] = {
            "role": "assistant" if message.sender_type == "agent" else "user",
            "content": message.content,
        }
        if message.sender_type == "user" and _NAME.match(message.sender_name):
            entry["name"] = message.sender_name
        messages.append(entry)
    return messages


class _Retry(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class OpenAIBackend(AgentBackend):
    name = "openai"

    async def stream(self, context: AgentContext) -> AsyncIterator[Item]:
        config = self.config
        base_url = config_str(config, "base_url", DEFAULT_BASE_URL).rstrip("/")
        body: dict[str, Any] = {
            "model": config_str(config, "model"),
            "messages": build_messages(context, config),
            "stream": True,
        }
        for name in ("temperature", "max_tokens", "top_p"):
            if name in config:
                body[name] = config[name]
        policy = network.OutboundPolicy.from_settings()
        host = policy.check_url(base_url, "base_url")
        keys = resolve_keys(config, from_environment=policy.host_listed(host))
        read_timeout = config_number(
            config, "read_timeout_s", DEFAULT_READ_TIMEOUT_S, minimum=0.001, maximum=MAX_TIMEOUT_S
        )
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S, sock_read=read_timeout)
        ring = hash(tuple(keys))
        attempts = max(1, len(keys))
        start = _rotation.get(ring, 0) % attempts
        last_status = 0
        async with await network.open_session(base_url, "base_url", timeout=timeout) as http:
            for attempt in range(attempts):
                index = (start + attempt) % attempts
                headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
                if keys:
                    headers["Authorization"] = f"Bearer {keys[index]}"
                try:
                    async for chunk in self._one_request(http, f"{base_url}/chat/completions", headers, body):
                        yield chunk
                    return
                except _Retry as retry:
                    last_status = retry.status
                    _rotation[ring] = (index + 1) % attempts
                    logger.warning(
                        "openai backend: HTTP %s with key %d of %d; rotating", retry.status, index + 1, len(keys)
                    )
        if last_status == 429:
            raise BackendError("The agent's provider is rate limiting every configured key.", code="rate_limited")
        raise BackendError(f"The agent's provider failed (HTTP {last_status}).", code="upstream_error")

    async def _one_request(
        self, http: aiohttp.ClientSession, url: str, headers: dict[str, str], body: dict[str, Any]
    ) -> AsyncIterator[Item]:
        started = False
        try:
            async with http.post(url, json=body, headers=headers, allow_redirects=False) as response:
                if response.status == 429 or response.status >= 500:
                    raise _Retry(response.status)
                if response.status in (401, 403):
                    raise BackendError("The agent's provider refused its credentials.", code="upstream_auth")
                if response.status != 200:
                    raise BackendError(f"The agent's provider answered HTTP {response.status}.", code="upstream_error")
                async for item in read_stream(response):
                    started = True
                    yield item
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as error:
            if started:
                raise BackendError("The agent's stream was cut off.", code="stream_interrupted") from None
            raise BackendError(f"Could not reach the agent's provider ({type(error).__name__}).") from None
        except aiohttp.ClientError as error:
            refused = network.refusal(error)
            if refused is not None:
                raise refused from None
            code = "stream_interrupted" if started else "backend_unreachable"
            raise BackendError(f"Could not reach the agent's provider ({type(error).__name__}).", code=code) from None
