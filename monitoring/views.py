"""Liveness, readiness, Prometheus exposition, the monitoring API and the staff dashboard.

=====================  ==========================================  =====================
``/healthz``           liveness: the process serves HTTP            200 always
``/readyz``            readiness: database and channel layer        200 ready, 503 not
``/metrics``           Prometheus text (or OpenMetrics) format      public unless
                                                                    CHAT_METRICS_PUBLIC=0
``/api/v1/metrics/``   current, summary, health, recommendations    staff or ops token
``/api/v1/health/``    {status, score, issues, checks}              200, 503 unhealthy
``/admin/monitoring/`` live dashboard                               staff (admin login)
=====================  ==========================================  =====================
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from prometheus_client.exposition import choose_encoder
from rest_framework import status as http_status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from chat.api.schema import errors
from monitoring import auth, checks, conf, exposition, metrics, probe, service

NO_STORE = {"Cache-Control": "no-store"}


def _json(data: dict[str, Any], status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, headers=NO_STORE)


# --- orchestrators ---------------------------------------------------------------------------


async def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving HTTP; says nothing of its dependencies."""
    probe.ensure_started()
    return _json({"status": "ok"})


async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic when the database and the channel layer both answer."""
    probe.ensure_started()
    results = await checks.check_dependencies()
    ready = all(result.ok for result in results.values())
    metrics.READINESS_CHECKS.labels("ready" if ready else "not_ready").inc()
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {name: result.as_dict() for name, result in results.items()},
    }
    return _json(body, 200 if ready else 503)


# --- Prometheus -------------------------------------------------------------------------------


def _metrics_allowed(request: HttpRequest) -> bool:
    if conf.get().metrics_public:
        return True
    if auth.is_ops_token(auth.bearer(request.headers.get("Authorization", ""))):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


def _render(accept: str) -> tuple[bytes, str]:
    encoder, content_type = choose_encoder(accept)
    return encoder(exposition.registry()), content_type


async def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """Every metric, summed over worker processes in multiprocess mode."""
    probe.ensure_started()
    if not await sync_to_async(_metrics_allowed)(request):
        return HttpResponse("Staff or the ops token only.\n", status=401, content_type="text/plain")
    body, content_type = await sync_to_async(_render, thread_sensitive=False)(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type, headers=NO_STORE)


# --- the monitoring API ------------------------------------------------------------------------


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
    permission_classes = [auth.IsStaffOrOps]
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


# --- dashboard --------------------------------------------------------------------------------


def dashboard(request: HttpRequest) -> HttpResponse:
    """The staff dashboard (wrapped in ``admin_view`` by the URLconf: staff only)."""
    config = conf.get()
    return render(
        request,
        "monitoring/dashboard.html",
        {
            "refresh_ms": max(1000, config.history_interval_s * 1000),
            "window_s": config.window_s,
            "title": "Monitoring",
        },
    )


# --- test hooks (CHAT_TEST_HOOKS=1 and DEBUG only) ----------------------------------------------


async def block_loop(request: HttpRequest) -> JsonResponse:
    """Hold the event loop for ``?seconds=`` (at most 10): what a blocking call in a handler does."""
    if not conf.test_hooks_enabled():
        raise Http404()
    try:
        seconds = min(10.0, max(0.0, float(request.GET.get("seconds", "1"))))
    except ValueError:
        seconds = 1.0
    probe.ensure_started()
    await asyncio.sleep(0)
    time.sleep(seconds)  # deliberately blocking: this is the fault being simulated
    return _json({"blocked_s": seconds})
