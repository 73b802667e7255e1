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


#: The HTTP scheme of a page that would open this request (a WebSocket's is the page's too).
_PAGE_SCHEME = {"ws": "http", "wss": "https"}


def request_origin(scope: dict[str, Any]) -> str:
    """``scheme://host[:port]`` the request was sent to: what a same-origin page's ``Origin`` is."""
    scheme = str(scope.get("scheme") or "http").lower()
    scheme = _PAGE_SCHEME.get(scheme, scheme)
    host = header(scope, b"host")
    if host is None:
        server = scope.get("server") or ("", None)
        host = f"{server[0]}:{server[1]}" if server[1] is not None else str(server[0])
    return f"{scheme}://{host.strip().lower()}"
