"""Parlant's JSON shapes for agents and sessions, and its error bodies, made from our objects.

Layer: the Parlant-compatible API.  Field names and values follow Parlant's
``AgentDTO`` and ``SessionDTO`` (``parlant.api.agents`` / ``parlant.api.sessions``,
3.x), which ``parlant-client`` 0.10 (bundled in ``parlant-chat-react``)
parses; events are shaped in :func:`chat.parlant.log.event_shape`.

Errors: Parlant (FastAPI) answers ``{"detail": "..."}`` -- or, for a
request that fails validation, 422 with ``{"detail": [{"type", "loc",
"msg", "input"}]}`` -- with 404 for what does not exist, 422 for invalid
input, 429 when rate limited, 403 when not authorised and 504 when a
long-poll times out.  Ours are the same bodies and statuses, plus our
stable ``code`` (``chat/errors.py``) and its details (``retryAfter``...)
next to ``detail``, which Parlant clients ignore.
"""

from __future__ import annotations

from typing import Any

from chat.errors import ChatError, wire_error
from chat.models import Agent, ChatSession
from chat.parlant.log import iso

#: Our codes where Parlant has a status for the same thing; other codes keep ours (``chat.errors.WIRE_ERRORS``).
PARLANT_STATUS = {
    "invalid_payload": 422,
    "message_too_long": 422,
    "metadata_too_large": 422,
    "message_blocked": 422,
    "spam_detected": 429,
    "rate_limited": 429,
    "unauthenticated": 403,
    "forbidden": 403,
    "muted": 403,
    "banned": 403,
    "not_a_member": 404,
    "session_not_found": 404,
    "agent_not_found": 404,
    "event_not_found": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 504,
}


class ApiError(Exception):
    """An answer in Parlant's error shape: ``status`` and ``{"detail": ..., "code": ..., **details}``."""

    def __init__(self, status: int, detail: Any, code: str, **details: Any) -> None:
        super().__init__(code)
        self.status = status
        self.detail = detail
        self.code = code
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "code": self.code, **self.details}

    @classmethod
    def of(cls, error: ChatError) -> ApiError:
        """Our error, with Parlant's status for it where Parlant has one."""
        details = {key: value for key, value in error.details.items() if key not in ("detail", "code")}
        return cls(PARLANT_STATUS.get(error.code, wire_error(error).http_status), error.message, error.code, **details)


def not_found(what: str = "Not Found") -> ApiError:
    return ApiError(404, what, "not_found")


def invalid(loc: list[Any], msg: str, kind: str, value: Any = None) -> ApiError:
    """FastAPI's 422 body for one invalid field (``loc`` like ``["query", "min_offset"]``)."""
    item = {"type": kind, "loc": loc, "msg": msg, "input": value}
    return ApiError(422, [item], "invalid_payload")


def unprocessable(detail: str) -> ApiError:
    """Parlant's 422 with a sentence (``HTTPException(422, detail=...)`` in ``parlant.api.sessions``)."""
    return ApiError(422, detail, "invalid_payload")


def agent_shape(agent: Agent) -> dict[str, Any]:
    """Parlant's ``AgentDTO``: our agents stream their replies and compose freely."""
    return {
        "id": agent.key,
        "name": agent.name,
        "description": None,
        "creation_utc": iso(agent.created_at),
        "max_engine_iterations": 1,
        "composition_mode": "fluid",
        "message_output_mode": "stream",
        "tags": [],
    }


def session_shape(session: ChatSession) -> dict[str, Any]:
    """Parlant's ``SessionDTO``: the customer is the session's creator; we keep no consumption offsets."""
    creator = session.created_by.get_username() if session.created_by_id is not None else "guest"
    return {
        "id": session.key,
        "agent_id": session.agent.key if session.agent_id is not None else "",
        "customer_id": creator,
        "creation_utc": iso(session.created_at),
        "title": session.title or None,
        "mode": "auto",
        "consumption_offsets": {"client": 0},
        "metadata": {},
        "labels": [],
    }
