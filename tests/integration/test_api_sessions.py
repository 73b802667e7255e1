"""REST API: sessions (list, filters, pagination, create, update, close, share) and presence."""

# ruff: noqa: F811 -- tests take the fixtures imported from api_support as arguments

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from chat.errors import SessionClosed
from chat.models import ChatSession, Presence, SessionStatus
from chat.services.messages import Sender, store_message
from tests.integration.api_support import API, committed, emitted, error_of, pages, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db
SESSIONS = f"{API}/workspaces/acme/sessions/"


def keys(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [s["id"] for s in response.json()["results"]]


def test_create_and_retrieve(world):
    client = world.client("alice")
    response = client.post(SESSIONS, {"id": "s-1", "title": "Refund", "agentId": "helper"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["Location"].endswith("/api/v1/workspaces/acme/sessions/s-1/")
    assert body | {"createdAt": None, "lastActivityAt": None} == {
        "id": "s-1", "workspaceId": "acme", "title": "Refund", "agentId": "helper", "status": "open",
        "createdBy": "alice", "sharedWith": [], "lastSeq": 0, "createdAt": None, "lastActivityAt": None,
    }
    assert client.get(f"{SESSIONS}s-1/").json() == body
    error_of(client.post(SESSIONS, {"id": "s-1"}, format="json"), 409, "session_exists")


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "id"),
        ({"id": "has space"}, "id"),
        ({"id": "x" * 129}, "id"),
        ({"id": "ok", "title": "t" * 201}, "title"),
        ({"id": "ok", "title": "nul\x00"}, "title"),
        ({"id": "ok", "agentId": "bad agent"}, "agentId"),
        ({"id": 5}, "id"),
    ],
)
def test_create_validation(world, payload, field):
    body = error_of(world.client("alice").post(SESSIONS, payload, format="json"), 400, "invalid_payload")
    assert field in body["fields"]


def test_create_with_another_workspaces_agent_is_agent_not_found(world):
    response = world.client("alice").post(SESSIONS, {"id": "s", "agentId": "bhelper"}, format="json")
    error_of(response, 404, "agent_not_found")
    assert not ChatSession.objects.filter(key="s").exists()


def test_visibility_members_see_theirs_and_shared_moderators_all(world):
    world.session(world.a, "alices", "alice")
    world.session(world.a, "carols", "carol")
    world.session(world.b, "bobs", "bob")
    assert keys(world.client("alice").get(SESSIONS)) == ["alices"]
    assert keys(world.client("mod").get(SESSIONS)) == ["carols", "alices"]
    error_of(world.client("alice").get(f"{SESSIONS}carols/"), 404, "session_not_found")
    world.client("carol").post(f"{SESSIONS}carols/share/", {"username": "alice"}, format="json")
    assert sorted(keys(world.client("alice").get(SESSIONS))) == ["alices", "carols"]
    assert world.client("alice").get(f"{SESSIONS}carols/").json()["sharedWith"] == ["alice"]


def test_filters(world):
    now = timezone.now()
    old = world.session(world.a, "old", "alice", status=SessionStatus.CLOSED)
    ChatSession.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=3))
    world.session(world.a, "agented", "carol", agent_id=world.a.agents.get().pk)
    wrote = world.session(world.a, "wrote", "mod")
    store_message(wrote.pk, Sender.for_user(world.users["carol"]), "m1", "hi")
    shared = world.session(world.a, "shared", "mod")
    shared.shared_with.add(world.users["carol"])
    client = world.client("mod")
    assert keys(client.get(SESSIONS, {"status": "closed"})) == ["old"]
    assert set(keys(client.get(SESSIONS, {"status": "open"}))) == {"agented", "wrote", "shared"}
    assert keys(client.get(SESSIONS, {"agent": "helper"})) == ["agented"]
    assert keys(client.get(SESSIONS, {"agent": "bhelper"})) == []
    since = (now - timedelta(days=1)).isoformat()
    assert "old" not in keys(client.get(SESSIONS, {"created_since": since}))
    assert set(keys(client.get(SESSIONS, {"participant": "carol"}))) == {"agented", "wrote", "shared"}
    assert keys(client.get(SESSIONS, {"participant": "alice"})) == ["old"]
    for bad in ({"status": "ajar"}, {"created_since": "yesterday"}, {"agent": "a b"}, {"participant": "a b"}):
        error_of(client.get(SESSIONS, bad), 400, "invalid_payload")


def test_pagination_newest_first_without_repeats(world):
    for i in range(7):
        world.session(world.a, f"s{i}", "alice")
    found = pages(world.client("alice"), SESSIONS, limit=3)
    assert [len(page) for page in found] == [3, 3, 1]
    assert [s["id"] for page in found for s in page] == [f"s{i}" for i in reversed(range(7))]


def test_update_title_and_agent(world, emitted, committed):
    world.session(world.a, "s", "alice")
    client = world.client("alice")
    with committed():
        response = client.patch(f"{SESSIONS}s/", {"title": "New", "agentId": "helper"}, format="json")
    assert response.status_code == 200 and (response.json()["title"], response.json()["agentId"]) == ("New", "helper")
    ((room, payload),) = emitted.events("chat:session-updated")
    assert room == "chat:workspace:acme:session:s"
    assert payload | {"timestamp": 0} == {
        "sessionId": "s", "workspaceId": "acme", "title": "New", "agentId": "helper", "status": "open", "timestamp": 0,
    }
    assert client.patch(f"{SESSIONS}s/", {"agentId": None}, format="json").json()["agentId"] is None
    error_of(client.patch(f"{SESSIONS}s/", {"agentId": "nope"}, format="json"), 404, "agent_not_found")
    error_of(client.patch(f"{SESSIONS}s/", {"title": 5}, format="json"), 400, "invalid_payload")
    with committed():
        client.patch(f"{SESSIONS}s/", {"title": "New"}, format="json")  # no change: nothing announced
    assert len(emitted.events("chat:session-updated")) == 1


def test_sharees_use_but_do_not_manage(world):
    session = world.session(world.a, "s", "alice")
    session.shared_with.add(world.users["carol"])
    carol = world.client("carol")
    assert carol.get(f"{SESSIONS}s/").status_code == 200
    error_of(carol.patch(f"{SESSIONS}s/", {"title": "mine"}, format="json"), 403, "forbidden")
    error_of(carol.post(f"{SESSIONS}s/close/"), 403, "forbidden")
    error_of(carol.post(f"{SESSIONS}s/share/", {"username": "mod"}, format="json"), 403, "forbidden")


def test_share_and_unshare(world):
    world.session(world.a, "s", "alice")
    client = world.client("alice")
    assert client.post(f"{SESSIONS}s/share/", {"username": "carol"}, format="json").json()["sharedWith"] == ["carol"]
    assert client.post(f"{SESSIONS}s/share/", {"username": "carol"}, format="json").json()["sharedWith"] == ["carol"]
    error_of(client.post(f"{SESSIONS}s/share/", {"username": "bob"}, format="json"), 404, "member_not_found")
    error_of(client.post(f"{SESSIONS}s/share/", {}, format="json"), 400, "invalid_payload")
    assert client.delete(f"{SESSIONS}s/share/carol/").json()["sharedWith"] == []
    assert world.client("carol").get(f"{SESSIONS}s/").status_code == 404


def test_close_announces_once_and_stops_sends(world, emitted, committed):
    session = world.session(world.a, "s", "alice")
    with committed():
        response = world.client("mod").post(f"{SESSIONS}s/close/")
    assert response.status_code == 200 and response.json()["status"] == "closed"
    ((room, payload),) = emitted.events("chat:session-closed")
    assert room == "chat:workspace:acme:session:s"
    assert payload["sessionId"] == "s" and payload["workspaceId"] == "acme" and payload["closedBy"] == "mod"
    with committed():
        assert world.client("alice").post(f"{SESSIONS}s/close/").status_code == 200
    assert len(emitted.events("chat:session-closed")) == 1
    with pytest.raises(SessionClosed):
        store_message(session.pk, Sender.for_user(world.users["alice"]), "late", "too late")
    assert LogEntry.objects.filter(user=world.users["mod"], change_message__contains="Closed session s").exists()


def test_session_presence_lists_live_sockets_only(world):
    session = world.session(world.a, "s", "alice")
    now = timezone.now()
    Presence.objects.create(session=session, socket_id="live", user=world.users["alice"], user_name="alice",
                            last_seen=now, worker_id="w")
    Presence.objects.create(session=session, socket_id="dead", user=world.users["carol"], user_name="carol",
                            last_seen=now - timedelta(hours=1), worker_id="gone")
    body = world.client("alice").get(f"{SESSIONS}s/presence/").json()
    assert [(p["userId"], p["socketId"], p["status"], p["sessionId"]) for p in body] == [("alice", "live", "active", "s")]
    error_of(world.client("carol").get(f"{SESSIONS}s/presence/"), 404, "session_not_found")


def test_workspace_presence_one_entry_per_user(world):
    s1, s2 = world.session(world.a, "s1", "alice"), world.session(world.a, "s2", "alice")
    now = timezone.now()
    for session, socket, status in ((s1, "x", "away"), (s2, "y", "active")):
        Presence.objects.create(session=session, socket_id=socket, user=world.users["alice"], user_name="alice",
                                last_seen=now, worker_id="w", status=status)
    other = world.session(world.b, "b1", "bob")
    Presence.objects.create(session=other, socket_id="z", user=world.users["bob"], user_name="bob", last_seen=now,
                            worker_id="w")
    body = world.client("carol").get(f"{API}/workspaces/acme/presence/").json()
    assert [(u["userId"], u["status"], u["sockets"]) for u in body] == [("alice", "active", 2)]
