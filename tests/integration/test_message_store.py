"""The writer's pipelined PostgreSQL store, as production runs it: uvicorn, one worker, PostgreSQL.

Without ``REDIS_URL`` the writer stores the next batch while announcing the
previous one, on its own connection (``chat.services.pg_batches``):

- a crowd sending at once gets ``seq`` 1..N with no gap, and every member
  receives every other member's messages once, in ``seq`` order;
- a key the writer has never seen but the database has (stored through
  another worker) comes back as a duplicate with its original ``seq``, and
  the messages batched with it are stored normally;
- when the database ends the writer's connection, the batch in flight fails
  as retryable and nothing of it is stored; the retry and everything after
  it are stored on a new connection, with no gap.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.chat_client import (
    RELAXED_SECURITY,
    ChatClient,
    assert_error,
    client_pool,
    db_rows,
    issue_tokens,
    stored_messages,
    unique,
    while_connected,
)
from tests.integration.clients import until

pytestmark = pytest.mark.services

CLIENTS = 8
PER_CLIENT = 30
TOTAL = CLIENTS * PER_CLIENT


@pytest.fixture
def production(services_backend, server_factory):
    """A server as deployed on one machine: uvicorn with the corked protocol, PostgreSQL, no Redis."""

    def start():
        return server_factory(services_backend, conformance=False, server="uvicorn", REDIS_URL=None, **RELAXED_SECURITY)

    return start


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def in_one_session(new, places: dict[str, tuple]) -> tuple[str, str, dict[str, ChatClient]]:
    """Clients named by ``places`` (name -> (server, transport)) joined to a new session: (workspace, session, clients)."""
    ws, s, suffix = unique("ws"), unique("s"), unique("u")
    first_server = next(iter(places.values()))[0]
    tokens = issue_tokens(first_server, [(f"{name}-{suffix}", ws, "moderator") for name in places])
    clients = {}
    for name, (server, transport) in places.items():
        clients[name] = await new(name).connect(server.url, tokens[f"{name}-{suffix}"], [transport])
        await clients[name].join(ws, s)
    return ws, s, clients


async def test_a_crowd_sending_at_once_gets_gap_free_seq_and_ordered_delivery(production, new):
    server = production()
    ws, s, suffix = unique("ws"), unique("crowd"), unique("u")
    users = [f"user{i}-{suffix}" for i in range(CLIENTS)]
    tokens = issue_tokens(server, [(user, ws, "moderator") for user in users])
    clients: list[ChatClient] = [new(user) for user in users]
    await asyncio.gather(*(c.connect(server.url, tokens[u], ["websocket"]) for c, u in zip(clients, users)))
    for client in clients:
        await client.join(ws, s)
    await clients[0].wait_for("chat:user-joined", count=CLIENTS - 1, timeout=15)
    marks = {c: c.mark() for c in clients}
    ids = {c: [f"{i}-{n}-{unique('m')}" for n in range(PER_CLIENT)] for i, c in enumerate(clients)}

    async def burst(client: ChatClient) -> list[dict]:
        return await asyncio.gather(*(client.send(s, f"#{mid}", mid, timeout=30) for mid in ids[client]))

    acks = [a for per in await while_connected(clients, asyncio.gather(*map(burst, clients)), 60) for a in per]
    assert all(a["ok"] is True and a["duplicate"] is False for a in acks), [a for a in acks if not a.get("ok")]
    seq_of = {a["messageId"]: a["seq"] for a in acks}
    assert sorted(seq_of.values()) == list(range(1, TOTAL + 1))
    assert {key: seq for seq, key, _ in stored_messages(server, ws, s)} == seq_of

    for client in clients:
        await client.wait_for("chat:message-received", count=TOTAL - PER_CLIENT, timeout=30, since=marks[client])
    await asyncio.sleep(0.3)
    for client in clients:
        seqs = [m["seq"] for m in client.events("chat:message-received", marks[client])]
        assert seqs == sorted(seq_of[mid] for c in clients if c is not client for mid in ids[c]), client


async def test_a_key_only_the_database_knows_is_a_duplicate_and_its_batch_is_stored(production, new):
    first, second = production(), production()  # two writers, two memories, one database
    ws, s, clients = await in_one_session(new, {"ann": (first, "websocket"), "ben": (second, "websocket")})
    ann, ben = clients["ann"], clients["ben"]
    original = await ann.send(s, "stored through the first worker", "taken-id")
    assert original["ok"] is True and original["seq"] == 1

    # The resend and fresh messages, sent together so that they tend to share a batch.
    fresh = [unique("fresh") for _ in range(6)]
    acks = await asyncio.gather(
        ben.send(s, "a resend", "taken-id"), *(ben.send(s, f"fresh {mid}", mid) for mid in fresh)
    )
    resend, rest = acks[0], acks[1:]
    assert resend["ok"] is True and resend["duplicate"] is True and resend["seq"] == 1
    assert all(a["ok"] is True and a["duplicate"] is False for a in rest), rest
    assert sorted(a["seq"] for a in rest) == list(range(2, 8))
    rows = stored_messages(first, ws, s)
    assert [seq for seq, _, _ in rows] == list(range(1, 8))
    assert [(key, content) for seq, key, content in rows if seq == 1] == [
        ("taken-id", "stored through the first worker")
    ]
    assert (await ben.send(s, "next"))["seq"] == 8


async def test_a_lost_connection_fails_its_batch_retryably_and_the_next_one_reconnects(production, new):
    server = production()
    ws, s, clients = await in_one_session(new, {"ann": (server, "websocket"), "ben": (server, "polling")})
    ann, ben = clients["ann"], clients["ben"]
    assert (await ann.send(s, "one"))["seq"] == 1
    await ben.wait_for("chat:message-received", lambda m: m["seq"] == 1)

    ended = db_rows(
        server,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'chat message writer' AND datname = current_database()",
    )
    assert ended == [(True,)], ended
    mark, since = ben.mark(), ann.mark()
    ack = await ann.send(s, "two", "retry-me")
    body = assert_error(ack, "internal", ann, "chat:send-message", since)
    assert body["retryable"] is True and body["messageId"] == "retry-me"
    assert stored_messages(server, ws, s) == [(1, stored_messages(server, ws, s)[0][1], "one")]

    retry = await ann.send(s, "two", "retry-me")
    assert retry["ok"] is True and retry["seq"] == 2 and retry["duplicate"] is False
    assert (await ann.send(s, "three"))["seq"] == 3
    await ben.wait_for("chat:message-received", lambda m: m["seq"] == 3, since=mark)
    assert [m["content"] for m in ben.events("chat:message-received", mark)] == ["two", "three"]
    assert [content for _, _, content in stored_messages(server, ws, s)] == ["one", "two", "three"]
    assert await until(lambda: "database connection failed" in server.log_text(), timeout=5)
    assert server.log_text().count("the message writer's database connection failed") == 1


async def test_an_id_sent_twice_at_once_is_stored_once(production, new):
    server = production()
    ws, s, clients = await in_one_session(new, {"ann": (server, "websocket")})
    ann = clients["ann"]
    # Sent together, the two copies and a third message tend to share a batch.
    acks = await asyncio.gather(ann.send(s, "twice", "same-id"), ann.send(s, "twice", "same-id"), ann.send(s, "other"))
    assert all(a["ok"] is True for a in acks), acks
    assert sorted(a["duplicate"] for a in acks[:2]) == [False, True]
    assert acks[0]["seq"] == acks[1]["seq"]
    assert sorted({acks[0]["seq"], acks[2]["seq"]}) == [1, 2]
    assert [key for _, key, _ in stored_messages(server, ws, s)].count("same-id") == 1
    assert (await ann.send(s, "next"))["seq"] == 3
