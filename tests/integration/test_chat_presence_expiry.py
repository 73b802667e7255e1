"""A server process killed with SIGKILL: its presence rows expire within the TTL.

Two servers share PostgreSQL and Redis (``services`` only: the embedded
backend has one process and nothing to share).  Clients on server 2 -- one
per transport -- are in a session with clients on server 1 -- one per
transport; server 2 is killed; each client on server 1 receives
``chat:user-left`` for each lost socket within ``CHAT_PRESENCE_TTL_S`` (plus
the housekeeping period and some slack), the rows are gone, and the
survivors' own presence is untouched.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.integration.chat_client import (
    RELAXED_SECURITY,
    USER_LEFT_FIELDS,
    assert_silent,
    client_pool,
    issue_tokens,
    presence_rows,
    unique,
)

TTL_S = 3
#: Rows are refreshed every TTL/3 and purged by a survivor's housekeeping every TTL/3.
DEADLINE_S = TTL_S + TTL_S / 3 + 2


pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def pair(module_server_factory, services_backend):
    """Two servers sharing PostgreSQL and Redis, and three users of one workspace."""
    env = {**RELAXED_SECURITY, "CHAT_PRESENCE_TTL_S": str(TTL_S)}
    one = module_server_factory(services_backend, conformance=False, **env)
    two = module_server_factory(services_backend, conformance=False, **env)
    ws, suffix = unique("ws"), unique("u")
    users = {"stay": f"stay-{suffix}", "lost": f"lost-{suffix}", "bystander": f"by-{suffix}"}
    tokens = issue_tokens(one, [(user, ws, "moderator") for user in users.values()])
    return one, two, ws, users, {name: tokens[user] for name, user in users.items()}


WORKER_CHANNEL_ERROR = "channel layer receive failed"


async def test_an_idle_worker_keeps_receiving_broadcasts(pair):
    """Nothing on the channel layer for a while (here 6 s) must not break a worker's receive loop.

    channels-redis blocks in BZPOPMIN for 5 s; a Redis client whose socket
    timeout is not longer than that fails the read exactly then, and a
    message popped at that moment is lost.
    """
    one, two, ws, users, tokens = pair
    s = unique("idle")
    async with client_pool() as new:
        here = await new("here@1").connect(one.url, tokens["stay"], ["websocket"])
        there = await new("there@2").connect(two.url, tokens["bystander"], ["websocket"])
        await here.join(ws, s)
        await there.join(ws, s)
        await here.wait_for("chat:user-joined")
        await asyncio.sleep(6)
        for server in (one, two):
            assert WORKER_CHANNEL_ERROR not in server.log_text(), server.log_tail(30)
        for i in range(3):
            sent = time.monotonic()
            await there.send(s, f"after the quiet {i}")
            await here.wait_for(
                "chat:message-received", lambda m, i=i: m["content"] == f"after the quiet {i}", timeout=2
            )
            assert time.monotonic() - sent < 0.5


async def test_presence_of_a_killed_server_expires(pair):
    one, two, ws, users, tokens = pair
    s = unique("s")
    transports = {"ws": ["websocket"], "polling": ["polling"]}

    async with client_pool() as new:
        survivors = []
        for kind, how in transports.items():
            survivor = await new(f"survivor@1/{kind}").connect(one.url, tokens["stay"], how)
            await survivor.join(ws, s)
            survivors.append(survivor)
        lost = {}
        for kind, how in transports.items():
            client = await new(f"lost@2/{kind}").connect(two.url, tokens["lost"], how)
            joined = await client.join(ws, s)
            lost[client.sid] = joined["presence"]
        bystander = await new("bystander@1").connect(one.url, tokens["bystander"], ["websocket"])
        await bystander.join(ws, unique("other"))
        for survivor in survivors:
            for sid, presence in lost.items():
                assert await survivor.wait_for("chat:user-joined", lambda p, sid=sid: p["socketId"] == sid) == presence
        assert all(len(presence_rows(one, sid)) == 1 for sid in lost)
        marks = {c: c.mark() for c in [*survivors, bystander]}

        two.kill()
        killed = time.monotonic()
        for survivor in survivors:
            for sid in lost:
                left = await survivor.wait_for(
                    "chat:user-left", lambda e, sid=sid: e["socketId"] == sid, since=marks[survivor], timeout=DEADLINE_S
                )
                assert set(left) == USER_LEFT_FIELDS
                assert left == {
                    "sessionId": s,
                    "userId": users["lost"],
                    "socketId": sid,
                    "timestamp": left["timestamp"],
                }
        elapsed = time.monotonic() - killed
        assert elapsed <= DEADLINE_S, elapsed
        assert all(presence_rows(one, sid) == [] for sid in lost)

        # The survivors' own rows live on (their server keeps refreshing them), and nothing else happened.
        await assert_silent(
            [*survivors, bystander], {c: c.mark() for c in [*survivors, bystander]}, within=TTL_S / 3 + 0.5
        )
        for survivor in survivors:
            assert survivor.names(marks[survivor]) == ["chat:user-left", "chat:user-left"]
            assert len(presence_rows(one, survivor.sid)) == 1
            assert survivor.connected
        assert bystander.names(marks[bystander]) == []
        assert len(presence_rows(one, bystander.sid)) == 1
