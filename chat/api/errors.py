"""One error shape for the REST API: ``{"error": ..., "code": ...}``, codes shared with the socket protocol.

Layer: REST API.

A :class:`~chat.errors.ChatError` answers with the HTTP status of its code in
:data:`chat.errors.WIRE_ERRORS`, the one table of every surface.  DRF's own
exceptions get the same shape, with their codes renamed where the socket
protocol has a name for the same thing.  A body over Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` (which Django checks before reading it, from
the ``Content-Length`` or, chunked, from what was buffered) is ``413
payload_too_large``, not the 400 Django gives a form post.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from chat.errors import ChatError, wire_error

#: DRF's codes that the socket protocol names differently.
DRF_CODES = {
    "not_authenticated": "unauthenticated",
    "authentication_failed": "unauthenticated",
    "permission_denied": "forbidden",
    "throttled": "rate_limited",
    "parse_error": "invalid_payload",
}


def http_status(error: ChatError) -> int:
    return wire_error(error).http_status


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ChatError):
        return Response(exc.as_payload(), status=http_status(exc))
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        error = {"error": f"Request bodies are limited to {limit} bytes.", "code": "payload_too_large"}
        return Response(error, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"error": "Invalid request.", "code": "invalid_payload", "fields": response.data}
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        code = DRF_CODES.get(code, code)
        response.data = {"error": str(exc.detail), "code": code}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            response.data["retryAfter"] = int(exc.wait * 1000)
    else:  # Http404 and Django's PermissionDenied, converted by DRF
        code = "not_found" if response.status_code == status.HTTP_404_NOT_FOUND else "forbidden"
        response.data = {"error": str(response.data.get("detail", "")), "code": code}
    if response.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in response:
        response["WWW-Authenticate"] = "Bearer"
    return response
