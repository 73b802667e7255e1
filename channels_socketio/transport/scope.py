"""Reading an ASGI scope: the query string and headers, as the Engine.IO checks need them.

Layer: transport.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs


def query_params(scope: dict[str, Any]) -> dict[str, str]:
    """The query string as single values (the last one wins, as in Node)."""
    raw = scope.get("query_string", b"").decode("latin-1")
    return {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None
