"""Edits and deletions across two workers sharing PostgreSQL and Redis (issue #22).

Members on different workers see every change live with the same versions;
two sockets of the author on different workers editing from the same version
at the same moment store exactly one edit (the row lock and the version
compare-and-set), the other is told ``version_conflict``; every client,
applying what it received by version, ends where the stored history is.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.integration.chat_client import RELAXED_SECURITY, client_pool, db_rows, issue_tokens, unique

pytestmark = pytest.mark.services


@pytest.fixture
def workers(services_backend, server_factory):
    env = {**RELAXED_SECURITY, "CHAT_API_RATE_LIMIT": ""}
    return [server_factory(services_backend, conformance=False, server="uvicorn", **env) for _ in range(2)]


async def rest(server, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.request(
            method, f"{server.url}/api/v1/{path}", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            return response.status, await response.json()


def converge(client, message: dict[str, Any]) -> dict[str, Any]:
    """What a client shows after applying its change events by version to ``message``."""
    state = dict(message)
    changes = [(e["version"], "updated", e) for e in client.events("chat:message-updated")]
    changes += [(e["version"], "deleted", e) for e in client.events("chat:message-deleted")]
    for version, kind, event in reversed(changes):  # the worst order: newest first
        if event["messageId"] != state["id"] or version <= state["version"]:
            continue
        state = event["message"] if kind == "updated" else {**state, "version": version, "deleted": True, "content": ""}
    return state


async def test_edits_and_deletes_cross_workers_and_converge(workers):
    first, second = workers
    ws, other_ws, session = unique("ws"), unique("ws"), unique("s")
    tokens = issue_tokens(
        first, [("alice", ws, "member"), ("carol", ws, "member"), ("mod", ws, "moderator"), ("eve", other_ws, "member")]
    )
    status, body = await rest(first, tokens["alice"], "POST", f"workspaces/{ws}/sessions/", {"id": session})
    assert status == 201, body
    status, body = await rest(
        first, tokens["alice"], "POST", f"workspaces/{ws}/sessions/{session}/share/", {"username": "carol"}
    )
    assert status == 200, body

    async with client_pool() as new:
        alice1 = await new("alice@1").connect(first.url, tokens["alice"], ["websocket"])
        alice2 = await new("alice@2").connect(second.url, tokens["alice"], ["polling"])
        carol = await new("carol@2").connect(second.url, tokens["carol"], ["websocket"])
        eve = await new("eve@2").connect(second.url, tokens["eve"], ["websocket"])
        for client in (alice1, alice2, carol):
            await client.join(ws, session)
        await eve.join(other_ws, session)

        sent = await alice1.send(session, "first words", message_id="m")
        assert sent["ok"] is True
        original = await carol.wait_for("chat:message-received", lambda m: m["id"] == "m")

        # The same author on two workers, editing version 1 at the same moment: one edit is stored.
        acks = await asyncio.gather(
            *(
                client.call(
                    "chat:edit-message", {"sessionId": session, "messageId": "m", "version": 1, "content": text}
                )
                for client, text in ((alice1, "from worker one"), (alice2, "from worker two"))
            )
        )
        assert sorted(ack["ok"] for ack in acks) == [False, True], acks
        [won] = [ack for ack in acks if ack["ok"]]
        [lost] = [ack for ack in acks if not ack["ok"]]
        assert won["version"] == 2 and (lost["code"], lost["currentVersion"]) == ("version_conflict", 2)
        rows = db_rows(
            first,
            "SELECT v.version, v.content FROM chat_messageversion v JOIN chat_chatmessage m ON m.id = v.message_id "
            "JOIN chat_chatsession s ON s.id = m.session_id JOIN chat_workspace w ON w.id = s.workspace_id "
            "WHERE w.slug = ? AND s.key = ? ORDER BY v.version",
            (ws, session),
        )
        assert rows == [(1, "first words")]

        again = await alice2.call(
            "chat:edit-message", {"sessionId": session, "messageId": "m", "version": 2, "content": "third"}
        )
        assert again["version"] == 3, again
        status, body = await rest(second, tokens["mod"], "DELETE", f"workspaces/{ws}/sessions/{session}/messages/m/")
        assert status == 200 and body["version"] == 4 and body["deleted"] is True

        for client in (alice1, alice2, carol):
            await client.wait_for("chat:message-deleted", lambda e: e["version"] == 4, timeout=10)
            await client.wait_for("chat:message-updated", lambda e: e["version"] == 3, timeout=10)
            assert sorted(e["version"] for e in client.events("chat:message-updated")) == [2, 3]
        history = (await carol.call("chat:request-history", {"sessionId": session}))["messages"]
        assert (history[0]["version"], history[0]["deleted"], history[0]["content"]) == (4, True, "")
        for client in (alice1, alice2, carol):
            shown = converge(client, original)
            assert (shown["version"], shown["deleted"], shown["content"]) == (4, True, ""), client
        assert eve.events("chat:message-updated") == [] and eve.events("chat:message-deleted") == []
        assert eve.events("chat:message-received") == []
