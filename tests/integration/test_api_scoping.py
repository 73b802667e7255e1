"""REST API across the board: workspace scoping of every endpoint, authentication, CSRF, rate limit, schema.

The endpoint list is read from the URLconf, so an endpoint added later is
probed too (and fails here until it scopes like the others).
"""

# ruff: noqa: F811 -- tests take the fixtures imported from api_support as arguments

from __future__ import annotations

import dataclasses
import re

import pytest
from django.urls import URLPattern
from rest_framework.test import APIClient

from chat.api import urls
from chat.models import ChatMessage, ChatSession, Membership, WorkspaceBan
from security.models import SecurityEvent
from tests.integration.api_support import (
    API,
    error_of,
    world,  # noqa: F401 (fixtures)
)

pytestmark = pytest.mark.django_db

#: A plausible, valid body for every write, so only scoping can refuse it.
BODIES = {
    "member-list": {"username": "nobody"},
    "member-detail": {"role": "member"},
    "member-mute": {"durationSeconds": 60},
    "ban-list": {"username": "bob"},
    "session-list": {"id": "new-one"},
    "session-detail": {"title": "taken over"},
    "session-share": {"username": "bob"},
    "message-list": {"id": "new-message", "content": "hello"},
    "message-detail": {"version": 1, "content": "taken over"},
}
#: Not workspace-scoped: the socket token (the caller's own), the monitoring API (staff or ops;
#: tests/integration/test_monitoring_endpoints.py), and attachment downloads, whose signed link is the
#: credential (tests/integration/test_api_attachments.py).
SKIP = {"socket-token", "api-not-found", "monitoring-metrics", "monitoring-health", "attachment-download"}


def endpoints() -> list[tuple[str, str, str]]:
    """``(name, method, path template)`` of every REST operation under /api/v1/."""
    found = []
    for pattern in urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        if pattern.name in SKIP:
            continue
        view = pattern.callback.view_class
        template = re.sub(r"<str:(\w+)>", r"{\1}", str(pattern.pattern))
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method):
                found.append((pattern.name, method, template))
    return found


ENDPOINTS = endpoints()


def test_every_endpoint_is_probed():
    assert len(ENDPOINTS) >= 27, ENDPOINTS


@pytest.fixture
def beta(world):
    """Workspace B's objects, as ids an A user could learn or guess."""
    session = world.session(world.b, "bs", "bob")
    world.message(session, "bm", "beta's secret", sender="bob")
    return {"workspace": "beta", "session": "bs", "message": "bm", "username": "bob", "attachment": "0" * 32, "emoji": "%F0%9F%91%8D"}


def snapshot() -> tuple:
    return (
        list(ChatSession.objects.values_list("workspace__slug", "key", "title", "status", "last_seq")),
        list(ChatMessage.objects.values_list("session__key", "key", "hidden", "content", "version", "deleted_at")),
        list(Membership.objects.values_list("workspace__slug", "user__username", "role", "muted_until")),
        list(WorkspaceBan.objects.values_list("workspace__slug", "user__username")),
    )


@pytest.mark.parametrize("caller", ["boss", "mod", "alice"])
def test_a_user_of_a_probing_b_ids_gets_404_everywhere(world, beta, caller):
    client = world.client(caller)
    before = snapshot()
    assert [w["id"] for w in client.get(f"{API}/workspaces/").json()["results"]] == ["acme"]
    for name, method, template in ENDPOINTS:
        if "{" not in template:
            continue  # the caller's own workspace list, checked above
        url = f"{API}/{template.format(**beta)}"
        response = getattr(client, method)(url, BODIES.get(name, {}), format="json")
        assert response.status_code == 404, (caller, method, url, response.status_code, response.json())
        body = response.json()
        assert set(body) >= {"error", "code"} and body["code"] == "not_a_member", (method, url, body)
        assert "beta" not in body["error"] and "secret" not in str(body), body
    assert snapshot() == before


def test_b_ids_inside_a_workspace_url_are_not_found_either(world, beta):
    world.session(world.a, "as", "alice")
    client = world.client("boss")
    error_of(client.get(f"{API}/workspaces/acme/sessions/bs/"), 404, "session_not_found")
    error_of(client.get(f"{API}/workspaces/acme/sessions/bs/messages/"), 404, "session_not_found")
    error_of(client.post(f"{API}/workspaces/acme/sessions/bs/close/"), 404, "session_not_found")
    error_of(client.get(f"{API}/workspaces/acme/sessions/as/messages/bm/"), 404, "message_not_found")
    error_of(client.post(f"{API}/workspaces/acme/sessions/as/messages/bm/hide/"), 404, "message_not_found")
    edit = {"version": 1, "content": "taken over"}
    error_of(client.patch(f"{API}/workspaces/acme/sessions/as/messages/bm/", edit, format="json"), 404, "message_not_found")
    error_of(client.delete(f"{API}/workspaces/acme/sessions/as/messages/bm/"), 404, "message_not_found")
    error_of(client.get(f"{API}/workspaces/acme/sessions/as/messages/bm/versions/"), 404, "message_not_found")
    assert ChatMessage.objects.get(key="bm").version == 1
    error_of(client.get(f"{API}/workspaces/acme/members/bob/"), 404, "member_not_found")
    error_of(client.post(f"{API}/workspaces/acme/bans/", {"username": "bob"}, format="json"), 404, "member_not_found")
    assert client.get(f"{API}/workspaces/acme/messages/", {"q": "secret"}).json()["results"] == []
    assert client.get(f"{API}/workspaces/acme/sessions/", {"agent": "bhelper"}).json()["results"] == []


@pytest.mark.parametrize("path", ["workspaces/ac%00me/", "workspaces/acme/sessions/a%20b/", "workspaces/acme/members/a%00/"])
def test_malformed_ids_are_404_not_errors(world, path):
    response = world.client("boss").get(f"{API}/{path}")
    assert response.status_code == 404 and response.json()["code"] in (
        "not_a_member", "session_not_found", "member_not_found",
    )


def test_every_endpoint_needs_credentials(world, beta):
    anonymous, bad = APIClient(), APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer chat_not-a-real-token")
    for name, method, template in ENDPOINTS:
        url = f"{API}/{template.format(**beta)}"
        for client in (anonymous, bad):
            response = getattr(client, method)(url, BODIES.get(name, {}), format="json")
            error_of(response, 401, "unauthenticated")
            assert response["WWW-Authenticate"] == "Bearer"


def test_django_session_auth_with_csrf(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.users["alice"])
    assert client.get(f"{API}/workspaces/").status_code == 200
    error_of(client.post(f"{API}/workspaces/acme/sessions/", {"id": "x"}, format="json"), 403, "forbidden")
    client.get("/admin/login/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post(f"{API}/workspaces/acme/sessions/", {"id": "x"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.json()


def test_rate_limit_answers_429_with_retry_after_per_user(world, settings):
    settings.CHAT = dataclasses.replace(settings.CHAT, api_rate_limit="3/m")
    alice = world.client("alice")
    for _ in range(3):
        assert alice.get(f"{API}/workspaces/").status_code == 200
    response = alice.get(f"{API}/workspaces/")
    body = error_of(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert body["retryAfter"] == int(response["Retry-After"]) * 1000
    error_of(alice.get(f"{API}/workspaces/"), 429, "rate_limited")
    assert world.client("carol").get(f"{API}/workspaces/").status_code == 200  # per user
    events = SecurityEvent.objects.filter(type="rate_limit_exceeded", user=world.users["alice"])
    assert events.count() == 1 and events.get().detail["surface"] == "rest"


def test_rate_limit_can_be_disabled(world, settings):
    settings.CHAT = dataclasses.replace(settings.CHAT, api_rate_limit="")
    for _ in range(5):
        assert world.client("alice").get(f"{API}/workspaces/").status_code == 200


def test_unknown_api_paths_answer_in_the_error_shape(world):
    error_of(world.client("alice").get(f"{API}/nothing/here"), 404, "not_found")
    error_of(world.client("alice").get(f"{API}/workspaces/acme/sessions/a/b/c/d/"), 404, "not_found")
    error_of(world.client("alice").put(f"{API}/workspaces/", {}), 405, "method_not_allowed")


def test_reserved_monitoring_paths_are_left_to_the_monitoring_routes():
    from django.urls import Resolver404, resolve

    for path in (f"{API}/metrics/", f"{API}/health/"):
        try:
            match = resolve(path)
        except Resolver404:
            continue
        assert match.url_name != "api-not-found", path


def test_openapi_schema_documents_every_endpoint(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["apiToken"] == {
        "type": "http", "scheme": "bearer", "description": schema["components"]["securitySchemes"]["apiToken"][
            "description"],
    }
    paths = schema["paths"]
    for _name, method, template in ENDPOINTS:
        operation = paths[f"{API}/{template}"][method]
        assert operation.get("summary"), (method, template)
        documented = set(operation["responses"])
        assert {"401", "429"} <= documented, (method, template, documented)
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                examples = response["content"]["application/json"].get("examples", {})
                assert examples, (method, template, status)
    assert client.get("/api/docs/").status_code == 200
