"""Liveness for orchestrators and test harnesses."""

from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving HTTP; says nothing of its dependencies."""
    return JsonResponse({"status": "ok"})
