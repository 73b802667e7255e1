"""REST edits in process: the versions cap, deleting past it, the versions list, live effects after commit."""

# ruff: noqa: F811 -- tests take the fixtures imported from api_support as arguments

from __future__ import annotations

import pytest

from chat.models import ChatMessage, MessageVersion
from chat.services import edits
from tests.integration.api_support import API, committed, emitted, error_of, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

S = f"{API}/workspaces/acme/sessions/s"


@pytest.fixture
def message(world):
    session = world.session(world.a, "s", "alice")
    session.shared_with.add(world.users["carol"])
    return world.message(session, "m1", "first", sender="alice")


def test_edits_stop_at_the_cap_and_deleting_still_works(world, message, monkeypatch, emitted):
    monkeypatch.setattr(edits, "MAX_VERSIONS", 3)
    client = world.client("alice")
    for version in (1, 2):
        response = client.patch(f"{S}/messages/m1/", {"version": version, "content": f"v{version + 1}"}, format="json")
        assert response.status_code == 200 and response.json()["version"] == version + 1, response.json()
    body = error_of(
        client.patch(f"{S}/messages/m1/", {"version": 3, "content": "v4"}, format="json"), 409, "too_many_edits"
    )
    assert body["maxVersions"] == 3
    assert MessageVersion.objects.filter(message=message).count() == 2
    response = client.delete(f"{S}/messages/m1/")
    assert response.status_code == 200 and response.json()["version"] == 4


def test_versions_list_and_live_effects_after_commit(world, message, emitted, committed):
    client = world.client("alice")
    with committed():
        response = client.patch(
            f"{S}/messages/m1/", {"version": 1, "content": "**second**", "contentType": "markdown"}, format="json"
        )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["html"].strip(), body["version"], body["duplicate"]) == ("<p><strong>second</strong></p>", 2, False)
    [(room, payload)] = emitted.events("chat:message-updated")
    assert room == "chat:workspace:acme:session:s"
    assert (payload["messageId"], payload["seq"], payload["version"]) == ("m1", 1, 2)
    assert {k: v for k, v in payload["message"].items()} == {k: body[k] for k in payload["message"]}

    versions = client.get(f"{S}/messages/m1/versions/").json()
    assert versions["version"] == 2 and versions["deleted"] is False
    [old] = versions["results"]
    assert (old["version"], old["content"], old["contentType"], old["html"], old["reason"], old["changedBy"]) == (
        1,
        "first",
        "text",
        None,
        "edit",
        "alice",
    )
    error_of(world.client("carol").get(f"{S}/messages/m1/versions/"), 403, "not_author")
    error_of(
        world.client("carol").patch(f"{S}/messages/m1/", {"version": 2, "content": "x"}, format="json"),
        403,
        "not_author",
    )
    error_of(client.patch(f"{S}/messages/m1/", {"content": "no version"}, format="json"), 400, "invalid_payload")
    error_of(client.patch(f"{S}/messages/m1/", {"version": "2", "content": "x"}, format="json"), 400, "invalid_payload")
    assert ChatMessage.objects.get(pk=message.pk).content == "**second**"
