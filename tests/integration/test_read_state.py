"""Read state with real clients on both backends: pointers only move forward, every member and device hears it.

``chat:mark-read`` (``docs/protocol.md``, "Read state"): the session gets
``chat:read-updated`` (read receipts), so do the member's other sockets in
the workspace; ``chat:join-session-success`` and the REST session list carry
the member's pointer and unread count.
"""

from __future__ import annotations

import pytest

from tests.integration.chat_client import RELAXED_SECURITY, assert_error, client_pool, unique
from tests.integration.reactions_support import make_world, member

READ = "chat:read-updated"


@pytest.fixture(scope="module")
def world(module_server_factory, module_backend):
    return make_world(module_server_factory(module_backend, conformance=False, **RELAXED_SECURITY))


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def mark(client, session: str, seq, **extra):
    return await client.call("chat:mark-read", {"sessionId": session, "seq": seq, **extra})


async def unread_list(world, who: str, **params) -> dict[str, tuple[int, int]]:
    status, page = await world.api(who, "GET", "sessions/", **params)
    assert status == 200, page
    return {s["id"]: (s["lastReadSeq"], s["unreadCount"]) for s in page["results"]}


async def test_mark_read_moves_forward_only_and_every_member_and_device_hears_it(world, new):
    session, other = await world.session("alice", "carol"), await world.session("carol")
    alice = await member(world, new, "alice", session)
    carol = await member(world, new, "carol", session)
    carol_phone = await member(world, new, "carol", other)  # carol's other device, in another session
    outsider = await member(world, new, "bmod", session)  # workspace B, same session id
    for n in range(3):
        assert (await alice.send(session, f"m{n}"))["ok"]
    joined = await member(world, new, "carol", session)
    success = joined.events("chat:join-session-success")[0]
    assert (success["lastReadSeq"], success["unreadCount"]) == (0, 3)
    assert (await unread_list(world, "carol"))[session] == (0, 3)
    assert session in await unread_list(world, "carol", unread="true")
    # The sender has nothing unread: your own messages never are.
    assert (await unread_list(world, "alice"))[session] == (0, 0)
    assert session not in await unread_list(world, "alice", unread="true")

    marks = {c: c.mark() for c in (alice, carol, carol_phone, joined, outsider)}
    ack = await mark(carol, session, 2)
    assert ack == {"ok": True, "sessionId": session, "lastReadSeq": 2, "unreadCount": 1}
    for client in (alice, carol, carol_phone, joined):
        got = await client.wait_for(READ, since=marks[client])
        assert got["userId"] == world.users["carol"] and (got["sessionId"], got["seq"]) == (session, 2)
        assert (got["workspaceId"], got["unreadCount"]) == (world.a, 1)
    # The marking socket hears it once (in the session); carol's other socket there may hear it twice.
    await alice.assert_no_events(["chat:nothing"], within=0.2)
    assert len(carol.events(READ, marks[carol])) == 1 and len(alice.events(READ, marks[alice])) == 1
    # Never back, and a repeat changes (and announces) nothing.
    marks = {c: c.mark() for c in (alice, carol, carol_phone)}
    assert (await mark(carol, session, 1))["lastReadSeq"] == 2
    assert (await mark(carol, session, 2))["lastReadSeq"] == 2
    # Beyond the newest message: clamped to it.
    assert (await mark(carol, session, 10**9))["lastReadSeq"] == 3
    for client in (alice, carol, carol_phone):
        got = await client.wait_for(READ, lambda d: d["seq"] == 3, since=marks[client])
        assert [e["seq"] for e in client.events(READ, marks[client]) if e["sessionId"] == session][-1] == 3
        assert got["unreadCount"] == 0
        assert all(e["seq"] in (3,) for e in client.events(READ, marks[client]))
    await outsider.assert_no_events([READ], since=0, within=0.3)

    # The pointer survives: a new socket and the REST list see it (a reload of the widget).
    assert (await unread_list(world, "carol"))[session] == (3, 0)
    assert session not in await unread_list(world, "carol", unread="true")
    assert (await alice.send(session, "one more"))["ok"]
    assert (await unread_list(world, "carol", unread="true"))[session] == (3, 1)
    again = await member(world, new, "carol", session)
    success = again.events("chat:join-session-success")[0]
    assert (success["lastReadSeq"], success["unreadCount"]) == (3, 1)


async def test_mark_read_refuses_bad_seqs_and_other_workspaces_sessions(world, new):
    session = await world.session("alice")
    alice = await member(world, new, "alice", session)
    bmod = await member(world, new, "bmod", unique("own"))
    for seq in (-1, "3", 1.5, True, None, 2**60):
        since = alice.mark()
        assert_error(await mark(alice, session, seq), "invalid_payload", alice, "chat:mark-read", since)
    # B's moderator names A's session (with or without A's workspace): it has not joined it, like a missing one.
    for extra in ({}, {"workspaceId": world.a}):
        since = bmod.mark()
        body = assert_error(await mark(bmod, session, 1, **extra), "not_joined", bmod, "chat:mark-read", since)
        since = bmod.mark()
        missing = assert_error(await mark(bmod, unique("nope"), 1, **extra), "not_joined", bmod, "chat:mark-read",
                               since)
        assert {**body, "sessionId": "x"} == {**missing, "sessionId": "x"}
    assert (await unread_list(world, "alice"))[session] == (0, 0)
    await alice.assert_no_events([READ], since=0, within=0.2)
