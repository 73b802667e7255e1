"""Liveness, readiness, Prometheus exposition and the dashboard.

Everything but liveness and readiness shows every workspace, so it is for
superusers and the ops token only (:mod:`monitoring.auth`).

The monitoring API (``/api/v1/metrics/``, ``/api/v1/health/``) is part of
the REST API, in :mod:`chat.api.monitoring`, built on :mod:`monitoring.service`.

=====================  ==========================================  =====================
``/healthz``           liveness: the process serves HTTP            200 always
``/readyz``            readiness: database and channel layer        200 ready, 503 not
``/metrics``           Prometheus text (or OpenMetrics) format      public unless
                                                                    CHAT_METRICS_PUBLIC=0
``/admin/monitoring/`` live dashboard                               superusers (admin login)
=====================  ==========================================  =====================
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from prometheus_client.exposition import choose_encoder

from monitoring import auth, checks, conf, exposition, metrics, probe

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
    return auth.is_superuser(getattr(request, "user", None))


def _render(accept: str) -> tuple[bytes, str]:
    encoder, content_type = choose_encoder(accept)
    return encoder(exposition.registry()), content_type


async def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """Every metric, summed over worker processes in multiprocess mode."""
    probe.ensure_started()
    if not await sync_to_async(_metrics_allowed)(request):
        return HttpResponse("Superusers or the ops token only.\n", status=401, content_type="text/plain")
    body, content_type = await sync_to_async(_render, thread_sensitive=False)(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type, headers=NO_STORE)


# --- dashboard --------------------------------------------------------------------------------


def dashboard(request: HttpRequest) -> HttpResponse:
    """The dashboard (wrapped in ``admin_view`` by the URLconf: logged-in staff), for superusers only."""
    if not auth.is_superuser(request.user):
        raise PermissionDenied("The dashboard shows every workspace: superusers only.")
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
