"""Sockets' standing read for many users at once (``chat.services.access.standings``), as each alone.

A busy worker re-reads the standing of its joined sockets in batches: four
queries for all of them, and each user's answer what it would be alone.
"""

# ruff: noqa: F811 -- tests take the fixtures imported from api_support as arguments

from __future__ import annotations

import pytest

from chat.models import Membership, WorkspaceBan
from chat.services import access
from chat.services.access import Standing
from tests.integration.api_support import world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def test_a_batch_answers_each_user_as_alone_in_four_queries(world, django_assert_num_queries):
    own = world.session(world.a, "own", "alice")
    shared = world.session(world.a, "shared", "alice")
    shared.shared_with.add(world.users["carol"])
    beta = world.session(world.b, "beta", "bob")
    Membership.objects.filter(user=world.users["carol"], workspace=world.a).update(role="member")
    WorkspaceBan.objects.create(user=world.users["bob"], workspace=world.b, banned_by=world.users["bmod"])
    Membership.objects.filter(user=world.users["bob"]).delete()
    ids = [own.pk, shared.pk, beta.pk, 10**9]  # and one that no longer exists
    users = ["alice", "carol", "mod", "boss", "bob", "nobody"]
    with django_assert_num_queries(4):
        answers = access.standings([(world.users[name].pk, ids) for name in users])
    R, M, O, B = Standing.REVOKED, Standing.MEMBER, Standing.MODERATOR, Standing.BANNED
    expected = {
        "alice": [M, M, R, R],
        "carol": [R, M, R, R],
        "mod": [O, O, R, R],
        "boss": [O, O, R, R],
        "bob": [R, R, B, R],
        "nobody": [R, R, R, R],
    }
    assert {name: [answer[i] for i in ids] for name, answer in zip(users, answers)} == expected
    for name in users:  # one user alone answers the same
        assert access.standing_in(world.users[name].pk, ids) == answers[users.index(name)]
