"""Helpers for the reaction and read-state tests: a workspace of members, REST calls, stored rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.conftest import ServerProcess
from tests.integration.chat_client import ChatClient, db_rows, issue_tokens, unique

API = "/api/v1"

#: alice creates sessions and shares them with carol; mod moderates A; bmod is B's, in a session of the same id.
ROLES = {"alice": ("a", "member"), "carol": ("a", "member"), "mod": ("a", "moderator"), "bmod": ("b", "moderator")}


@dataclass
class World:
    server: ServerProcess
    a: str
    b: str
    users: dict[str, str]
    tokens: dict[str, str]

    def slug(self, who: str) -> str:
        return self.a if ROLES[who][0] == "a" else self.b

    async def api(self, who: str, method: str, path: str, body: Any = None, **params: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        url = f"{self.server.url}{API}/workspaces/{self.slug(who)}/{path}"
        async with aiohttp.ClientSession() as http:
            async with http.request(method, url, json=body, params=params or None, headers=headers) as response:
                return response.status, await response.json()

    async def session(self, owner: str = "alice", *sharees: str) -> str:
        key = unique("s")
        status, body = await self.api(owner, "POST", "sessions/", {"id": key, "title": "t"})
        assert status == 201, body
        for name in sharees:
            status, body = await self.api(owner, "POST", f"sessions/{key}/share/", {"username": self.users[name]})
            assert status == 200, body
        return key


def make_world(server: ServerProcess) -> World:
    a, b, suffix = unique("ra"), unique("rb"), unique("u")
    users = {name: f"{name}-{suffix}" for name in ROLES}
    slugs = {"a": a, "b": b}
    tokens = issue_tokens(server, [(users[name], slugs[ws], role) for name, (ws, role) in ROLES.items()])
    return World(server, a, b, users, {name: tokens[users[name]] for name in users})


async def member(world: World, new: Any, who: str, session: str | None, url: str | None = None) -> ChatClient:
    client = await new(who).connect(url or world.server.url, world.tokens[who], ["websocket"])
    if session is not None:
        await client.join(world.slug(who), session)
    return client


async def react(client: ChatClient, session: str, message: str, emoji: Any, *, add: bool = True) -> Any:
    event = "chat:add-reaction" if add else "chat:remove-reaction"
    return await client.call(event, {"sessionId": session, "messageId": message, "emoji": emoji})


def newest(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a client holds after applying ``events`` in the given order: per message, the highest version."""
    held: dict[str, dict[str, Any]] = {}
    for event in events:
        current = held.get(event["messageId"])
        if current is None or event["reactionsVersion"] > current["reactionsVersion"]:
            held[event["messageId"]] = event
    return held


def stored_reactions(server: ServerProcess, workspace: str) -> list[tuple[str, str, str]]:
    """``(message key, username, emoji)`` of every stored reaction in a workspace."""
    return db_rows(
        server,
        "SELECT m.key, u.username, r.emoji FROM chat_reaction r JOIN chat_chatmessage m ON m.id = r.message_id "
        "JOIN auth_user u ON u.id = r.user_id JOIN chat_chatsession s ON s.id = m.session_id "
        "JOIN chat_workspace w ON w.id = s.workspace_id WHERE w.slug = ? ORDER BY r.id",
        (workspace,),
    )
