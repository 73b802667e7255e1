"""Reactions with real clients on both backends: live to every member, idempotent, capped, isolated, convergent.

``chat:add-reaction`` / ``chat:remove-reaction`` (``docs/protocol.md``,
"Reactions"): every member of the session gets ``chat:reactions-updated``
with the message's whole aggregate and its version; history and REST show
the same; another workspace never hears of it.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.integration.chat_client import RELAXED_SECURITY, assert_error, client_pool, hide_message, unique
from tests.integration.reactions_support import make_world, member, newest, react, stored_reactions

UPDATED = "chat:reactions-updated"


@pytest.fixture(scope="module")
def world(module_server_factory, module_backend):
    env = {**RELAXED_SECURITY, "CHAT_REACTION_EMOJI_PER_MESSAGE": "20", "CHAT_REACTION_PER_USER_PER_MESSAGE": "10"}
    return make_world(module_server_factory(module_backend, conformance=False, **env))


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def test_reactions_reach_every_member_once_and_history_and_rest_agree(world, new):
    session = await world.session("alice", "carol")
    alice = await member(world, new, "alice", session)
    carol = await member(world, new, "carol", session)
    mod = await member(world, new, "mod", session)
    outsider = await member(world, new, "bmod", session)  # the same session id, in workspace B
    message = unique("m")
    assert (await alice.send(session, "hello", message))["ok"]
    await carol.wait_for("chat:message-received", lambda d: d["id"] == message)
    marks = {client: client.mark() for client in (alice, carol, mod, outsider)}

    ack = await react(carol, session, message, "👍")
    assert ack["ok"] and ack["reactionsVersion"] == 1, ack
    assert ack["reactions"] == [{"emoji": "👍", "count": 1, "users": [world.users["carol"]]}]
    assert (await react(alice, session, message, "👍"))["reactionsVersion"] == 2
    assert (await react(alice, session, message, "🇫🇷"))["reactionsVersion"] == 3
    # Idempotent: adding again and removing what is not there succeed and change nothing.
    again = await react(carol, session, message, "👍")
    assert again["ok"] and again["reactionsVersion"] == 3
    absent = await react(carol, session, message, "❤️", add=False)
    assert absent["ok"] and absent["reactionsVersion"] == 3
    removed = await react(alice, session, message, "🇫🇷", add=False)
    assert removed["reactionsVersion"] == 4

    final = [{"emoji": "👍", "count": 2, "users": [world.users["carol"], world.users["alice"]]}]
    assert removed["reactions"] == final
    for client in (alice, carol, mod):
        last = await client.wait_for(UPDATED, lambda d: d["reactionsVersion"] == 4, since=marks[client])
        events = client.events(UPDATED, marks[client])
        assert [e["reactionsVersion"] for e in events] == [1, 2, 3, 4], client
        assert last["reactions"] == final and last["messageId"] == message and last["userId"] == world.users["alice"]
        assert (last["emoji"], last["added"]) == ("🇫🇷", False)
    await outsider.assert_no_events(since=marks[outsider], within=0.3)

    history = await carol.call("chat:request-history", {"sessionId": session})
    shown = next(m for m in history["messages"] if m["id"] == message)
    assert (shown["reactions"], shown["reactionsVersion"]) == (final, 4)
    status, page = await world.api("carol", "GET", f"sessions/{session}/messages/")
    assert status == 200, page
    rest = next(m for m in page["results"] if m["id"] == message)
    assert (rest["reactions"], rest["reactionsVersion"]) == (final, 4)
    status, one = await world.api("alice", "GET", f"sessions/{session}/messages/{message}/")
    assert (one["reactions"], one["reactionsVersion"]) == (final, 4)
    # A socket that joins later gets them with the messages it catches up on.
    late = await member(world, new, "carol", None)
    await late.join(world.a, session)
    catch_up = await late.call("chat:request-history", {"sessionId": session, "afterSeq": 0})
    assert next(m for m in catch_up["messages"] if m["id"] == message)["reactionsVersion"] == 4


async def test_concurrent_reactions_converge_whatever_the_delivery_order(world, new):
    session = await world.session("alice", "carol")
    clients = [await member(world, new, who, session) for who in ("alice", "carol", "mod", "alice", "carol")]
    message = unique("m")
    assert (await clients[0].send(session, "react to me", message))["ok"]
    marks = {client: client.mark() for client in clients}

    palette = ["👍", "❤️", "😂", "🎉", "👀"]

    async def churn(client, seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(12):
            await react(client, session, message, rng.choice(palette), add=rng.random() < 0.6)

    await asyncio.gather(*(churn(client, seed) for seed, client in enumerate(clients)))
    history = await clients[0].call("chat:request-history", {"sessionId": session})
    truth = next(m for m in history["messages"] if m["id"] == message)
    versions = truth["reactionsVersion"]
    assert versions > 0
    rng = random.Random(7)
    for client in clients:
        events = await client.wait_for(UPDATED, lambda d: d["reactionsVersion"] == versions, since=marks[client])
        events = client.events(UPDATED, marks[client])
        # Each change has its own version, none missing, each delivered once.
        assert sorted(e["reactionsVersion"] for e in events) == list(range(1, versions + 1))
        for order in (events, events[::-1], rng.sample(events, len(events)), events + events[::-1]):
            held = newest(order)[message]
            assert held["reactions"] == truth["reactions"], (client, order)
    stored = sorted((user, emoji) for key, user, emoji in stored_reactions(world.server, world.a) if key == message)
    counted = sorted((user, r["emoji"]) for r in truth["reactions"] for user in r["users"])
    assert stored == counted


async def test_hostile_reactions_are_refused_with_their_code_and_store_nothing(world, new):
    session = await world.session("alice", "carol")
    alice = await member(world, new, "alice", session)
    bmod = await member(world, new, "bmod", session)  # workspace B, same session id
    foreign = unique("m")
    assert (await bmod.send(session, "in B", foreign))["ok"]
    mine = unique("m")
    assert (await alice.send(session, "in A", mine))["ok"]

    # A message of another workspace is answered exactly like one that does not exist.
    since = alice.mark()
    foreign_body = assert_error(await react(alice, session, foreign, "👍"), "message_not_found", alice,
                                "chat:add-reaction", since)
    missing = unique("m")
    since = alice.mark()
    missing_body = assert_error(await react(alice, session, missing, "👍"), "message_not_found", alice,
                                "chat:add-reaction", since)
    assert foreign_body == {**missing_body, "messageId": foreign}
    # B reaching for A's message by naming A's workspace: it has not joined that session.
    since = bmod.mark()
    ack = await bmod.call("chat:add-reaction", {"sessionId": session, "workspaceId": world.a, "messageId": mine,
                                                 "emoji": "👍"})
    assert_error(ack, "not_joined", bmod, "chat:add-reaction", since)

    for emoji in ("a", "lol", "<b>x</b>", "<img src=x onerror=alert(1)>", "x" * 1000, "👍" * 1000, "\ud800",
                  "👍 ", "👍👍", "", " ", "🏻", "1"):
        since = alice.mark()
        assert_error(await react(alice, session, mine, emoji), "invalid_emoji", alice, "chat:add-reaction", since)
    for emoji in (None, 5, True, ["👍"], {"e": "👍"}):
        since = alice.mark()
        assert_error(await react(alice, session, mine, emoji), "invalid_emoji", alice, "chat:add-reaction", since)
    # A hidden message takes no reaction, not even a moderator's: no broadcast may name it.
    hidden = unique("m")
    assert (await alice.send(session, "to hide", hidden))["ok"]
    hide_message(world.server, world.a, session, (await alice.call("chat:request-history", {"sessionId": session}))[
        "messages"][-1]["seq"])
    mod = await member(world, new, "mod", session)
    since = mod.mark()
    assert_error(await react(mod, session, hidden, "👍"), "message_not_found", mod, "chat:add-reaction", since)
    touched = {mine, foreign, missing, hidden}
    assert [row for row in stored_reactions(world.server, world.a) if row[0] in touched] == []
    assert [row for row in stored_reactions(world.server, world.b) if row[0] in touched] == []
    await bmod.assert_no_events([UPDATED], since=0, within=0.2)


async def test_caps_per_member_and_per_message_hold_with_their_codes(world, new):
    session = await world.session("alice", "carol")
    alice = await member(world, new, "alice", session)
    carol = await member(world, new, "carol", session)
    mod = await member(world, new, "mod", session)
    message = unique("m")
    assert (await alice.send(session, "popular", message))["ok"]
    emoji = [chr(0x1F600 + i) for i in range(30)]

    for e in emoji[:10]:
        assert (await react(alice, session, message, e))["ok"]
    since = alice.mark()
    body = assert_error(await react(alice, session, message, emoji[10]), "reaction_user_limit", alice,
                        "chat:add-reaction", since)
    assert body["limit"] == 10
    for e in emoji[10:20]:
        assert (await react(carol, session, message, e))["ok"]
    # 20 different emoji now: a 21st is refused for anyone, an existing one still counts.
    since = mod.mark()
    body = assert_error(await react(mod, session, message, emoji[20]), "reaction_emoji_limit", mod,
                        "chat:add-reaction", since)
    assert body["limit"] == 20
    ack = await react(mod, session, message, emoji[0])
    assert ack["ok"] and next(r for r in ack["reactions"] if r["emoji"] == emoji[0])["count"] == 2
    stored = [row for row in stored_reactions(world.server, world.a) if row[0] == message]
    assert len(stored) == 21 and len({row[2] for row in stored}) == 20


async def test_ten_thousand_reactions_are_stopped_by_the_rate_limit_and_the_caps(module_server_factory,
                                                                                  module_backend):
    server = module_server_factory(module_backend, conformance=False, CHAT_CONNECTION_LIMIT="50")
    world = make_world(server)
    async with client_pool() as new:
        session = await world.session("alice")
        alice = await member(world, new, "alice", session)
        message = unique("m")
        assert (await alice.send(session, "flood me", message))["ok"]
        codes: dict[str, int] = {}
        for start in range(0, 10_000, 250):
            acks = await asyncio.gather(
                *(react(alice, session, message, chr(0x1F300 + (i % 500))) for i in range(start, start + 250))
            )
            for ack in acks:
                key = "ok" if ack.get("ok") else ack["code"]
                codes[key] = codes.get(key, 0) + 1
        assert sum(codes.values()) == 10_000
        assert codes["rate_limited"] > 9_000, codes
        assert codes.get("ok", 0) <= 10, codes
        stored = stored_reactions(server, world.a)
        assert 0 < len(stored) <= 10
        assert alice.connected
