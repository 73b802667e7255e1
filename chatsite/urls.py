"""HTTP routes served by Django (Socket.IO is routed in ``asgi.py``)."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("", include("monitoring.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("chat.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
