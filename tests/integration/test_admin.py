"""The moderators' admin: scoping of every list, search, filter, object page and action; live effects.

``mod`` moderates workspace A (acme) only; ``root`` is a superuser.  Every
B object has a recognisable marker ("beta"/"bsecret") that must never
appear on ``mod``'s pages.
"""

# ruff: noqa: F811 -- tests take the fixtures imported from api_support as arguments

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from chat.models import (
    Agent,
    ChatMessage,
    ChatSession,
    Membership,
    MessageFeedback,
    Presence,
    Role,
    Workspace,
    WorkspaceBan,
)
from security.models import ApiToken, SecurityEvent
from tests.integration.api_support import API, committed, emitted, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "chat/workspace",
    "chat/membership",
    "chat/workspaceban",
    "chat/agent",
    "chat/chatsession",
    "chat/chatmessage",
    "chat/presence",
    "chat/messagefeedback",
    "security/securityevent",
]


@pytest.fixture
def data(world):
    """One of everything in each workspace."""
    now = timezone.now()
    made = {}
    for space, owner, tag in ((world.a, "alice", "acme"), (world.b, "bob", "bsecret")):
        session = world.session(space, f"{tag}-session", owner, title=f"{tag} title")
        message = world.message(session, f"{tag}-msg", f"{tag} content", sender=owner)
        Presence.objects.create(session=session, socket_id=f"{tag}-sock", user=world.users[owner],
                                user_name=owner, last_seen=now, worker_id="w")
        SecurityEvent.objects.create(type="message_blocked", workspace=space, user=world.users[owner],
                                     session_key=f"{tag}-session")
        feedback = MessageFeedback.objects.create(
            message=message, user=world.users[owner], rating="down", comment=f"{tag} feedback"
        )
        made[tag] = {"session": session, "message": message, "feedback": feedback}
    SecurityEvent.objects.create(type="rate_limit_exceeded", workspace=world.a)
    SecurityEvent.objects.create(type="rate_limit_exceeded", workspace=world.a)
    banned = get_user_model().objects.create_user("bsecret-banned")
    WorkspaceBan.objects.create(workspace=world.b, user=banned, reason="bsecret reason")
    return made


def login(world, name: str, *, staff: bool = True, superuser: bool = False) -> Client:
    user = world.users.get(name) or get_user_model().objects.create_user(name)
    user.is_staff, user.is_superuser = staff, superuser
    user.save()
    client = Client()
    client.force_login(user)
    return client


def page(client: Client, url: str, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


@pytest.mark.parametrize("changelist", CHANGELISTS)
def test_moderator_changelists_show_only_their_workspace(world, data, changelist):
    html = page(login(world, "mod"), f"/admin/{changelist}/")
    assert "bsecret" not in html and "beta" not in html.lower().replace("alphabeta", "")
    if changelist not in ("chat/workspaceban",):
        assert "acme" in html


@pytest.mark.parametrize("changelist", CHANGELISTS)
def test_superuser_sees_both_workspaces(world, data, changelist):
    html = page(login(world, "root", superuser=True), f"/admin/{changelist}/")
    assert "bsecret" in html or "beta" in html


def test_moderator_searches_and_filters_stay_in_scope(world, data):
    client = login(world, "mod")
    for changelist in ("chat/chatmessage", "chat/chatsession", "chat/membership", "security/securityevent"):
        html = page(client, f"/admin/{changelist}/", q="bsecret")
        assert "0 results" in html and "bsecret-" not in html and "bsecret content" not in html, changelist
    # Filter choices list the moderated workspaces only (a filter of one choice is not shown: add one).
    gamma = Workspace.objects.create(slug="gamma", name="Gamma")
    Membership.objects.create(user=world.users["mod"], workspace=gamma, role=Role.MODERATOR)
    world.session(gamma, "g-session", "mod")
    Agent.objects.create(workspace=gamma, key="ghelper", name="G helper")
    world.session(world.a, "with-agent", "mod", agent=Agent.objects.get(key="helper"))
    world.session(gamma, "with-gagent", "mod", agent=Agent.objects.get(key="ghelper"))
    world.session(world.b, "with-bagent", "bob", agent=Agent.objects.get(key="bhelper"))
    html = page(client, "/admin/chat/chatsession/")
    for lookup in ("workspace__id__exact", "agent__id__exact"):
        shown = set(map(int, re.findall(lookup + r"=(\d+)", html)))
        assert len(shown) == 2, (lookup, shown)
    assert set(map(int, re.findall(r"workspace__id__exact=(\d+)", html))) == {world.a.pk, gamma.pk}
    assert Agent.objects.get(key="bhelper").pk not in set(map(int, re.findall(r"agent__id__exact=(\d+)", html)))
    assert "bhelper" not in html and "B helper" not in html
    assert "bsecret" not in page(client, "/admin/chat/chatsession/", workspace__id__exact=world.b.pk)
    assert "bsecret" not in page(client, "/admin/chat/chatmessage/", session__workspace__id__exact=world.b.pk)
    assert "bsecret" not in page(client, "/admin/security/securityevent/", workspace__id__exact=world.b.pk)


def test_moderator_cannot_open_b_objects(world, data):
    client = login(world, "mod")
    b_session, b_message = data["bsecret"]["session"], data["bsecret"]["message"]
    urls = [
        f"/admin/chat/chatsession/{b_session.pk}/change/",
        f"/admin/chat/chatsession/{b_session.pk}/history/",
        f"/admin/chat/chatsession/{b_session.pk}/delete/",
        f"/admin/chat/chatmessage/{b_message.pk}/change/",
        f"/admin/chat/workspace/{world.b.pk}/change/",
        f"/admin/chat/membership/{Membership.objects.get(user=world.users['bob']).pk}/change/",
        f"/admin/chat/agent/{Agent.objects.get(workspace=world.b).pk}/change/",
        f"/admin/security/securityevent/{SecurityEvent.objects.filter(workspace=world.b).get().pk}/change/",
        f"/admin/chat/messagefeedback/{data['bsecret']['feedback'].pk}/change/",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code in (302, 403, 404), (url, response.status_code)
        assert "bsecret" not in response.content.decode()
    # And A's own object pages work.
    assert "acme content" in page(client, f"/admin/chat/chatsession/{data['acme']['session'].pk}/change/")
    assert "acme feedback" in page(client, f"/admin/chat/messagefeedback/{data['acme']['feedback'].pk}/change/")


def test_actions_on_b_objects_do_nothing(world, data, emitted, committed):
    client = login(world, "mod")
    b_session, b_message = data["bsecret"]["session"], data["bsecret"]["message"]
    with committed():
        client.post("/admin/chat/chatmessage/", {"action": "hide", "_selected_action": [b_message.pk]})
        client.post("/admin/chat/chatsession/", {"action": "close_sessions", "_selected_action": [b_session.pk]})
        client.post("/admin/chat/membership/", {
            "action": "ban", "_selected_action": [Membership.objects.get(user=world.users["bob"]).pk],
        })
    assert not ChatMessage.objects.get(pk=b_message.pk).hidden
    assert ChatSession.objects.get(pk=b_session.pk).status == "open"
    assert Membership.objects.filter(user=world.users["bob"]).exists()
    assert emitted.calls == []


def test_hide_action_is_live_and_logged(world, data, emitted, committed):
    client = login(world, "mod")
    message = data["acme"]["message"]
    with committed():
        response = client.post("/admin/chat/chatmessage/", {"action": "hide", "_selected_action": [message.pk]})
    assert response.status_code == 302
    assert ChatMessage.objects.get(pk=message.pk).hidden
    assert emitted.events("chat:message-hidden") == [
        ("chat:workspace:acme:session:acme-session",
         {"sessionId": "acme-session", "messageId": "acme-msg", "workspaceId": "acme"}),
    ]
    entry = LogEntry.objects.get(object_id=str(message.pk))
    assert entry.user == world.users["mod"] and "Hid message acme-msg" in entry.change_message
    with committed():
        client.post("/admin/chat/chatmessage/", {"action": "unhide", "_selected_action": [message.pk]})
    assert len(emitted.events("chat:message-unhidden")) == 1


def test_close_action_is_live_and_logged(world, data, emitted, committed):
    client = login(world, "mod")
    session = data["acme"]["session"]
    with committed():
        client.post("/admin/chat/chatsession/", {"action": "close_sessions", "_selected_action": [session.pk]})
    assert ChatSession.objects.get(pk=session.pk).status == "closed"
    ((room, payload),) = emitted.events("chat:session-closed")
    assert room.endswith(":session:acme-session") and payload["closedBy"] == "mod"
    assert LogEntry.objects.filter(user=world.users["mod"], change_message__contains="Closed session").exists()


def test_ban_action_disconnects_and_is_logged(world, data, emitted, committed):
    client = login(world, "mod")
    target = Membership.objects.get(user=world.users["alice"], workspace=world.a)
    with committed():
        client.post("/admin/chat/membership/", {"action": "ban", "_selected_action": [target.pk]})
    assert WorkspaceBan.objects.filter(user=world.users["alice"], workspace=world.a).exists()
    assert ("disconnect_room", "socket:acme-sock") in emitted.calls
    assert LogEntry.objects.filter(user=world.users["mod"], change_message__contains="Banned alice").exists()
    # A moderator cannot ban the admin.
    boss = Membership.objects.get(user=world.users["boss"])
    client.post("/admin/chat/membership/", {"action": "ban", "_selected_action": [boss.pk]})
    assert Membership.objects.filter(pk=boss.pk).exists()


def test_moderator_adds_members_by_username_in_their_workspace_only(world, data):
    client = login(world, "mod")
    html = page(client, "/admin/chat/membership/add/")
    assert "beta" not in html.lower() and "bob" not in html
    response = client.post("/admin/chat/membership/add/", {"workspace": world.b.pk, "username": "nobody", "role": "member"})
    assert response.status_code == 200 and not Membership.objects.filter(user=world.users["nobody"]).exists()
    response = client.post("/admin/chat/membership/add/", {"workspace": world.a.pk, "username": "nobody", "role": "admin"})
    assert response.status_code == 200  # "admin" is not a choice for a moderator
    response = client.post("/admin/chat/membership/add/", {"workspace": world.a.pk, "username": "nobody", "role": "member"})
    assert response.status_code == 302
    assert Membership.objects.get(user=world.users["nobody"]).role == Role.MEMBER


def test_staff_without_a_moderated_workspace_sees_nothing(world, data):
    client = login(world, "alice")  # staff, but a plain member
    assert "chatsession" not in page(client, "/admin/")
    assert client.get("/admin/chat/chatsession/").status_code == 403


def test_agent_secrets_are_masked_and_kept(world, data):
    agent = Agent.objects.get(workspace=world.a)
    agent.config = {"url": "https://llm.example", "api_key": "sk-very-secret", "model": "m1"}
    agent.save()
    client = login(world, "mod")
    assert "sk-very-secret" not in page(client, "/admin/chat/agent/")
    form_html = page(client, f"/admin/chat/agent/{agent.pk}/change/")
    assert "sk-very-secret" not in form_html and "********" in form_html
    response = client.post(f"/admin/chat/agent/{agent.pk}/change/", {
        "workspace": world.a.pk, "key": "helper", "name": "Helper 2", "backend": "echo",
        "config": '{"url": "https://llm.example", "api_key": "********", "model": "m2"}',
    })
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.config == {"url": "https://llm.example", "api_key": "sk-very-secret", "model": "m2"}


def test_security_events_count_per_type_in_the_header(world, data):
    html = page(login(world, "mod"), "/admin/security/securityevent/")
    assert "message_blocked: 1" in html and "rate_limit_exceeded: 2" in html
    html = page(login(world, "root", superuser=True), "/admin/security/securityevent/", type__exact="message_blocked")
    assert "message_blocked: 2" in html and "rate_limit_exceeded" not in html.split("<h2>")[1].split("</h2>")[0]


def test_presence_shows_who_is_connected_now(world, data):
    Presence.objects.filter(socket_id="acme-sock").update(last_seen=timezone.now() - timezone.timedelta(hours=1))
    html = page(login(world, "mod"), "/admin/chat/presence/")
    assert "acme-session" not in html


def test_api_token_secret_is_shown_once_and_revocable(world, data):
    client = login(world, "mod")
    response = client.post("/admin/security/apitoken/add/", {"name": "ci"})
    assert response.status_code == 200
    secret = re.search(r'id="api-token-secret"[^>]*>(chat_[^<]+)<', response.content.decode()).group(1)
    token = ApiToken.objects.get(name="ci")
    assert token.user == world.users["mod"] and secret.startswith(token.hint)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get(f"{API}/workspaces/").status_code == 200
    listing = page(client, "/admin/security/apitoken/")
    assert secret not in listing and token.hint in listing
    assert secret not in page(client, f"/admin/security/apitoken/{token.pk}/change/")
    # A moderator sees only their own tokens.
    assert ApiToken.objects.exclude(user=world.users["mod"]).exists()
    assert world.tokens["alice"][:12] not in listing
    client.post("/admin/security/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert api.get(f"{API}/workspaces/").status_code == 401
    assert LogEntry.objects.filter(object_id=str(token.pk), change_message="Revoked the API token.").exists()


def test_superuser_issues_tokens_for_others(world, data):
    client = login(world, "root", superuser=True)
    response = client.post("/admin/security/apitoken/add/", {"name": "for-bob", "username": "bob"})
    assert response.status_code == 200 and "chat_" in response.content.decode()
    assert ApiToken.objects.get(name="for-bob").user == world.users["bob"]
    response = client.post("/admin/security/apitoken/add/", {"name": "x", "username": "ghost"})
    assert response.status_code == 200 and not ApiToken.objects.filter(name="x").exists()


# --- agents: hosts and credentials are the operator's (issue #17) ---------------------------------


@pytest.fixture
def agent_policy(settings):
    """The operator allows OpenAI and one more host; no private networks (the defaults, plus a host)."""
    settings.CHAT = dataclasses.replace(
        settings.CHAT, agent_allowed_hosts=("api.openai.com", "llm.example"), agent_allow_private_networks=False
    )


def post_agent(client: Client, world, agent: Agent, config: dict, backend: str = "openai"):
    return client.post(f"/admin/chat/agent/{agent.pk}/change/", {
        "workspace": world.a.pk, "key": agent.key, "name": agent.name, "backend": backend,
        "config": json.dumps(config),
    })


def openai_agent(world) -> Agent:
    agent = Agent.objects.get(workspace=world.a)
    agent.backend = "openai"
    agent.config = {"base_url": "https://api.openai.com/v1", "model": "m1", "api_key": "sk-very-secret"}
    agent.save()
    return agent


@pytest.mark.parametrize("base_url", [
    "http://127.0.0.1:8000/v1", "http://localhost:6379/", "http://[::1]/v1", "http://169.254.169.254/latest",
    "http://10.0.0.5/v1", "https://evil.example/v1",
])
def test_moderator_cannot_point_an_agent_at_loopback(world, data, agent_policy, base_url):
    """Nor at any other private, metadata or unlisted host: the form refuses it and nothing is saved."""
    agent = openai_agent(world)
    response = post_agent(login(world, "mod"), world, agent, {"base_url": base_url, "model": "m1", "api_key": "sk-new"})
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    agent.refresh_from_db()
    assert agent.config["base_url"] == "https://api.openai.com/v1"


@pytest.mark.parametrize("names", ["DJANGO_SECRET_KEY", "DATABASE_URL", "CHAT_OPS_TOKEN", ["OPENAI_API_KEY"]])
def test_api_key_env_outside_prefix_is_refused(world, data, agent_policy, names):
    agent = openai_agent(world)
    response = post_agent(login(world, "mod"), world, agent, {"model": "m1", "api_key_env": names})
    assert response.status_code == 200 and "CHAT_AGENT_KEY_" in response.content.decode()
    agent.refresh_from_db()
    assert "api_key_env" not in agent.config
    response = post_agent(login(world, "mod"), world, agent, {"model": "m1", "api_key_env": "CHAT_AGENT_KEY_TEAM"})
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.config == {"model": "m1", "api_key_env": "CHAT_AGENT_KEY_TEAM"}


def test_a_kept_masked_key_does_not_follow_a_url_change(world, data, agent_policy):
    agent = openai_agent(world)
    client = login(world, "mod")
    response = post_agent(client, world, agent, {"base_url": "https://llm.example/v1", "model": "m1", "api_key": "********"})
    assert response.status_code == 200 and "enter the secret again" in response.content.decode()
    agent.refresh_from_db()
    assert agent.config["base_url"] == "https://api.openai.com/v1" and agent.config["api_key"] == "sk-very-secret"
    # The same URL keeps it; a new URL with a new key is fine.
    response = post_agent(client, world, agent, {"base_url": "https://api.openai.com/v1", "model": "m2", "api_key": "********"})
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.config["api_key"] == "sk-very-secret" and agent.config["model"] == "m2"
    response = post_agent(client, world, agent, {"base_url": "https://llm.example/v1", "model": "m2", "api_key": "sk-other"})
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.config == {"base_url": "https://llm.example/v1", "model": "m2", "api_key": "sk-other"}


def test_agent_timeout_is_bounded(world, data, agent_policy):
    agent = openai_agent(world)
    response = post_agent(login(world, "mod"), world, agent, {"model": "m1", "api_key": "********", "timeout_s": 86400})
    assert response.status_code == 200 and "timeout_s" in response.content.decode()


def test_admin_role_change_and_removal_reach_live_sockets(world, data, emitted, committed):
    """Issue #17: the admin's forms change access like the REST API, so the member's live sockets re-read it."""
    client = login(world, "boss")
    target = Membership.objects.get(user=world.users["mod"], workspace=world.a)
    with committed():
        response = client.post(
            f"/admin/chat/membership/{target.pk}/change/", {"role": "member", "muted_until_0": "", "muted_until_1": ""}
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Membership.objects.get(pk=target.pk).role == Role.MEMBER
    notice = {"kind": "access_changed", "workspaceId": "acme"}
    assert ("notice_room", f"chat:workspace:acme:user:{world.users['mod'].pk}", notice) in emitted.calls

    alice = Membership.objects.get(user=world.users["alice"], workspace=world.a)
    with committed():
        response = client.post(f"/admin/chat/membership/{alice.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Membership.objects.filter(pk=alice.pk).exists()
    assert ("notice_room", f"chat:workspace:acme:user:{world.users['alice'].pk}", notice) in emitted.calls


def test_moderators_see_versions_and_deleted_content_of_their_workspace_only(world, data):
    from chat.services.edits import NewContent, apply_delete, apply_edit

    for tag, owner in (("acme", "alice"), ("bsecret", "bob")):
        message = data[tag]["message"]
        apply_edit(message.pk, world.users[owner], 1, NewContent(f"{tag} edited", "text", {}, ""))
        apply_delete(message.pk, world.users[owner], False, 2)
    client = login(world, "mod")
    html = page(client, f"/admin/chat/chatmessage/{data['acme']['message'].pk}/change/")
    assert "Earlier versions" in html
    assert "acme content" in html and "acme edited" in html  # v1 (edited away), v2 (deleted, still the row's)
    reasons = re.findall(r'<td class="field-reason">\s*<p>(\w+)</p>', html)
    assert reasons == ["Edit", "Delete"], reasons
    listing = page(client, "/admin/chat/chatmessage/", changed="deleted")
    assert "acme edited" in listing and "bsecret" not in listing
    response = client.get(f"/admin/chat/chatmessage/{data['bsecret']['message'].pk}/change/")
    assert response.status_code in (302, 403, 404) and "bsecret" not in response.content.decode()
