"""Monitoring routes; ``chatsite/urls.py`` includes them at the root, before ``admin/``.

The test hook exists only when ``CHAT_TEST_HOOKS=1`` and ``DEBUG`` are both set.
"""

from django.contrib import admin
from django.urls import path

from monitoring import conf, views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.prometheus_metrics, name="prometheus-metrics"),
    path("admin/monitoring/", admin.site.admin_view(views.dashboard), name="monitoring-dashboard"),
]

if conf.test_hooks_enabled():
    urlpatterns.append(path("__test__/monitoring/block-loop", views.block_loop, name="monitoring-block-loop"))
