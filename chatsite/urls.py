"""HTTP routes served by Django (Socket.IO is routed in ``asgi.py``)."""

from django.contrib import admin
from django.urls import path

from monitoring.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
