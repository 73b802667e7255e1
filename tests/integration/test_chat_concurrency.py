"""20 clients on one session each send 25 messages at once.

On ``embedded`` one server (SQLite, in-memory layer); on ``services`` two
server processes sharing PostgreSQL and Redis, the clients split across
them.  Half the clients use WebSocket, half long-polling, on each server.

- the stored ``seq`` values are exactly 1..500, one per message id;
- each client receives every other client's messages exactly once, in
  ``seq`` order, and none of its own;
- a resend of every id answers ``duplicate: true`` with the original
  ``seq``, adds no row and reaches nobody.
"""

from __future__ import annotations

import asyncio
import time

from tests.integration.chat_client import (
    RELAXED_SECURITY,
    ChatClient,
    client_pool,
    issue_tokens,
    stored_messages,
    unique,
    while_connected,
)

CLIENTS = 20
PER_CLIENT = 25
TOTAL = CLIENTS * PER_CLIENT


async def test_twenty_clients_send_at_once(backend, server_factory):
    servers = [server_factory(backend, conformance=False, **RELAXED_SECURITY)]
    if backend.name == "services":
        servers.append(server_factory(backend, conformance=False, **RELAXED_SECURITY))
    ws, s, suffix = unique("ws"), unique("crowd"), unique("u")
    users = [f"user{i:02d}-{suffix}" for i in range(CLIENTS)]
    tokens = issue_tokens(servers[0], [(user, ws, "moderator") for user in users])

    async with client_pool() as new:
        clients: list[ChatClient] = []
        plan = []
        for i, user in enumerate(users):
            server = servers[i % len(servers)]
            transports = ["websocket"] if (i // len(servers)) % 2 == 0 else ["polling"]
            clients.append(new(f"{user}@{server.port}/{transports[0]}"))
            plan.append((server.url, tokens[user], transports))
        await asyncio.gather(*(c.connect(*how) for c, how in zip(clients, plan)))
        await clients[0].join(ws, s)  # the creator; the others are moderators
        await asyncio.gather(*(c.join(ws, s) for c in clients[1:]))
        # Everyone is in the room (user-joined for every later joiner reached the first client).
        await clients[0].wait_for("chat:user-joined", count=CLIENTS - 1, timeout=15)
        marks = {c: c.mark() for c in clients}

        ids = {c: [f"c{i:02d}-{n:02d}-{unique('m')}" for n in range(PER_CLIENT)] for i, c in enumerate(clients)}
        owner = {mid: c for c in clients for mid in ids[c]}

        async def burst(client: ChatClient) -> list[dict]:
            return await asyncio.gather(
                *(client.send(s, f"from {client.label} #{mid}", mid, timeout=60) for mid in ids[client])
            )

        started = time.monotonic()
        results = await while_connected(clients, asyncio.gather(*(burst(c) for c in clients)), timeout=90)
        print(f"{TOTAL} messages stored and confirmed in {time.monotonic() - started:.1f}s")
        acks = [ack for per_client in results for ack in per_client]
        assert all(ack["ok"] is True and ack["duplicate"] is False for ack in acks), [
            a for a in acks if not a.get("ok")
        ]
        seq_of = {ack["messageId"]: ack["seq"] for ack in acks}
        assert sorted(seq_of.values()) == list(range(1, TOTAL + 1))

        # Stored: exactly 1..500, each under the id its ack named.
        rows = stored_messages(servers[0], ws, s)
        assert [seq for seq, _, _ in rows] == list(range(1, TOTAL + 1))
        assert {key: seq for seq, key, _ in rows} == seq_of

        # Delivered: every other client's messages, exactly once, in seq order, none of its own.
        await while_connected(
            clients,
            asyncio.gather(
                *(
                    c.wait_for("chat:message-received", count=TOTAL - PER_CLIENT, timeout=60, since=marks[c])
                    for c in clients
                )
            ),
            timeout=60,
        )
        await asyncio.sleep(0.3)
        out_of_order: dict[str, tuple[int, list]] = {}
        for client in clients:
            received = client.events("chat:message-received", marks[client])
            seqs = [m["seq"] for m in received]
            expected = sorted(seq_of[mid] for mid in seq_of if owner[mid] is not client)
            assert sorted(seqs) == expected, f"{client}: missing {set(expected) - set(seqs)}, extra/dupes present"
            assert len(seqs) == len(set(seqs)) == TOTAL - PER_CLIENT
            assert all(seq_of[m["id"]] == m["seq"] and owner[m["id"]] is not client for m in received)
            inversions = [(a, b) for a, b in zip(seqs, seqs[1:]) if b < a]
            if inversions:
                out_of_order[client.label] = (len(inversions), inversions[:5])
            sent = client.events("chat:message-sent", marks[client])
            assert sorted(e["messageId"] for e in sent) == sorted(ids[client])
            assert set(client.names(marks[client])) - {"chat:user-joined"} == {
                "chat:message-received",
                "chat:message-sent",
            }

        # A resend of every id adds nothing and reaches nobody.
        marks = {c: c.mark() for c in clients}
        results = await while_connected(clients, asyncio.gather(*(burst(c) for c in clients)), timeout=90)
        again = [ack for per_client in results for ack in per_client]
        assert all(ack["ok"] is True and ack["duplicate"] is True for ack in again), [
            a for a in again if not a.get("duplicate")
        ]
        assert {ack["messageId"]: ack["seq"] for ack in again} == seq_of
        await asyncio.sleep(0.5)
        for client in clients:
            assert client.names(marks[client]) == ["chat:message-sent"] * PER_CLIENT, client.stream[marks[client] :][:5]
        assert len(stored_messages(servers[0], ws, s)) == TOTAL

        # In seq order (checked last, so that everything above is checked either way).
        assert not out_of_order, (
            f"{len(out_of_order)} of {CLIENTS} clients got messages out of seq order: {out_of_order}"
        )
