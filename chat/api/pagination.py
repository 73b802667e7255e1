"""Cursor pagination for every REST list, and seq-based pages for message history.

Layer: REST API.

Lists use DRF's opaque cursors (``?cursor=…``; ``limit`` 1-200, default
50), stable while rows are added.  A cursor that does not decode names no page:
``404 invalid_cursor``.  Message history pages by ``seq``
instead, because clients already hold seqs (see :mod:`chat.api.messages`).
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination

from chat.errors import ChatError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class InvalidCursor(ChatError):
    code = "invalid_cursor"
    default_message = "No such page: use the next and previous links as given."


class Cursor(CursorPagination):
    page_size = DEFAULT_LIMIT
    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT
    page_size_query_description = f"Items per page, 1-{MAX_LIMIT} (default {DEFAULT_LIMIT})."
    ordering = "-created_at"

    def get_page_size(self, request: Any) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            value = int(raw)
        except ValueError:
            raise exceptions.ValidationError({"limit": [f"A whole number from 1 to {MAX_LIMIT}."]}) from None
        if not 1 <= value <= MAX_LIMIT:
            raise exceptions.ValidationError({"limit": [f"A whole number from 1 to {MAX_LIMIT}."]})
        return value

    def decode_cursor(self, request: Any) -> Any:
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            # No such page (DRF's answer too): 404, with a code of its own.
            raise InvalidCursor() from None

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
        return parameters


class NewestFirst(Cursor):
    ordering = ("-created_at", "-pk")


class OldestFirst(Cursor):
    ordering = ("created_at", "pk")
