"""HTTP routes served by Django (Socket.IO is routed in ``asgi.py``)."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from chat import web

urlpatterns = [
    path("", include("monitoring.urls")),
    # The admin's log-in page, throttled like ours (chat/web.py); before the admin's own routes.
    path("admin/login/", web.throttle_login(admin.site.login), name="admin-login"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("chat.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # the end users' web front (chat/web.py, docs/widget.md); the vendor route must come before
    # the catch-all static one
    path("", web.index, name="chat-index"),
    path("login/", web.login_view, name="login"),
    path("logout/", web.logout_view, name="logout"),
    path("embed/", web.embed, name="chat-embed"),
    path("widget.js", web.widget_js, name="chat-widget-js"),
    path("static/vendor/<str:name>", web.vendor_file, name="chat-vendor"),
    re_path(r"^static/(?P<path>.+)$", web.static_file, name="static"),
]
