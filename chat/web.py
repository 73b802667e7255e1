"""The end users' web front: the chat page at ``/``, log in and out, the embeddable widget.

Layer: web front.  It talks to the chat only the way any client does -- the
Socket.IO protocol of ``docs/protocol.md`` and the REST API -- so nothing
here touches messages or sessions.  The front end itself is plain ES modules
under ``chat/static/chat/`` (no build step); ``docs/widget.md`` describes it.

Routes (see ``chatsite/urls.py``, "widget routes"):

- ``/`` -- the chat page, for a logged-in user (the socket authenticates
  with the Django session cookie);
- ``/login/``, ``/logout/`` -- Django's auth views with our template; log-in
  attempts (here and at ``/admin/login/``) are throttled per address and per
  user name (:func:`throttle_login`);
- ``/embed/`` -- the page inside the embeddable widget's iframe; it never
  uses the session cookie, only the one-time socket token its host page
  hands it (``postMessage``), so framing it anywhere exposes nothing;
- ``/widget.js`` -- the loader a host page includes;
- ``/static/vendor/socket.io.min.js`` -- the official client: in a checkout
  straight from ``node_modules`` (installed by ``npm ci``, never copied into
  the repo), in an installed wheel from ``chat/vendor/``, where the wheel's
  build put it (``setup.py``);
- ``/static/<path>`` -- the static files, found by the staticfiles finders,
  since daphne serves none itself.
"""

from __future__ import annotations

import functools
import json
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_safe
from django.views.static import serve
from django_ratelimit.core import get_usage

from chat.ids import is_client_id, is_slug
from chat.models import Agent, Membership

#: The official client's dist/: the wheel's copy (``chat/vendor/``, made by ``setup.py``'s
#: build), else a checkout's node_modules.  Only the files below are served.
_BUNDLED_SOCKETIO = Path(__file__).resolve().parent / "vendor" / "socket.io-client" / "dist"
SOCKETIO_DIST = (
    _BUNDLED_SOCKETIO
    if _BUNDLED_SOCKETIO.is_dir()
    else Path(settings.BASE_DIR) / "node_modules" / "socket.io-client" / "dist"
)
SOCKETIO_FILES = {"socket.io.min.js", "socket.io.min.js.map"}
#: A year: the URL carries the client's version (``?v=``), so a new version is a new URL.
VENDOR_MAX_AGE_S = 365 * 24 * 3600
#: The loader's URL never changes, so host pages must pick up a new one soon.
WIDGET_MAX_AGE_S = 300

#: Presence periods of inactivity, documented in docs/widget.md.
IDLE_AFTER_MS = 2 * 60 * 1000
AWAY_AFTER_MS = 10 * 60 * 1000

THEMES = ("auto", "light", "dark")

#: Everything the pages load comes from this site; no inline script or style.
#: ``connect-src 'self'`` covers ws:/wss: to the same host (CSP level 3).
_CSP_BASE = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_CSP = f"{_CSP_BASE}; frame-ancestors 'none'"
#: The widget's page may be framed by any site: it authenticates only with the token its host gives it.
EMBED_CSP = f"{_CSP_BASE}; frame-ancestors *"


def _with_csp(response: HttpResponse, policy: str) -> HttpResponse:
    response["Content-Security-Policy"] = policy
    response["Referrer-Policy"] = "same-origin"
    return response


@cache
def socketio_version() -> str:
    """The installed client's version, for the cache-busting ``?v=`` of its URL."""
    try:
        return json.loads((SOCKETIO_DIST.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "missing"


def _presence_settings() -> dict[str, int]:
    return {"idleAfterMs": IDLE_AFTER_MS, "awayAfterMs": AWAY_AFTER_MS}


# --- pages --------------------------------------------------------------------------------


def _bootstrap(request: HttpRequest) -> dict[str, Any]:
    """What the page's script needs to start: who, which workspaces and agents, where things are."""
    memberships = list(
        Membership.objects.filter(user=request.user).select_related("workspace").order_by("workspace__name")
    )
    agents: dict[int, list[dict[str, str]]] = {}
    for agent in Agent.objects.filter(workspace__in=[m.workspace_id for m in memberships]).order_by("name"):
        agents.setdefault(agent.workspace_id, []).append({"id": agent.key, "name": agent.name})
    user = request.user
    return {
        "user": {"userId": user.get_username(), "userName": user.get_username(), "displayName": user.get_full_name()},
        "workspaces": [
            {
                "id": m.workspace.slug,
                "name": m.workspace.name,
                "role": m.role,
                "moderates": m.moderates,
                "agents": agents.get(m.workspace_id, []),
            }
            for m in memberships
        ],
        "csrfToken": get_token(request),
        "urls": {"api": "/api/v1/", "login": "/login/"},
        "presence": _presence_settings(),
    }


@never_cache
@login_required(login_url="/login/")
def index(request: HttpRequest) -> HttpResponse:
    context = {"bootstrap": _bootstrap(request), "socketio_version": socketio_version()}
    return _with_csp(render(request, "chat/app.html", context), PAGE_CSP)


class LoginView(auth_views.LoginView):
    template_name = "chat/login.html"
    redirect_authenticated_user = True
    next_page = "/"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return _with_csp(super().dispatch(request, *args, **kwargs), PAGE_CSP)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        # The demo accounts exist after `make run` (setup_demo); only say so in development.
        return {**super().get_context_data(**kwargs), "demo_hint": settings.DEBUG}


class LogoutView(auth_views.LogoutView):
    next_page = "/login/"


def _username(group: str, request: HttpRequest) -> str:
    return request.POST.get("username", "")[:150].strip().lower()


def _login_retry_after_s(request: HttpRequest) -> int | None:
    """Seconds to wait when this log-in attempt is over ``CHAT_LOGIN_RATE_LIMIT``, per address or per user name."""
    rate = settings.CHAT.login_rate_limit
    if not rate or request.method != "POST":
        return None
    for group, key in (("chat-login-address", "ip"), ("chat-login-username", _username)):
        usage = get_usage(request, group=group, key=key, rate=rate, method="POST", increment=True)
        if usage is not None and usage["should_limit"]:
            return max(1, int(usage["time_left"]))
    return None


def throttle_login(view: Any) -> Any:
    """Wrap a log-in view: attempts past the limit get 429 with ``Retry-After``, before any password is checked."""

    @functools.wraps(view)
    def throttled(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        retry_after_s = _login_retry_after_s(request)
        if retry_after_s is None:
            return view(request, *args, **kwargs)
        response = HttpResponse(
            "Too many log-in attempts; try again later.\n", status=429, content_type="text/plain; charset=utf-8"
        )
        response["Retry-After"] = str(retry_after_s)
        return response

    return throttled


login_view = throttle_login(LoginView.as_view())
logout_view = LogoutView.as_view()


@never_cache
@xframe_options_exempt
@require_safe
def embed(request: HttpRequest) -> HttpResponse:
    """The chat inside the widget's iframe: its ids come from the query, its token from the host page."""
    query = request.GET
    workspace, session = query.get("workspace", ""), query.get("session", "")
    agent, theme = query.get("agent", ""), query.get("theme", "auto")
    problems = []
    if not is_slug(workspace):
        problems.append("workspace must be a workspace slug")
    if not is_client_id(session):
        problems.append("session must be 1-128 letters, digits, '-' or '_'")
    if agent and not is_client_id(agent):
        problems.append("agent must be an agent id")
    if problems:
        return HttpResponseBadRequest(
            "Bad widget configuration: " + "; ".join(problems) + ".", content_type="text/plain"
        )
    config = {
        "workspaceId": workspace,
        "sessionId": session,
        "agentId": agent or None,
        "title": query.get("title", "")[:100] or "Chat",
        "presence": _presence_settings(),
    }
    context = {
        "config": config,
        "theme": theme if theme in THEMES else "auto",
        "socketio_version": socketio_version(),
    }
    return _with_csp(render(request, "chat/embed.html", context), EMBED_CSP)


# --- scripts and static files ---------------------------------------------------------


@require_safe
def widget_js(request: HttpRequest) -> HttpResponse:
    """The loader host pages include with ``<script src=".../widget.js" data-...>``."""
    found = finders.find("chat/widget.js")
    if not found:
        raise Http404("chat/widget.js is missing from the static files.")
    response = HttpResponse(Path(found).read_bytes(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={WIDGET_MAX_AGE_S}"
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@require_safe
def vendor_file(request: HttpRequest, name: str) -> HttpResponse:
    """``socket.io.min.js`` (and its source map) from :data:`SOCKETIO_DIST`."""
    path = SOCKETIO_DIST / name
    if name not in SOCKETIO_FILES or not path.is_file():
        raise Http404("socket.io-client is not installed here: run `make install` (npm ci).")
    content_type = "application/json" if name.endswith(".map") else "text/javascript; charset=utf-8"
    response = FileResponse(path.open("rb"), content_type=content_type)
    response["Cache-Control"] = f"public, max-age={VENDOR_MAX_AGE_S}, immutable"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@require_safe
def static_file(request: HttpRequest, path: str) -> HttpResponse:
    """Any static file the finders know (the apps' ``static/``: ours, the admin's...), revalidated on each use."""
    try:
        found = finders.find(path)
    except SuspiciousFileOperation:
        found = None
    if not found or not Path(found).is_file():
        raise Http404("No such static file.")
    found_path = Path(found)
    response = serve(request, found_path.name, document_root=str(found_path.parent))
    # No hashed names here: let browsers keep a copy but ask (If-Modified-Since) before using it.
    response["Cache-Control"] = "no-cache"
    return response
