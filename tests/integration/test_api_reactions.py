"""Reactions and read pointers over REST: the same actions, checks, limits and broadcasts as on a socket.

``PUT``/``DELETE .../messages/{id}/reactions/{emoji}/`` and ``POST .../sessions/{id}/read/``;
another workspace's member, a session not shared, a hidden message, a bad
emoji, a muted member and a member over the ``react``/``read`` limits are each
refused with their code, and nothing is stored or announced.
"""

# ruff: noqa: F811 -- tests take the fixtures imported from api_support as arguments

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from chat.models import Membership, Reaction, ReadState
from chat.services import screening
from tests.integration.api_support import API, committed, emitted, error_of, world  # noqa: F401 (fixtures)
from tests.unit.security_support import override_chat

pytestmark = pytest.mark.django_db

S = f"{API}/workspaces/acme/sessions/s"
THUMBS = quote("👍")


@pytest.fixture
def session(world):
    session = world.session(world.a, "s", "alice")
    session.shared_with.add(world.users["carol"])
    for n in range(1, 4):
        world.message(session, f"m{n}", f"message {n}", sender="alice")
    return session


def test_react_and_take_it_back_idempotently_with_one_broadcast_per_change(world, session, emitted, committed):
    carol = world.client("carol")
    with committed():
        first = carol.put(f"{S}/messages/m1/reactions/{THUMBS}/")
        again = carol.put(f"{S}/messages/m1/reactions/{THUMBS}/")
    assert first.status_code == again.status_code == 200, first.json()
    expected = {
        "messageId": "m1",
        "reactions": [{"emoji": "👍", "count": 1, "users": ["carol"]}],
        "reactionsVersion": 1,
    }
    assert first.json() == again.json() == expected
    [(room, payload)] = emitted.events("chat:reactions-updated")
    assert room == "chat:workspace:acme:session:s"
    assert (payload["messageId"], payload["reactionsVersion"], payload["userId"], payload["added"]) == (
        "m1",
        1,
        "carol",
        True,
    )
    history = world.client("alice").get(f"{S}/messages/m1/").json()
    assert (history["reactions"], history["reactionsVersion"]) == (expected["reactions"], 1)

    with committed():
        removed = carol.delete(f"{S}/messages/m1/reactions/{THUMBS}/")
        removed_again = carol.delete(f"{S}/messages/m1/reactions/{THUMBS}/")
    assert removed.json() == removed_again.json() == {"messageId": "m1", "reactions": [], "reactionsVersion": 2}
    assert len(emitted.events("chat:reactions-updated")) == 2
    assert not Reaction.objects.exists()


@pytest.mark.parametrize(
    ("who", "path", "status", "code"),
    [
        ("bob", f"{S}/messages/m1/reactions/{THUMBS}/", 404, "not_a_member"),  # another workspace's member
        ("mod", f"{API}/workspaces/acme/sessions/nope/messages/m1/reactions/{THUMBS}/", 404, "session_not_found"),
        ("carol", f"{S}/messages/m9/reactions/{THUMBS}/", 404, "message_not_found"),
        ("carol", f"{S}/messages/hidden/reactions/{THUMBS}/", 404, "message_not_found"),
        ("carol", f"{S}/messages/m1/reactions/{quote('<b>hi')}/", 400, "invalid_emoji"),
        ("carol", f"{S}/messages/m1/reactions/{quote('👍' * 500)}/", 400, "invalid_emoji"),
        ("carol", f"{S}/messages/m1/reactions/{quote('👍👍')}/", 400, "invalid_emoji"),
    ],
)
def test_hostile_reactions_are_refused_with_their_code_and_store_nothing(
    world, session, emitted, who, path, status, code
):
    hidden = world.message(session, "hidden", "hidden", sender="alice")
    hidden.hidden = True
    hidden.save(update_fields=["hidden"])
    error_of(world.client(who).put(path), status, code)
    assert not Reaction.objects.exists() and not emitted.events()


def test_a_muted_member_cannot_react_and_limits_hold(world, session, settings):
    Membership.objects.filter(user=world.users["carol"]).update(muted_until=timezone.now() + timedelta(hours=1))
    error_of(world.client("carol").put(f"{S}/messages/m1/reactions/{THUMBS}/"), 403, "muted")
    override_chat(settings, reaction_rate_limit=2)
    screening.limiter.cache_clear()
    alice = world.client("alice")
    for emoji in ("👍", "🎉"):
        assert alice.put(f"{S}/messages/m2/reactions/{quote(emoji)}/").status_code == 200
    error_of(alice.put(f"{S}/messages/m2/reactions/{quote('👀')}/"), 429, "rate_limited")
    assert Reaction.objects.count() == 2


def test_mark_read_moves_forward_only_and_is_announced(world, session, emitted, committed):
    carol = world.client("carol")
    with committed():
        response = carol.post(f"{S}/read/", {"seq": 2}, format="json")
    assert response.status_code == 200 and response.json() == {"sessionId": "s", "lastReadSeq": 2, "unreadCount": 1}
    rooms = [room for room, _ in emitted.events("chat:read-updated")]
    assert rooms == ["chat:workspace:acme:session:s", f"chat:workspace:acme:user:{world.users['carol'].pk}"]
    with committed():
        back = carol.post(f"{S}/read/", {"seq": 1}, format="json")  # never back, nothing announced
        beyond = carol.post(f"{S}/read/", {"seq": 99}, format="json")  # clamped to the newest message
    assert back.json()["lastReadSeq"] == 2 and beyond.json() == {"sessionId": "s", "lastReadSeq": 3, "unreadCount": 0}
    assert len(emitted.events("chat:read-updated")) == 4
    assert ReadState.objects.get(user=world.users["carol"]).last_read_seq == 3
    unread = world.client("carol").get(f"{API}/workspaces/acme/sessions/?unread=true").json()
    assert "s" not in [row["id"] for row in unread["results"]]
    for bad in ({"seq": -1}, {"seq": "2"}, {"seq": 1.5}, {}):
        error_of(carol.post(f"{S}/read/", bad, format="json"), 400, "invalid_payload")
    error_of(world.client("bob").post(f"{S}/read/", {"seq": 1}, format="json"), 404, "not_a_member")
