"""A Parlant request and its answers: the call, JSON and SSE answers, and parsing with FastAPI's 422 bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

from chat.models import Membership
from chat.parlant.shapes import invalid
from chat.parlant.watch import Watcher

# --- requests and answers ---------------------------------------------------------------------


@dataclass
class Call:
    """One request, once its route and caller are known."""

    scope: dict[str, Any]
    method: str
    workspace: str
    #: The path without the prefix and token (safe to show).
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: bytes
    user: Any = None
    membership: Membership | None = None

    def header(self, name: bytes) -> str | None:
        return header(self.scope, name)


@dataclass
class Json:
    status: int
    body: Any
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class Stream:
    """A ``text/event-stream`` answer: ``frames`` yields the bytes to send, as they come."""

    frames: AsyncIterator[bytes]


#: An endpoint: the worker's watcher and the call -> the answer.
Handler = Callable[[Watcher, Call], Awaitable["Json | Stream"]]


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def sse_frame(event: dict[str, Any]) -> bytes:
    """Parlant's frame, ``data: <event JSON>``, preceded by ``id: <offset>`` (so ``Last-Event-ID`` resumes)."""
    return b"id: %d\ndata: %s\n\n" % (event["offset"], dumps(event))


# --- query and body parsing, with FastAPI's 422 bodies -------------------------------------------------

_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}


def query_value(call: Call, name: str) -> str | None:
    values = call.query.get(name)
    return values[-1] if values else None


def query_int(call: Call, name: str, default: int | None) -> int | None:
    raw = query_value(call, name)
    if raw is None:
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise invalid(
            ["query", name], "Input should be a valid integer, unable to parse string as an integer", "int_parsing", raw
        ) from None


def query_bool(call: Call, name: str, default: bool) -> bool:
    raw = query_value(call, name)
    if raw is None:
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise invalid(["query", name], "Input should be a valid boolean, unable to interpret input", "bool_parsing", raw)


def one_of(loc: list[Any], value: Any, allowed: tuple[str, ...]) -> str:
    if isinstance(value, str) and value in allowed:
        return value
    expected = ", ".join(f"'{a}'" for a in allowed[:-1]) + f" or '{allowed[-1]}'"
    raise invalid(loc, f"Input should be {expected}", "enum", value)


def json_object(call: Call) -> dict[str, Any]:
    try:
        body = json.loads(call.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise invalid(["body", 0], "JSON decode error", "json_invalid", {}) from None
    if not isinstance(body, dict):
        raise invalid(
            ["body"],
            "Input should be a valid dictionary or object to extract fields from",
            "model_attributes_type",
            body,
        )
    return body


def body_str(body: dict[str, Any], name: str, *, required: bool, max_length: int | None = None) -> str | None:
    if name not in body or body[name] is None:
        if required:
            raise invalid(["body", name], "Field required", "missing", body)
        return None
    value = body[name]
    if not isinstance(value, str):
        raise invalid(["body", name], "Input should be a valid string", "string_type", value)
    if max_length is not None and len(value) > max_length:
        raise invalid(["body", name], f"String should have at most {max_length} characters", "string_too_long", value)
    return value
