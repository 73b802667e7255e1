"""REST API: history by seq, posting (integrators, system, idempotency, mute), hiding, search."""

# ruff: noqa: F811 -- tests take the fixtures imported from api_support as arguments

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from chat.actions.messages import message_posted
from chat.models import Agent, ChatMessage, Membership
from tests.integration.api_support import API, committed, emitted, error_of, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db
S = f"{API}/workspaces/acme/sessions/s"


@pytest.fixture
def session(world):
    session = world.session(world.a, "s", "alice")
    session.shared_with.add(world.users["carol"])
    for i in range(1, 8):
        world.message(session, f"m{i}", f"message number {i}", sender="alice" if i % 2 else "carol")
    return session


def seqs(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [m["seq"] for m in response.json()["results"]]


def test_history_newest_page_then_back_then_forward(world, session):
    client = world.client("alice")
    first = client.get(f"{S}/messages/", {"limit": 3})
    assert seqs(first) == [5, 6, 7]
    body = first.json()
    assert body["hasMore"] is True and body["next"] is None and body["lastSeq"] == 7
    back = client.get(body["previous"])
    assert seqs(back) == [2, 3, 4] and back.json()["next"] is not None
    oldest = client.get(back.json()["previous"])
    assert seqs(oldest) == [1] and oldest.json()["hasMore"] is False and oldest.json()["previous"] is None
    forward = client.get(oldest.json()["next"])
    assert seqs(forward) == [2, 3, 4]


def test_history_after_seq_catches_up_oldest_first(world, session):
    client = world.client("alice")
    page = client.get(f"{S}/messages/", {"after_seq": 2, "limit": 4})
    assert seqs(page) == [3, 4, 5, 6] and page.json()["hasMore"] is True
    assert seqs(client.get(page.json()["next"])) == [7]
    end = client.get(f"{S}/messages/", {"after_seq": 7})
    assert seqs(end) == [] and end.json()["hasMore"] is False and end.json()["next"] is None


def test_history_between_two_seqs(world, session):
    client = world.client("alice")
    page = client.get(f"{S}/messages/", {"after_seq": 2, "before_seq": 6, "limit": 2})
    assert seqs(page) == [3, 4] and page.json()["hasMore"] is True
    assert seqs(client.get(page.json()["next"])) == [5, 6]  # the next page is no longer bounded by before_seq
    assert seqs(client.get(f"{S}/messages/", {"after_seq": 2, "before_seq": 6})) == [3, 4, 5]


def test_history_message_shape_is_the_socket_shape(world, session):
    message = world.client("alice").get(f"{S}/messages/", {"limit": 1}).json()["results"][0]
    assert message | {"timestamp": 0} == {
        "id": "m7", "sessionId": "s", "workspaceId": "acme", "seq": 7, "senderType": "user", "userId": "alice",
        "userName": "alice", "content": "message number 7", "contentType": "text", "html": None, "metadata": {},
        "timestamp": 0, "version": 1, "editedAt": None, "deleted": False, "attachments": [],
        "hidden": False, "hiddenBy": None, "hiddenAt": None,
    }
    assert world.client("alice").get(f"{S}/messages/m7/").json() == message


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"limit": "x"}, {"after_seq": -1}, {"before_seq": 0}, {"after_seq": ""}],
)
def test_history_validation(world, session, params):
    error_of(world.client("alice").get(f"{S}/messages/", params), 400, "invalid_payload")


def test_post_as_integrator_broadcasts_and_triggers_the_agent(world, session, emitted, committed, monkeypatch):
    triggered = []

    async def answer(sender, *, session_id, message_id, **kwargs):
        triggered.append(message_id)

    monkeypatch.setattr(message_posted, "receivers", [])  # not the real runner: this test has no event loop to run it
    message_posted.connect(answer, weak=False)
    session.agent = Agent.objects.get(workspace=world.a, key="helper")  # a session without one has nobody to ask
    session.save(update_fields=["agent"])
    client = world.client("carol")
    payload = {"id": "crm-1", "content": "Refund issued", "metadata": {"order": 7781}, "contentType": "markdown"}
    with committed():
        response = client.post(f"{S}/messages/", payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["seq"], body["senderType"], body["userId"], body["duplicate"]) == (8, "user", "carol", False)
    assert (body["content"], body["html"]) == ("Refund issued", "<p>Refund issued</p>\n")
    ((room, shape),) = emitted.events("chat:message-received")
    assert room == "chat:workspace:acme:session:s"
    assert shape == {k: v for k, v in body.items() if k not in ("duplicate", "hidden", "hiddenBy", "hiddenAt")}
    assert triggered == [ChatMessage.objects.get(key="crm-1").pk]

    with committed():
        again = client.post(f"{S}/messages/", {**payload, "content": "changed"}, format="json")
    assert again.status_code == 200
    assert again.json() | {"duplicate": False} == body and again.json()["duplicate"] is True
    assert len(emitted.events("chat:message-received")) == 1  # nothing new was broadcast
    assert triggered == [triggered[0]] * 2  # the runner is idempotent: a resend recovers a lost trigger
    assert ChatMessage.objects.filter(session=session).count() == 8


def test_post_system_messages_are_for_moderators(world, session, emitted, committed):
    payload = {"id": "sys-1", "content": "Maintenance at noon", "senderType": "system", "senderName": "ops"}
    error_of(world.client("alice").post(f"{S}/messages/", payload, format="json"), 403, "forbidden")
    with committed():
        response = world.client("mod").post(f"{S}/messages/", payload, format="json")
    assert response.status_code == 201
    assert (response.json()["senderType"], response.json()["userName"], response.json()["userId"]) == (
        "system", "ops", None,
    )
    assert len(emitted.events("chat:message-received")) == 1


@pytest.mark.parametrize(
    "payload, status, code",
    [
        ({"content": "no id"}, 400, "invalid_payload"),
        ({"id": "x", "content": ""}, 400, "invalid_payload"),
        ({"id": "x", "content": "   "}, 400, "invalid_payload"),
        ({"id": "x", "content": 5}, 400, "invalid_payload"),
        ({"id": "x", "content": "a", "contentType": "html"}, 400, "invalid_payload"),
        ({"id": "x", "content": "a", "metadata": []}, 400, "invalid_payload"),
        ({"id": "x", "content": "a", "metadata": {"k": "nul\u0000"}}, 400, "invalid_payload"),
        ({"id": "x", "content": "\ud800"}, 400, "invalid_payload"),
        ({"id": "x", "content": "a", "senderType": "agent"}, 400, "invalid_payload"),
        ({"id": "x", "content": "words and more " * 715}, 400, "message_too_long"),
        ({"id": "x", "content": "a", "metadata": {"k": "v" * 17_000}}, 400, "metadata_too_large"),
    ],
)
def test_post_validation(world, session, payload, status, code):
    raw = json.dumps(payload)  # ASCII: a lone surrogate travels as the escape \ud800, as a client would send it
    error_of(world.client("alice").post(f"{S}/messages/", raw, content_type="application/json"), status, code)
    assert not ChatMessage.objects.filter(key="x").exists()


def test_post_is_screened_like_a_socket_message(world, session):
    """Standard (the default): what looks like an attack is stored as sent and recorded; strict refuses it."""
    client = world.client("alice")
    response = client.post(f"{S}/messages/", {"id": "x", "content": "<script>alert(1)</script>"}, format="json")
    assert response.status_code == 201 and response.json()["content"] == "<script>alert(1)</script>"
    assert response.json()["html"] is None  # recorded as suspicious_activity: see test_security_content
    response = client.post(f"{S}/messages/", {"id": "y", "content": "<b>bold</b> & fine"}, format="json")
    assert response.status_code == 201 and response.json()["content"] == "<b>bold</b> & fine"
    assert world.client("boss").patch(f"{API}/workspaces/acme/", {"contentPolicy": "strict"}, format="json").json()[
        "contentPolicy"
    ] == "strict"
    body = error_of(client.post(f"{S}/messages/", {"id": "z", "content": "<script>alert(1)</script>"},
                                format="json"), 400, "message_blocked")
    assert body["reason"] == "script_injection"
    assert not ChatMessage.objects.filter(key="z").exists()


def test_post_checks_the_length_before_screening(world, session):
    """Issue #17: a long hostile post was screened (seconds) before its length was checked."""
    body = error_of(world.client("alice").post(f"{S}/messages/", {"id": "x", "content": "<" + " " * 20_000},
                                               format="json"), 400, "message_too_long")
    assert body["maxLength"] == 10_000


def test_post_to_a_closed_session_and_when_muted(world, session):
    membership = Membership.objects.get(user=world.users["alice"], workspace=world.a)
    membership.muted_until = timezone.now() + timedelta(minutes=5)
    membership.save()
    body = error_of(world.client("alice").post(f"{S}/messages/", {"id": "x", "content": "hi"}, format="json"),
                    403, "muted")
    assert body["mutedUntil"] > 0
    world.client("mod").post(f"{S}/close/")
    error_of(world.client("carol").post(f"{S}/messages/", {"id": "y", "content": "hi"}, format="json"),
             409, "session_closed")


def test_hide_and_unhide(world, session, emitted, committed):
    mod, alice = world.client("mod"), world.client("alice")
    error_of(alice.post(f"{S}/messages/m3/hide/"), 403, "forbidden")
    with committed():
        hidden = mod.post(f"{S}/messages/m3/hide/")
    assert hidden.status_code == 200
    assert (hidden.json()["hidden"], hidden.json()["hiddenBy"]) == (True, "mod")
    assert emitted.events("chat:message-hidden") == [
        ("chat:workspace:acme:session:s", {"sessionId": "s", "messageId": "m3", "workspaceId": "acme"})
    ]
    # Members no longer see it anywhere; moderators do, marked.
    assert 3 not in seqs(alice.get(f"{S}/messages/"))
    error_of(alice.get(f"{S}/messages/m3/"), 404, "message_not_found")
    assert [m["hidden"] for m in mod.get(f"{S}/messages/").json()["results"] if m["seq"] == 3] == [True]
    assert alice.get(f"{API}/workspaces/acme/messages/", {"q": "number"}).json()["results"][-1]["seq"] != 3
    # Reusing its id does not reveal it.
    reused = alice.post(f"{S}/messages/", {"id": "m3", "content": "guess"}, format="json")
    assert reused.status_code == 200 and reused.json()["content"] == ""

    with committed():
        assert mod.post(f"{S}/messages/m3/hide/").status_code == 200  # idempotent, no second announcement
        unhidden = mod.post(f"{S}/messages/m3/unhide/")
    assert unhidden.json()["hidden"] is False and unhidden.json()["hiddenBy"] is None
    assert len(emitted.events("chat:message-hidden")) == 1
    ((_, payload),) = emitted.events("chat:message-unhidden")
    assert payload["messageId"] == "m3" and payload["message"]["content"] == "message number 3"
    assert 3 in seqs(alice.get(f"{S}/messages/"))
    error_of(mod.post(f"{S}/messages/nope/hide/"), 404, "message_not_found")


def test_search_within_the_workspace(world, session):
    other = world.session(world.a, "other", "mod")
    world.message(other, "o1", "the refund was processed", sender="mod")
    world.message(session, "r1", "Where is my REFUND?", sender="alice")
    b_session = world.session(world.b, "bs", "bob")
    world.message(b_session, "b1", "refund in beta", sender="bob")

    def found(user, **params):
        response = world.client(user).get(f"{API}/workspaces/acme/messages/", params)
        assert response.status_code == 200, response.json()
        return [(m["sessionId"], m["id"]) for m in response.json()["results"]]

    assert found("alice", q="refund") == [("s", "r1")]  # not mod's session, not beta
    assert found("mod", q="refund") == [("s", "r1"), ("other", "o1")]
    assert found("mod", q="refund processed") == [("other", "o1")]
    assert found("mod", q="refund", session="other") == [("other", "o1")]
    error_of(world.client("bob").get(f"{API}/workspaces/acme/messages/", {"q": "refund"}), 404, "not_a_member")
    for bad in ({}, {"q": ""}, {"q": "   "}, {"q": "x" * 201}, {"q": "nul\x00"}):
        error_of(world.client("alice").get(f"{API}/workspaces/acme/messages/", bad), 400, "invalid_payload")


def test_search_is_paginated(world, session):
    pages, response = [], world.client("alice").get(f"{API}/workspaces/acme/messages/", {"q": "number", "limit": 3})
    while True:
        pages.append([m["seq"] for m in response.json()["results"]])
        if not response.json()["next"]:
            break
        response = world.client("alice").get(response.json()["next"])
    assert pages == [[7, 6, 5], [4, 3, 2], [1]]
