"""The reaction store (``chat.services.reactions``) against the database: the aggregate always equals the rows.

Random adds and removes by several members, with the list of users capped
low, so both ways of updating the aggregate (from the stored one, and read
again from the rows when a capped list loses a user) are exercised; after
every change the aggregate is what the rows say, and versions count changes.
"""

# ruff: noqa: F811 -- tests take the fixtures imported from api_support as arguments

from __future__ import annotations

import random

import pytest

from chat.errors import ReactionEmojiLimit, ReactionUserLimit
from chat.models import Reaction
from chat.services import reactions
from tests.integration.api_support import world  # noqa: F401 (fixtures)
from tests.unit.security_support import override_chat

pytestmark = pytest.mark.django_db


def from_rows(message, shown: int):
    rows = Reaction.objects.filter(message=message).order_by("pk").values_list("emoji", "user__username")
    return reactions.summarise(rows, shown)


def same_counts(summary, expected) -> bool:
    """Equal up to the order of emoji (an emoji keeps its place while it has reactions)."""
    key = lambda entries: sorted((e["emoji"], e["count"], tuple(e["users"])) for e in entries)  # noqa: E731
    return key(summary) == key(expected)


def test_the_aggregate_is_always_the_rows(world, settings):
    override_chat(settings, reaction_users_shown=2, reaction_per_user_per_message=3, reaction_emoji_per_message=4)
    session = world.session(world.a, "store", "alice")
    message = world.message(session, "store-1", "hi", sender="alice")
    people = [world.users[name] for name in ("alice", "carol", "mod", "boss")]
    palette = ["👍", "🎉", "👀", "❤️", "😂"]
    rng = random.Random(22)
    version = 0
    for _ in range(300):
        user, emoji = rng.choice(people), rng.choice(palette)
        try:
            result = (reactions.add if rng.random() < 0.6 else reactions.remove)(message, user, emoji)
        except (ReactionUserLimit, ReactionEmojiLimit):
            continue
        if result.changed:
            version += 1
        assert result.version == version
        assert same_counts(result.reactions, from_rows(message, 2)), (result.reactions, from_rows(message, 2))
    assert version > 50
    stored = reactions.attach([message])[0].reaction_aggregate
    assert stored.version == version and same_counts(stored.reactions, from_rows(message, 2))


def test_batches_of_changes_leave_the_aggregate_the_rows_and_count_versions(world, settings):
    """``reactions.apply``: one transaction for many changes, the same row changed twice in a batch included."""
    override_chat(settings, reaction_users_shown=2, reaction_per_user_per_message=3, reaction_emoji_per_message=4)
    session = world.session(world.a, "batches", "alice")
    messages = [world.message(session, f"batch-{n}", "hi", sender="alice") for n in range(3)]
    people = [world.users[name] for name in ("alice", "carol", "mod", "boss")]
    palette = ["👍", "🎉", "👀", "❤️", "😂"]
    rng = random.Random(23)
    versions = {message.pk: 0 for message in messages}
    for _ in range(60):
        batch = [
            reactions.Change(rng.choice(messages), rng.choice(people), rng.choice(palette), rng.random() < 0.6)
            for _ in range(rng.randint(1, 12))
        ]
        outcomes = reactions.apply(batch)
        assert len(outcomes) == len(batch)
        last = {}
        for change, outcome in zip(batch, outcomes):
            if isinstance(outcome, (ReactionUserLimit, ReactionEmojiLimit)):
                continue
            if outcome.changed:
                versions[change.message.pk] += 1
            assert outcome.version == versions[change.message.pk]
            last[change.message.pk] = outcome
        for message_id, outcome in last.items():
            message = next(m for m in messages if m.pk == message_id)
            assert same_counts(outcome.reactions, from_rows(message, 2)), (outcome.reactions, from_rows(message, 2))
    for message in messages:
        stored = reactions.attach([message])[0].reaction_aggregate
        assert stored.version == versions[message.pk] > 5
        assert same_counts(stored.reactions, from_rows(message, 2))
