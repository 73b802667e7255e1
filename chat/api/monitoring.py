"""The monitoring API: ``/api/v1/metrics/`` and ``/api/v1/health/``.

Layer: chat application, REST surface, over :mod:`monitoring.service`.

=====================  ==========================================  =====================
``/api/v1/metrics/``   current, summary, health, recommendations    superuser or ops token
``/api/v1/health/``    {status, score, issues, checks}              superuser or ops token;
                                                                   503 unhealthy
=====================  ==========================================  =====================
"""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import async_to_sync
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status as http_status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from chat.api.schema import errors
from monitoring import auth, checks, conf, exposition, probe, service


def _window(request: Any) -> float | None:
    raw = request.query_params.get("window")
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return min(3600.0, max(1.0, value))


async def _report(window: float | None) -> dict[str, Any]:
    """Computed on the event loop, where the hooks write, so nothing is read mid-update."""
    probe.ensure_started()
    dependencies = await checks.check_dependencies()
    summary = service.service.summary(window)
    health = service.service.health(dependencies)
    return {
        "generated_at": int(time.time() * 1000),
        "multiprocess": exposition.multiprocess_mode(),
        "current": service.service.current(),
        "summary": summary,
        "health": health.as_dict(),
        "recommendations": service.service.recommendations(summary, dependencies),
        "dependencies": {name: result.as_dict() for name, result in dependencies.items()},
        "probe_running": probe.running(),
    }


async def _health() -> tuple[service.HealthScore, dict[str, Any]]:
    probe.ensure_started()
    dependencies = await checks.check_dependencies()
    health = service.service.health(dependencies)
    return health, {name: result.as_dict() for name, result in dependencies.items()}


class MonitoringAPIView(APIView):
    authentication_classes = [auth.OpsTokenAuthentication, *api_settings.DEFAULT_AUTHENTICATION_CLASSES]
    permission_classes = [auth.IsSuperuserOrOps]
    # Not throttled: the throttles count in the cache (Redis), and health must answer while Redis is down.
    throttle_classes: list[Any] = []

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response


class MetricsAPIView(MonitoringAPIView):
    """This worker's metrics: current numbers, a windowed summary, health, recommendations.

    ``totals`` are the cumulative Prometheus counters (every worker's, in
    multiprocess mode); ``summary`` is this worker's window.  Query
    parameters: ``window`` (seconds, 1-3600) and ``history=1`` (the last
    hour of dashboard points).
    """

    @extend_schema(
        summary="Metrics summary, health and recommendations",
        responses={200: OpenApiTypes.OBJECT, **errors("forbidden")},
    )
    def get(self, request: Any) -> Response:
        report = async_to_sync(_report)(_window(request))
        report["summary"]["sessions"]["per_workspace"] = service.sessions_per_workspace()
        report["totals"] = exposition.totals()
        if request.query_params.get("history") in ("1", "true"):
            report["history"] = list(service.history)
            report["history_interval_s"] = conf.get().history_interval_s
        return Response(report)


class HealthAPIView(MonitoringAPIView):
    """``{status, score, issues, checks}`` for this worker; 503 when unhealthy."""

    @extend_schema(
        summary="Health status, score and issues",
        responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT, **errors("forbidden")},
    )
    def get(self, request: Any) -> Response:
        health, dependencies = async_to_sync(_health)()
        body = {**health.as_dict(), "dependencies": dependencies, "worker": service._worker_id()}
        code = http_status.HTTP_503_SERVICE_UNAVAILABLE if health.status == "unhealthy" else http_status.HTTP_200_OK
        return Response(body, status=code)
