"""Read pointers against the database (``chat.services.read_state``): batched moves and counts equal one-by-one ones.

``advance_many`` moves many pointers in one upsert and never moves one back;
``unread_counts`` counts many members' unread messages (in one query when they
read along) and agrees
with ``unread_count`` (others' visible messages after the pointer: agents' and
the system's included, hidden and deleted ones and the member's own left out).
"""

# ruff: noqa: F811 -- tests take the fixtures imported from api_support as arguments

from __future__ import annotations

import random

import pytest
from django.utils import timezone

from chat.models import Agent
from chat.services import read_state
from chat.services.messages import Sender, store_message
from tests.integration.api_support import world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def test_pointers_move_forward_only_many_at_once(world):
    one, two = world.session(world.a, "rs-1", "alice"), world.session(world.a, "rs-2", "alice")
    alice, carol = world.users["alice"].pk, world.users["carol"].pk
    moved = read_state.advance_many({(one.pk, alice): 5, (one.pk, carol): 3, (two.pk, alice): 0})
    assert moved == {(one.pk, alice): (5, True), (one.pk, carol): (3, True), (two.pk, alice): (0, False)}
    moved = read_state.advance_many({(one.pk, alice): 4, (one.pk, carol): 7, (two.pk, alice): 2})
    assert moved == {(one.pk, alice): (5, False), (one.pk, carol): (7, True), (two.pk, alice): (2, True)}
    assert [read_state.pointer(one.pk, alice), read_state.pointer(one.pk, carol), read_state.pointer(two.pk, alice)] == [
        5,
        7,
        2,
    ]


def test_unread_counts_agree_with_each_count(world, django_assert_num_queries, monkeypatch):
    sessions = [world.session(world.a, f"uc-{n}", "alice") for n in range(3)]
    agent = Agent.objects.get(workspace=world.a, key="helper")
    people = ["alice", "carol", "mod"]
    rng = random.Random(7)
    for session in sessions:
        for n in range(25):
            kind = rng.random()
            if kind < 0.15:
                sender = Sender.for_agent(agent)
            elif kind < 0.2:
                sender = Sender.system()
            else:
                sender = Sender.for_user(world.users[rng.choice(people)])
            message = store_message(session.pk, sender, f"{session.key}-{n}", "hi").message
            if rng.random() < 0.1:
                message.hidden = True
                message.save(update_fields=["hidden"])
            elif rng.random() < 0.1:
                message.deleted_at = timezone.now()
                message.save(update_fields=["deleted_at"])
    pointers = {
        (session.pk, world.users[name].pk): rng.randint(0, 25) for session in sessions for name in people
    }
    last_seq = {session.pk: 25 for session in sessions}
    with django_assert_num_queries(1):  # every pointer near the end: the rows after them, counted here
        counts = read_state.unread_counts(pointers, last_seq)
    expected = {pair: read_state.unread_count(pair[0], pair[1], seq) for pair, seq in pointers.items()}
    assert counts == expected
    assert len(set(counts.values())) > 3  # the pointers and senders differ enough to tell counts apart
    monkeypatch.setattr(read_state, "NEAR", 10)  # pointers far behind are counted by the database, one by one
    far = sum(1 for seq in pointers.values() if 25 - seq > 10)
    assert far > 1
    with django_assert_num_queries(far + 1):
        assert read_state.unread_counts(pointers, last_seq) == expected
