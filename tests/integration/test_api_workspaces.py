"""REST API: workspaces, members, mutes and bans (in process; live effects in test_api_live.py)."""

# ruff: noqa: F811 -- tests take the fixtures imported from api_support as arguments

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from chat.models import ChatSession, Membership, Presence, Role, Workspace, WorkspaceBan
from chat.services import moderation
from tests.integration.api_support import API, committed, emitted, error_of, pages, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def test_list_my_workspaces_with_my_role(world):
    body = world.client("mod").get(f"{API}/workspaces/").json()
    assert [(w["id"], w["name"], w["role"]) for w in body["results"]] == [("acme", "Acme", "moderator")]
    assert body["next"] is None and body["previous"] is None
    assert world.client("nobody").get(f"{API}/workspaces/").json()["results"] == []


def test_workspaces_are_cursor_paginated(world):
    for i in range(5):
        space = Workspace.objects.create(slug=f"w{i}", name=f"W{i}")
        Membership.objects.create(user=world.users["alice"], workspace=space)
    found = pages(world.client("alice"), f"{API}/workspaces/", limit=2)
    assert [len(page) for page in found] == [2, 2, 2]
    assert [w["id"] for page in found for w in page] == ["acme", "w0", "w1", "w2", "w3", "w4"]


@pytest.mark.parametrize("limit", ["0", "201", "x", "-1"])
def test_bad_limit_is_invalid_payload_and_bad_cursor_no_page(world, limit):
    error_of(world.client("alice").get(f"{API}/workspaces/", {"limit": limit}), 400, "invalid_payload")
    error_of(world.client("alice").get(f"{API}/workspaces/", {"cursor": "garbage"}), 404, "invalid_cursor")


def test_workspace_detail_and_another_workspace_is_404(world):
    assert world.client("alice").get(f"{API}/workspaces/acme/").json()["role"] == "member"
    for slug in ("beta", "nope", "bad%20slug"):
        error_of(world.client("alice").get(f"{API}/workspaces/{slug}/"), 404, "not_a_member")


def test_members_list_and_detail(world):
    client = world.client("alice")
    body = client.get(f"{API}/workspaces/acme/members/").json()
    assert sorted((m["userId"], m["role"]) for m in body["results"]) == [
        ("alice", "member"),
        ("boss", "admin"),
        ("carol", "member"),
        ("mod", "moderator"),
    ]
    assert client.get(f"{API}/workspaces/acme/members/mod/").json()["role"] == "moderator"
    error_of(client.get(f"{API}/workspaces/acme/members/bob/"), 404, "member_not_found")
    error_of(client.get(f"{API}/workspaces/beta/members/"), 404, "not_a_member")


def test_add_member_rules(world):
    mod, boss = world.client("mod"), world.client("boss")
    url = f"{API}/workspaces/acme/members/"
    created = mod.post(url, {"username": "bob"}, format="json")
    assert created.status_code == 201 and created.json()["role"] == "member"
    error_of(mod.post(url, {"username": "bob"}, format="json"), 409, "member_exists")
    error_of(mod.post(url, {"username": "nobody", "role": "moderator"}, format="json"), 403, "forbidden")
    assert boss.post(url, {"username": "nobody", "role": "moderator"}, format="json").status_code == 201
    error_of(world.client("alice").post(url, {"username": "bmod"}, format="json"), 403, "forbidden")
    error_of(mod.post(url, {"username": "ghost"}, format="json"), 404, "user_not_found")
    body = error_of(mod.post(url, {"role": "king"}, format="json"), 400, "invalid_payload")
    assert set(body["fields"]) == {"username", "role"}
    error_of(mod.post(url, ["bob"], format="json"), 400, "invalid_payload")
    error_of(mod.post(url, "{not json", content_type="application/json"), 400, "invalid_payload")
    assert LogEntry.objects.filter(user=world.users["mod"], change_message__contains="Added bob").exists()


def test_change_role_and_remove_member(world, emitted, committed):
    mod, boss = world.client("mod"), world.client("boss")
    error_of(mod.patch(f"{API}/workspaces/acme/members/alice/", {"role": "admin"}, format="json"), 403, "forbidden")
    changed = boss.patch(f"{API}/workspaces/acme/members/alice/", {"role": "moderator"}, format="json")
    assert changed.status_code == 200 and changed.json()["role"] == "moderator"
    error_of(boss.patch(f"{API}/workspaces/acme/members/boss/", {"role": "member"}, format="json"), 403, "forbidden")
    assert boss.patch(f"{API}/workspaces/acme/members/boss/", {}, format="json").json()["role"] == "admin"
    error_of(mod.delete(f"{API}/workspaces/acme/members/alice/"), 403, "forbidden")  # now a moderator

    session = world.session(world.a, "s1", "carol")
    Presence.objects.create(session=session, socket_id="sock-carol", user=world.users["carol"], user_name="carol",
                            last_seen=timezone.now(), worker_id="w")
    with committed():
        assert mod.delete(f"{API}/workspaces/acme/members/carol/").status_code == 204
    assert not Membership.objects.filter(user=world.users["carol"], workspace=world.a).exists()
    # Their sockets re-read their access and leave the workspace's sessions (chat.events.access).
    notice = {"kind": "access_changed", "workspaceId": "acme"}
    assert ("notice_room", f"chat:workspace:acme:user:{world.users['carol'].pk}", notice) in emitted.calls
    error_of(world.client("carol").get(f"{API}/workspaces/acme/"), 404, "not_a_member")


def test_mute_and_unmute(world):
    mod = world.client("mod")
    response = mod.post(f"{API}/workspaces/acme/members/alice/mute/", {"durationSeconds": 600, "reason": "spam"},
                        format="json")
    assert response.status_code == 200
    until = Membership.objects.get(user=world.users["alice"], workspace=world.a).muted_until
    assert timedelta(seconds=590) < until - timezone.now() <= timedelta(seconds=600)
    assert response.json()["mutedUntil"] is not None
    assert LogEntry.objects.filter(change_message__contains="Muted alice").exists()

    for bad in ({"durationSeconds": 0}, {"durationSeconds": 10**9}, {}, {"durationSeconds": "soon"}):
        error_of(mod.post(f"{API}/workspaces/acme/members/alice/mute/", bad, format="json"), 400, "invalid_payload")
    error_of(mod.post(f"{API}/workspaces/acme/members/mod/mute/", {"durationSeconds": 5}, format="json"), 403,
             "forbidden")  # a moderator does not mute moderators (nor themselves)
    error_of(world.client("alice").post(f"{API}/workspaces/acme/members/carol/mute/", {"durationSeconds": 5},
                                        format="json"), 403, "forbidden")
    error_of(world.client("bmod").post(f"{API}/workspaces/acme/members/alice/mute/", {"durationSeconds": 5},
                                       format="json"), 404, "not_a_member")

    assert mod.post(f"{API}/workspaces/acme/members/alice/unmute/").json()["mutedUntil"] is None
    assert Membership.objects.get(user=world.users["alice"], workspace=world.a).muted_until is None


def test_expired_mute_shows_as_not_muted_and_allows_sending(world):
    membership = Membership.objects.get(user=world.users["alice"], workspace=world.a)
    membership.muted_until = timezone.now() - timedelta(seconds=1)
    membership.save()
    moderation.check_can_send(membership)
    assert world.client("alice").get(f"{API}/workspaces/acme/members/alice/").json()["mutedUntil"] is None


def test_ban_lists_and_lift(world, emitted, committed):
    mod = world.client("mod")
    session = world.session(world.a, "s1", "alice")
    Presence.objects.create(session=session, socket_id="sock-a1", user=world.users["alice"], user_name="alice",
                            last_seen=timezone.now(), worker_id="w")
    with committed():
        response = mod.post(f"{API}/workspaces/acme/bans/", {"username": "alice", "reason": "abuse"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json() | {"createdAt": None} == {
        "userId": "alice", "role": "member", "reason": "abuse", "bannedBy": "mod", "createdAt": None,
    }
    # Their sockets were told, then disconnected; the per-user room too.
    assert emitted.calls[0][:3] == ("emit_to_socket", "sock-a1", "chat:banned")
    assert ("disconnect_room", "socket:sock-a1") in emitted.calls
    assert ("disconnect_room", f"chat:workspace:acme:user:{world.users['alice'].pk}") in emitted.calls
    # No longer a member: every workspace URL is a 404 for them; nobody can add them back.
    error_of(world.client("alice").get(f"{API}/workspaces/acme/sessions/s1/"), 404, "not_a_member")
    error_of(mod.post(f"{API}/workspaces/acme/members/", {"username": "alice"}, format="json"), 403, "banned")
    with pytest.raises(moderation.Banned):
        moderation.check_not_banned(world.users["alice"], "acme")

    assert [b["userId"] for b in mod.get(f"{API}/workspaces/acme/bans/").json()["results"]] == ["alice"]
    assert mod.get(f"{API}/workspaces/acme/bans/alice/").json()["reason"] == "abuse"
    error_of(mod.get(f"{API}/workspaces/acme/bans/carol/"), 404, "member_not_found")
    error_of(world.client("carol").get(f"{API}/workspaces/acme/bans/"), 403, "forbidden")

    lifted = mod.delete(f"{API}/workspaces/acme/bans/alice/")
    assert lifted.status_code == 200 and lifted.json()["role"] == "member"
    assert not WorkspaceBan.objects.exists()
    assert world.client("alice").get(f"{API}/workspaces/acme/").status_code == 200
    messages = LogEntry.objects.filter(user=world.users["mod"]).values_list("change_message", flat=True)
    assert any("Banned alice" in m for m in messages) and any("Lifted the ban of alice" in m for m in messages)


def test_ban_rules(world):
    mod, boss = world.client("mod"), world.client("boss")
    error_of(mod.post(f"{API}/workspaces/acme/bans/", {"username": "boss"}, format="json"), 403, "forbidden")
    error_of(boss.post(f"{API}/workspaces/acme/bans/", {"username": "boss"}, format="json"), 403, "forbidden")
    error_of(mod.post(f"{API}/workspaces/acme/bans/", {"username": "bob"}, format="json"), 404, "member_not_found")
    error_of(mod.post(f"{API}/workspaces/acme/bans/", {}, format="json"), 400, "invalid_payload")
    assert boss.post(f"{API}/workspaces/acme/bans/", {"username": "mod"}, format="json").status_code == 201
    assert WorkspaceBan.objects.get().role == Role.MODERATOR
    # Lifting restores the role they had.
    assert boss.delete(f"{API}/workspaces/acme/bans/mod/").json()["role"] == "moderator"
    assert ChatSession.objects.count() == 0


def test_socket_side_hooks(world):
    """What chat.events calls: the mute check by ids, the ban check by slug."""
    alice, acme = world.users["alice"], world.a
    moderation.check_user_can_send(alice.pk, acme.pk)
    Membership.objects.filter(user=alice, workspace=acme).update(muted_until=timezone.now() + timedelta(minutes=1))
    with pytest.raises(moderation.Muted) as raised:
        moderation.check_user_can_send(alice.pk, acme.pk)
    assert raised.value.as_payload()["code"] == "muted" and raised.value.details["workspaceId"] == "acme"
    moderation.check_user_can_send(alice.pk, world.b.pk)  # not a member there: nothing to say
    moderation.check_not_banned(alice, "acme")
    WorkspaceBan.objects.create(workspace=acme, user=alice)
    with pytest.raises(moderation.Banned):
        moderation.check_not_banned(alice, "acme")
