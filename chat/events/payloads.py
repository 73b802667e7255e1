"""Reading fields out of client payloads, trusting nothing about their types or sizes."""

from __future__ import annotations

from typing import Any

from chat.errors import InvalidPayload, TooManyAttachments
from chat.ids import is_attachment_id, is_client_id, is_slug


def payload_object(args: tuple[Any, ...]) -> dict[str, Any]:
    """Chat events carry exactly one JSON object."""
    if len(args) != 1 or not isinstance(args[0], dict):
        raise InvalidPayload("The event payload must be a single JSON object.")
    return args[0]


def required_client_id(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not is_client_id(value):
        raise InvalidPayload(f"{name} must be 1-128 characters of A-Z, a-z, 0-9, _ and -.")
    return value


def optional_client_id(payload: dict[str, Any], name: str) -> str | None:
    if payload.get(name) is None:
        return None
    return required_client_id(payload, name)


def required_slug(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not is_slug(value):
        raise InvalidPayload(f"{name} must be a workspace slug (1-64 characters of A-Z, a-z, 0-9, _ and -).")
    return value


def optional_str(payload: dict[str, Any], name: str, *, max_length: int) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise InvalidPayload(f"{name} must be a string of at most {max_length} characters.")
    return value


def required_bool(payload: dict[str, Any], name: str) -> bool:
    value = payload.get(name)
    if not isinstance(value, bool):
        raise InvalidPayload(f"{name} must be true or false.")
    return value


def optional_int(payload: dict[str, Any], name: str) -> int | None:
    """An integer the client chose; ``True`` is not one, and neither is 1.5."""
    value = payload.get(name)
    if value is None:
        return None
    if type(value) is not int:
        raise InvalidPayload(f"{name} must be a whole number.")
    if abs(value) > 2**53:
        raise InvalidPayload(f"{name} is out of range.")
    return value


def required_object(payload: dict[str, Any], name: str) -> dict[str, Any]:
    value = payload.get(name)
    if not isinstance(value, dict):
        raise InvalidPayload(f"{name} must be a JSON object.")
    return value


def attachment_ids(payload: dict[str, Any], name: str, *, limit: int) -> tuple[str, ...]:
    """A list of at most ``limit`` attachment ids (``too_many_attachments`` beyond, before any is read)."""
    value = payload.get(name)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidPayload(f"{name} must be a list of attachment ids.")
    if len(value) > limit:
        raise TooManyAttachments(limit=limit)
    if not all(is_attachment_id(item) for item in value):
        raise InvalidPayload(f"{name} must hold attachment ids (32 hex digits).")
    return tuple(value)
