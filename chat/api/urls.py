"""Routes of ``/api/v1/``."""

from django.urls import path

from security.api_views import SocketTokenView

urlpatterns = [
    path("auth/socket-token", SocketTokenView.as_view(), name="socket-token"),
]
