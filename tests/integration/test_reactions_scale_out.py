"""Reactions and read state across two workers sharing PostgreSQL and Redis.

Members on different workers react and mark read at the same time; each
sees every change live, the aggregates converge by version, and history on
either worker agrees with the last broadcast.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.chat_client import RELAXED_SECURITY, client_pool, unique
from tests.integration.reactions_support import make_world, member, newest, react

pytestmark = pytest.mark.services


async def test_reactions_and_read_pointers_cross_workers(services_backend, server_factory):
    first = server_factory(services_backend, conformance=False, server="uvicorn", **RELAXED_SECURITY)
    second = server_factory(services_backend, conformance=False, server="uvicorn", **RELAXED_SECURITY)
    world = make_world(first)
    session = await world.session("alice", "carol")
    async with client_pool() as new:
        alice = await member(world, new, "alice", session, first.url)
        carol = await member(world, new, "carol", session, second.url)
        mod = await member(world, new, "mod", session, second.url)
        carol_phone = await member(world, new, "carol", None, first.url)
        await carol_phone.join(world.a, await world.session("carol"))
        outsider = await member(world, new, "bmod", session, first.url)
        messages = [unique("m") for _ in range(3)]
        for key in messages:
            assert (await alice.send(session, "x", key))["ok"]
        marks = {c: c.mark() for c in (alice, carol, mod, carol_phone, outsider)}

        async def churn(client, emoji: list[str]) -> None:
            for key in messages:
                for e in emoji:
                    assert (await react(client, session, key, e))["ok"]
                assert (await react(client, session, key, emoji[0], add=False))["ok"]

        await asyncio.gather(churn(alice, ["👍", "🎉"]), churn(carol, ["👍", "👀"]), churn(mod, ["🎉", "👍"]))
        ack = await carol.call("chat:mark-read", {"sessionId": session, "seq": 3})
        assert ack["ok"] and ack["lastReadSeq"] == 3

        history = {}
        for url, who in ((first.url, "alice"), (second.url, "mod")):
            reader = await member(world, new, who, session, url)
            page = await reader.call("chat:request-history", {"sessionId": session})
            history[url] = {m["id"]: (m["reactionsVersion"], m["reactions"]) for m in page["messages"]}
        assert history[first.url] == history[second.url]
        for key in messages:
            assert history[first.url][key][0] == 9  # three members, three changes each

        for client in (alice, carol, mod):
            for key in messages:
                await client.wait_for("chat:reactions-updated",
                                      lambda d, key=key: d["messageId"] == key and d["reactionsVersion"] == 9,
                                      since=marks[client], timeout=10)
            held = newest(client.events("chat:reactions-updated", marks[client]))
            assert {key: (e["reactionsVersion"], e["reactions"]) for key, e in held.items()} == history[first.url]
        for client in (alice, carol, mod, carol_phone):
            got = await client.wait_for("chat:read-updated", since=marks[client], timeout=10)
            assert (got["userId"], got["seq"]) == (world.users["carol"], 3)
        await outsider.assert_no_events(["chat:reactions-updated", "chat:read-updated"], since=0, within=0.3)
