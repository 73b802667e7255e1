"""The catch-all of ``/api/v1/``: a path that matches no route answers in the API's error shape.

Layer: REST API.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse


def not_found(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"error": "Not found.", "code": "not_found"}, status=404)
