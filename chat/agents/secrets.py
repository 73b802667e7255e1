"""Keeping agent secrets out of logs, admin pages and API responses.

``Agent.config`` holds API keys next to harmless settings.  Anything that
shows a config -- the admin, the REST API, the ``chat_agent`` command --
shows :func:`masked_config` instead (and saves edits through
:func:`unmask_config`); anything that logs text that might contain a
secret passes it through :func:`redact`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "********"
#: Field names whose string values are secrets.  Names ending in ``_env``
#: hold the *names* of environment variables, which are not secret.
_SECRET_NAME = re.compile(r"(key|secret|token|passw|credential|authorization|bearer|cookie|signature)", re.I)
_NOT_SECRET_NAME = re.compile(r"(_env|_envs|_id)$", re.I)
_MIN_SECRET_LENGTH = 4


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name)) and not _NOT_SECRET_NAME.search(name)


def masked_config(agent_or_config: Any) -> dict[str, Any]:
    """A copy of an agent's config (or of a config dict) safe to show to anyone.

    String values under secret-looking names (``api_key``, ``api_keys``,
    ``token``, ``password``, ``Authorization``...) become ``"********"``, at
    any depth and inside lists; passwords in URLs and secret-looking query
    parameters are masked too.  Numbers, booleans and ``None`` are kept
    (``max_tokens: 512`` is not a secret), and so is the shape, so an admin
    can see which keys are set.
    """
    config = getattr(agent_or_config, "config", agent_or_config)
    if not isinstance(config, dict):
        return {}
    return _mask(config, secret=False)


def _mask(value: Any, *, secret: bool) -> Any:
    if isinstance(value, dict):
        return {key: _mask(item, secret=secret or is_secret_name(str(key))) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask(item, secret=secret) for item in value]
    if isinstance(value, str):
        if secret:
            return MASK if value else value
        return _mask_url(value)
    return value


def _mask_url(value: str) -> str:
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        netloc = parts.netloc
        if parts.password:
            netloc = netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(is_secret_name(k) for k, _ in pairs):
                query = urlencode([(k, MASK if is_secret_name(k) else v) for k, v in pairs])
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return value


def unmask_config(new: Any, old: Any) -> Any:
    """``new`` (an edited :func:`masked_config`) with the stored secrets put back where it still shows masks.

    For forms and APIs that show a masked config and save what comes back:
    a value left as ``"********"``, or a URL left exactly as it was shown
    (its password or secret query parameters masked), keeps the stored
    value; anything changed is taken as the new value.
    """
    if isinstance(new, str):
        if isinstance(old, str) and MASK in new and (new == MASK or _mask_url(old) == new):
            return old
        return new
    if isinstance(new, dict) and isinstance(old, dict):
        return {key: unmask_config(value, old.get(key)) for key, value in new.items()}
    if isinstance(new, list) and isinstance(old, list):
        return [unmask_config(value, old[i] if i < len(old) else None) for i, value in enumerate(new)]
    return new


def secret_values(agent_or_config: Any) -> list[str]:
    """Every secret string in a config (for :func:`redact`)."""
    config = getattr(agent_or_config, "config", agent_or_config)
    found: list[str] = []

    def walk(value: Any, secret: bool) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, secret or is_secret_name(str(key)))
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, secret)
        elif isinstance(value, str):
            if secret and len(value) >= _MIN_SECRET_LENGTH:
                found.append(value)
            elif "://" in value:
                try:
                    password = urlsplit(value).password
                except ValueError:
                    password = None
                if password and len(password) >= _MIN_SECRET_LENGTH:
                    found.append(password)

    walk(config if isinstance(config, dict) else {}, False)
    return found


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every occurrence of every secret replaced by the mask."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return re.sub(r"(?i)(bearer\s+)[^\s\"',]+", rf"\1{MASK}", text)
