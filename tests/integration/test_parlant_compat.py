"""The Parlant-compatible API (``/parlant/``) against real daphne servers, with real HTTP and Socket.IO clients.

Most tests run on both backends (``embedded``: SQLite and the in-memory
layer; ``services``: PostgreSQL and Redis).  The multi-worker tests need
what two processes share (``services``): a long-poll, a stream or a
per-event stream on one worker must see what happens on the other.

What the shapes must hold is what ``parlant-client`` 0.10 (inside
``parlant-chat-react`` 1.0.11) parses: ``Event`` needs ``id, source, kind,
offset, creation_utc, correlation_id, data, deleted``; ``Session`` needs
``id, agent_id, customer_id, creation_utc, consumption_offsets``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator

import aiohttp
import pytest

from chat.agents.backends.echo import echo_chunks
from tests.conftest import ServerProcess
from tests.integration.chat_client import (
    RELAXED_SECURITY,
    client_pool,
    close_session,
    db_execute,
    db_rows,
    hide_message,
    issue_tokens,
    stored_messages,
    unique,
)

ALLOWED_ORIGIN = "http://shop.example"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
EVENT_FIELDS = {"id", "source", "kind", "offset", "creation_utc", "correlation_id", "trace_id", "data", "metadata"}
ROLES = {"alice": "member", "carol": "member", "mod": "moderator"}


def add_agent(server: ServerProcess, workspace: str, key: str, config: dict[str, Any], name: str = "Echo") -> None:
    db_execute(
        server,
        "INSERT INTO chat_agent (workspace_id, key, name, backend, config, created_at) "
        "SELECT id, ?, ?, 'echo', ?, CURRENT_TIMESTAMP FROM chat_workspace WHERE slug = ?",
        (key, name, json.dumps(config), workspace),
    )


@dataclass
class World:
    server: ServerProcess
    ws: str
    other_ws: str
    tokens: dict[str, str]
    users: dict[str, str]

    def base(self, who: str, workspace: str | None = None) -> str:
        """The URL a widget gets as its ``server``: the token in the path."""
        return f"{self.server.url}/parlant/{workspace or self.ws}/t/{self.tokens[who]}"


def make_world(server: ServerProcess) -> World:
    ws, other, suffix = unique("pw"), unique("px"), unique("u")
    users = {name: f"{name}-{suffix}" for name in [*ROLES, "bob"]}
    specs = [(users[name], ws, role) for name, role in ROLES.items()] + [(users["bob"], other, "member")]
    tokens = issue_tokens(server, specs)
    add_agent(server, ws, "echo", {"delay_ms": 20})
    add_agent(server, ws, "slow", {"delay_ms": 250}, name="Slow echo")
    add_agent(server, other, "echo", {"delay_ms": 20})
    return World(server, ws, other, {name: tokens[users[name]] for name in users}, users)


SERVER_ENV = {**RELAXED_SECURITY, "CHAT_API_RATE_LIMIT": "100000/m", "CHAT_ALLOWED_ORIGINS": ALLOWED_ORIGIN}


@pytest.fixture(scope="module")
def world(module_server_factory, module_backend) -> World:
    return make_world(module_server_factory(module_backend, conformance=False, **SERVER_ENV))


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def new():
    async with client_pool() as make:
        yield make


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, **kwargs: Any
) -> tuple[int, Any, Any]:
    async with http.request(method, url, json=body, **kwargs) as response:
        text = await response.text()
        return response.status, (json.loads(text) if text else None), response.headers


async def new_session(http: aiohttp.ClientSession, world: World, who: str = "alice", agent: str = "echo") -> dict:
    status, body, _ = await call(http, "POST", f"{world.base(who)}/sessions", {"agent_id": agent, "title": "t"})
    assert status == 201, body
    return body


async def post_message(http, world: World, session: str, text: str, who: str = "alice", **extra: Any) -> dict:
    body = {"kind": "message", "source": "customer", "message": text, **extra}
    status, event, _ = await call(http, "POST", f"{world.base(who)}/sessions/{session}/events", body)
    assert status == 201, event
    return event


async def events_until(http, world: World, session: str, done: Any, who: str = "alice", timeout: float = 20.0) -> list:
    """Long-poll from offset 0 on, as the widget does, until ``done(events)``; every event once, in order."""
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    while not done(events):
        assert time.monotonic() < deadline, events
        offset = events[-1]["offset"] + 1 if events else 0
        url = f"{world.base(who)}/sessions/{session}/events?min_offset={offset}&wait_for_data=5"
        status, batch, _ = await call(http, "GET", url)
        if status == 504:
            continue
        assert status == 200, batch
        assert batch and all(e["offset"] >= offset for e in batch), batch
        events += batch
    return events


def finished(events: list[dict]) -> bool:
    return any(e["kind"] == "status" and e["data"]["status"] in ("ready", "error") for e in events)


async def sse_frames(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The stream's frames (the text between blank lines), as they arrive."""
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            yield frame.decode()


def parse_frame(frame: str) -> tuple[int | None, dict | None]:
    fields = dict(line.split(": ", 1) for line in frame.split("\n") if not line.startswith(":"))
    if not fields:
        return None, None  # a comment (keep-alive)
    return int(fields["id"]), json.loads(fields["data"])


def assert_event(event: dict) -> None:
    assert EVENT_FIELDS <= set(event) and event["deleted"] in (True, False), event
    assert ISO.match(event["creation_utc"]) and isinstance(event["offset"], int), event
    assert event["kind"] in ("message", "status", "tool") and event["correlation_id"] == event["trace_id"], event


# --- agents and sessions ---------------------------------------------------------------------------------------


async def test_agent_and_session_endpoints(world, http):
    status, agent, _ = await call(http, "GET", f"{world.base('alice')}/agents/echo")
    assert status == 200
    assert agent["id"] == "echo" and agent["name"] == "Echo" and agent["message_output_mode"] == "stream"
    assert ISO.match(agent["creation_utc"])
    status, body, _ = await call(http, "GET", f"{world.base('alice')}/agents/nope")
    assert (status, body["code"]) == (404, "agent_not_found")

    # What the widget sends: ?allow_greeting=false and {agent_id, title}.
    url = f"{world.base('alice')}/sessions?allow_greeting=false"
    status, session, _ = await call(http, "POST", url, {"agent_id": "echo", "title": "New Session - 2025"})
    assert status == 201, session
    assert session["agent_id"] == "echo" and session["customer_id"] == world.users["alice"]
    assert session["title"] == "New Session - 2025" and session["consumption_offsets"] == {"client": 0}
    assert ISO.match(session["creation_utc"]) and session["mode"] == "auto"
    status, again, _ = await call(http, "GET", f"{world.base('alice')}/sessions/{session['id']}")
    assert (status, again) == (200, session)
    # It is one of our sessions: the REST API and the database know it.
    rows = db_rows(world.server, "SELECT title FROM chat_chatsession WHERE key = ?", (session["id"],))
    assert rows == [("New Session - 2025",)]

    status, body, _ = await call(http, "POST", f"{world.base('alice')}/sessions", {"agent_id": "nope"})
    assert (status, body["code"]) == (404, "agent_not_found")
    status, body, _ = await call(http, "POST", f"{world.base('alice')}/sessions", {"title": "no agent"})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "agent_id"] and body["detail"][0]["type"] == "missing"
    status, body, _ = await call(http, "POST", f"{world.base('alice')}/sessions", {"agent_id": "echo", "title": 5})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "title"], body
    status, body, _ = await call(http, "GET", f"{world.base('alice')}/sessions/no-such-session")
    assert (status, body["code"]) == (404, "session_not_found")
    status, body, _ = await call(http, "GET", f"{world.base('alice')}/nothing-here")
    assert (status, body) == (404, {"detail": "Not Found", "code": "not_found"})
    status, body, _ = await call(http, "DELETE", f"{world.base('alice')}/sessions/{session['id']}")
    assert (status, body["code"]) == (405, "method_not_allowed")


# --- one conversation ---------------------------------------------------------------------------------------


async def test_a_message_posted_here_reaches_sockets_and_a_socket_message_reaches_the_log(world, http, new):
    session = (await new_session(http, world, agent="echo"))["id"]
    mod = await new("mod").connect(world.server.url, world.tokens["mod"], ["websocket"])
    await mod.join(world.ws, session)

    event = await post_message(http, world, session, "Where is my parcel?")
    assert_event(event)
    assert (event["kind"], event["source"], event["offset"]) == ("message", "customer", 0)
    assert event["data"] == {
        "message": "Where is my parcel?",
        "participant": {"id": world.users["alice"], "display_name": world.users["alice"]},
    }
    seen = await mod.wait_for("chat:message-received", lambda m: m["id"] == event["id"])
    assert (seen["content"], seen["senderType"], seen["userName"]) == (
        "Where is my parcel?",
        "user",
        world.users["alice"],
    )

    # The echo agent answers the Parlant message, streaming to the socket too.
    reply = "Echo: Where is my parcel?"
    stored = await mod.wait_for("chat:message-received", lambda m: m["content"] == reply, timeout=10)
    chunks = [c["chunk"] for c in mod.events("chat:agent-stream-chunk") if c["messageId"] == stored["id"]]
    assert "".join(chunks) == reply

    # A socket user's message appears in the log, as a human agent's.
    ack = await mod.send(session, "A human here, checking.")
    assert ack["ok"] is True
    events = await events_until(http, world, session, lambda es: any(e["id"] == ack["messageId"] for e in es))
    human = next(e for e in events if e["id"] == ack["messageId"])
    assert human["source"] == "human_agent" and human["data"]["message"] == "A human here, checking."
    assert human["data"]["participant"]["display_name"] == world.users["mod"]


async def test_an_agent_run_is_logged_as_parlant_logs_one(world, http, new):
    session = (await new_session(http, world))["id"]
    posted = await post_message(http, world, session, "three little words")
    events = await events_until(http, world, session, finished)
    assert [e["offset"] for e in events] == list(range(len(events)))  # every event once, no gap
    for event in events:
        assert_event(event)
    shape = [(e["kind"], e["source"], e["data"].get("status")) for e in events]
    assert shape == [
        ("message", "customer", None),
        ("status", "ai_agent", "acknowledged"),
        ("status", "ai_agent", "processing"),
        ("status", "ai_agent", "typing"),
        ("message", "ai_agent", None),
        ("status", "ai_agent", "ready"),
    ], shape
    reply = events[4]
    expected = "Echo: three little words"
    assert reply["data"]["message"] == expected
    assert reply["data"]["chunks"] == [*echo_chunks("three little words"), None]  # Parlant's end of a stream
    assert reply["data"]["participant"] == {"id": "echo", "display_name": "Echo"}
    # One correlation for the run, prefixed by the message it answers (the widget groups by the prefix).
    assert {e["correlation_id"].split("::")[0] for e in events} == {posted["id"]}
    # The reply is the stored message, under the id the sockets saw; stored once.
    assert stored_messages(world.server, world.ws, session) == [
        (1, posted["id"], "three little words"),
        (2, reply["id"], expected),
    ]
    status, same, _ = await call(http, "GET", f"{world.base('alice')}/sessions/{session}/events?wait_for_data=0")
    assert (status, same) == (200, events)
    # Filters: kinds, source, correlation.
    base = f"{world.base('alice')}/sessions/{session}/events?wait_for_data=0"
    _, statuses, _ = await call(http, "GET", f"{base}&kinds=status")
    assert [e["data"]["status"] for e in statuses] == ["acknowledged", "processing", "typing", "ready"]
    _, mine, _ = await call(http, "GET", f"{base}&source=customer")
    assert [e["id"] for e in mine] == [posted["id"]]
    _, run, _ = await call(http, "GET", f"{base}&correlation_id={posted['id']}::agent")
    assert len(run) == 5
    _, later, _ = await call(http, "GET", f"{base}&min_offset=4")
    assert [e["offset"] for e in later] == [4, 5]


async def test_an_agents_tool_call_is_a_parlant_tool_event(world, http):
    session = (await new_session(http, world))["id"]
    posted = await post_message(http, world, session, "/tool three little words")
    events = await events_until(http, world, session, finished)
    for event in events:
        assert_event(event)
    shape = [(e["kind"], e["source"], e["data"].get("status")) for e in events]
    assert shape[3:] == [
        ("status", "ai_agent", "typing"),
        ("tool", "system", None),
        ("message", "ai_agent", None),
        ("status", "ai_agent", "ready"),
    ], shape
    [call_] = events[4]["data"]["tool_calls"]
    assert call_["tool_id"] == "count_words" and call_["arguments"] == {"text": "/tool three little words"}
    assert call_["result"]["data"] == '{"words": 4}' and call_["result"]["metadata"] == {"status": "completed"}
    assert events[4]["correlation_id"] == f"{posted['id']}::agent"
    # The reply's chunks are its text only: its steps are events of their own.
    assert events[5]["data"]["chunks"] == [*echo_chunks("/tool three little words"), None]
    base = f"{world.base('alice')}/sessions/{session}/events?wait_for_data=0"
    _, tools, _ = await call(http, "GET", f"{base}&kinds=tool")
    assert [e["id"] for e in tools] == [events[4]["id"]]


async def test_a_failed_run_ends_with_an_error_status(world, http):
    add_agent(world.server, world.ws, "broken", {"prefix": 7})  # the echo backend refuses a non-string prefix
    session = (await new_session(http, world, agent="broken"))["id"]
    await post_message(http, world, session, "hello?")
    events = await events_until(
        http, world, session, lambda es: finished(es) and any(e["source"] == "system" for e in es)
    )
    error = next(e for e in events if e["kind"] == "status" and e["data"]["status"] == "error")
    assert error["data"]["data"]["code"] == "agent_misconfigured"
    assert "could not answer" in error["data"]["data"]["exception"]
    note = next(e for e in events if e["source"] == "system")
    assert note["kind"] == "message" and "could not answer" in note["data"]["message"]


# --- long-polling and streams -----------------------------------------------------------------------------------


async def test_long_poll_waits_for_an_event_and_times_out_as_parlant_does(world, http):
    session = (await new_session(http, world, agent="echo"))["id"]
    url = f"{world.base('alice')}/sessions/{session}/events?min_offset=0&wait_for_data=1"
    started = time.monotonic()
    status, body, headers = await call(http, "GET", url)
    took = time.monotonic() - started
    assert status == 504 and body["detail"] == "Request timed out" and body["code"] == "request_timeout"
    assert 0.9 <= took < 3.0, took

    # A waiting request answers as soon as something happens.
    waiting = asyncio.create_task(call(http, "GET", url.replace("wait_for_data=1", "wait_for_data=10")))
    await asyncio.sleep(0.5)
    assert not waiting.done()
    started = time.monotonic()
    posted = await post_message(http, world, session, "wake up")
    status, events, _ = await waiting
    assert status == 200 and events[0]["id"] == posted["id"]
    assert time.monotonic() - started < 2.0

    status, body, _ = await call(http, "GET", url.replace("min_offset=0", "min_offset=x"))
    assert (
        status == 422
        and body["detail"][0]["type"] == "int_parsing"
        and body["detail"][0]["loc"] == ["query", "min_offset"]
    )
    status, body, _ = await call(http, "GET", f"{url}&kinds=message,nonsense")
    assert status == 422 and body["detail"][0]["type"] == "enum"


async def test_a_json_listing_hands_a_streaming_reply_over_whole(world, http):
    session = (await new_session(http, world, agent="slow"))["id"]
    await post_message(http, world, session, "one two three four")
    events = await events_until(http, world, session, finished)
    replies = [e for e in events if e["kind"] == "message" and e["source"] == "ai_agent"]
    assert len(replies) == 1 and replies[0]["data"]["chunks"][-1] is None, replies


async def test_sse_frames_and_resuming_from_an_offset_loses_and_repeats_nothing(world, http):
    session = (await new_session(http, world))["id"]
    url = f"{world.base('alice')}/sessions/{session}/events?sse=true&wait_for_data=2"
    got: list[dict] = []
    async with http.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        await post_message(http, world, session, "first")
        frames = sse_frames(response)
        async for frame in frames:
            assert re.fullmatch(r"id: \d+\ndata: \{.*\}", frame, re.DOTALL), frame
            offset, event = parse_frame(frame)
            assert event is not None and offset == event["offset"]
            assert_event(event)
            got.append(event)
            if len(got) == 3:
                break  # drop the connection mid-conversation
    # Reconnect from the last offset + 1 (what a Parlant client keeps), then with Last-Event-ID (what EventSource sends).
    await post_message(http, world, session, "second")
    resumed: list[dict] = []
    async with http.get(f"{url}&min_offset={got[-1]['offset'] + 1}") as response:
        async for frame in sse_frames(response):
            offset, event = parse_frame(frame)
            if event is not None:
                resumed.append(event)
            if sum(1 for e in resumed if e["kind"] == "status" and e["data"]["status"] == "ready") == 2:
                break
    everything = got + resumed
    assert [e["offset"] for e in everything] == list(range(len(everything))), [e["offset"] for e in everything]
    status, listed, _ = await call(http, "GET", f"{world.base('alice')}/sessions/{session}/events?wait_for_data=0")
    assert [e["id"] for e in listed] == [e["id"] for e in everything]
    async with http.get(url, headers={"Last-Event-ID": str(everything[4]["offset"])}) as response:
        first = [parse_frame(f)[1] async for f in _take(sse_frames(response), 1)]
    assert first[0]["offset"] == everything[5]["offset"]

    # With nothing more to say the stream ends by itself after wait_for_data seconds (Parlant's rule).
    started = time.monotonic()
    async with http.get(f"{url}&min_offset={everything[-1]['offset'] + 1}") as response:
        assert await response.read() == b""
    assert 1.8 <= time.monotonic() - started < 5


async def _take(frames: AsyncIterator[str], count: int) -> AsyncIterator[str]:
    async for frame in frames:
        if parse_frame(frame)[1] is None:
            continue
        yield frame
        count -= 1
        if count == 0:
            return


async def test_the_per_event_stream_follows_a_streaming_reply_to_its_end(world, http):
    session = (await new_session(http, world, agent="slow"))["id"]
    posted = await post_message(http, world, session, "streaming is fun indeed")
    # An SSE listing shows the reply as soon as it starts, with its chunks so far (Parlant's streaming message).
    async with http.get(f"{world.base('alice')}/sessions/{session}/events?sse=true&wait_for_data=10") as response:
        async for frame in sse_frames(response):
            _, event = parse_frame(frame)
            if event is not None and event["kind"] == "message" and event["source"] == "ai_agent":
                break
    assert event["data"]["chunks"] and event["data"]["chunks"][-1] is not None, event
    updates = []
    url = f"{world.base('alice')}/sessions/{session}/events/{event['id']}?sse=true"
    async with http.get(url) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        async for frame in sse_frames(response):
            _, update = parse_frame(frame)
            if update is not None:
                updates.append(update)
    counts = [len(u["data"]["chunks"]) for u in updates]
    assert len(updates) >= 2 and counts == sorted(set(counts)), counts  # it grew, and each update was new
    final = updates[-1]["data"]
    assert final["chunks"] == [*echo_chunks("streaming is fun indeed"), None]
    assert final["message"] == "Echo: streaming is fun indeed"
    assert {u["offset"] for u in updates} == {event["offset"]} and {u["id"] for u in updates} == {
        f"agent-{posted['id']}"
    }
    # Reading it: at once, or waiting for its completion.
    status, read, _ = await call(http, "GET", f"{world.base('alice')}/sessions/{session}/events/{event['id']}")
    assert status == 200 and read["data"]["chunks"][-1] is None
    status, body, _ = await call(http, "GET", f"{world.base('alice')}/sessions/{session}/events/nope")
    assert (status, body["code"]) == (404, "event_not_found")


async def test_a_per_event_wait_returns_the_completed_reply(world, http):
    session = (await new_session(http, world, agent="slow"))["id"]
    posted = await post_message(http, world, session, "wait for me")
    key = f"agent-{posted['id']}"
    url = f"{world.base('alice')}/sessions/{session}/events/{key}?wait_for_completion=true&wait_for_data=10"
    deadline = time.monotonic() + 10
    while True:  # the reply's event exists from its first chunk on
        status, event, _ = await call(http, "GET", url)
        if status == 200:
            break
        assert status == 404 and time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert event["data"]["chunks"][-1] is None and event["data"]["message"] == "Echo: wait for me"


# --- auth and isolation -------------------------------------------------------------------------------------


async def test_credentials_are_required_and_checked(world, http):
    base = f"{world.server.url}/parlant/{world.ws}"
    for url, headers in [
        (f"{base}/agents/echo", {}),
        (f"{base}/t/chat_not-a-token/agents/echo", {}),
        (f"{base}/t/sock_not-a-token/agents/echo", {}),
        (f"{base}/agents/echo", {"Authorization": "Bearer chat_not-a-token"}),
    ]:
        status, body, _ = await call(http, "GET", url, headers=headers)
        assert (status, body["code"]) == (403, "unauthenticated"), (url, body)
        assert "not-a-token" not in json.dumps(body)  # a token is never echoed
    status, _, _ = await call(
        http, "GET", f"{base}/agents/echo", headers={"Authorization": f"Bearer {world.tokens['alice']}"}
    )
    assert status == 200


async def test_a_one_time_socket_token_serves_one_widget_url(world, http, new):
    async def socket_token() -> str:
        headers = {"Authorization": f"Bearer {world.tokens['alice']}"}
        async with http.post(f"{world.server.url}/api/v1/auth/socket-token", headers=headers) as response:
            assert response.status == 201
            return (await response.json())["token"]

    token = await socket_token()
    base = f"{world.server.url}/parlant/{world.ws}/t/{token}"
    # The widget fires several requests at once on its first use.
    results = await asyncio.gather(*(call(http, "GET", f"{base}/agents/echo") for _ in range(4)))
    assert [status for status, _, _ in results] == [200] * 4, results
    session = await new_session(http, world)  # the same URL keeps working for the widget
    status, _, _ = await call(http, "GET", f"{base}/sessions/{session['id']}")
    assert status == 200
    # ...but the token is used: no socket can connect with it.
    refused = await new("replay").connect(world.server.url, token, ["websocket"], expect_error=True)
    assert any(name == "connect_error" for name, _ in refused.stream)
    # A token a socket used first does not open the API either.
    used = await socket_token()
    await new("socket").connect(world.server.url, used, ["websocket"])
    status, body, _ = await call(http, "GET", f"{world.server.url}/parlant/{world.ws}/t/{used}/agents/echo")
    assert (status, body["code"], body["reason"]) == (403, "unauthenticated", "token_replayed")


async def test_another_workspace_and_other_peoples_sessions_are_not_found(world, http):
    session = (await new_session(http, world, "alice"))["id"]
    await post_message(http, world, session, "private")
    # bob belongs to another workspace: this one does not exist for him.
    status, body, _ = await call(http, "GET", f"{world.base('bob')}/sessions/{session}")
    assert (status, body["code"]) == (404, "not_a_member")
    # In his own workspace, the session of the same id does not exist.
    status, body, _ = await call(
        http, "GET", f"{world.base('bob', world.other_ws)}/sessions/{session}/events?wait_for_data=0"
    )
    assert (status, body["code"]) == (404, "session_not_found")
    status, body, _ = await call(
        http,
        "POST",
        f"{world.base('bob', world.other_ws)}/sessions/{session}/events",
        {"kind": "message", "source": "customer", "message": "hi"},
    )
    assert (status, body["code"]) == (404, "session_not_found")
    # carol is a member, but the session is neither hers nor shared with her.
    for path in (f"sessions/{session}", f"sessions/{session}/events?wait_for_data=0"):
        status, body, _ = await call(http, "GET", f"{world.base('carol')}/{path}")
        assert (status, body["code"]) == (404, "session_not_found"), path
    # A moderator sees it; nothing of it was stored twice or leaked into bob's workspace.
    status, events, _ = await call(http, "GET", f"{world.base('mod')}/sessions/{session}/events?wait_for_data=0")
    assert status == 200 and events[0]["data"]["message"] == "private"
    assert stored_messages(world.server, world.other_ws, session) == []


async def test_posting_is_screened_like_a_socket_send_and_stored_as_sent(world, http, new):
    session = (await new_session(http, world, agent="echo"))["id"]
    mod = await new("mod").connect(world.server.url, world.tokens["mod"], ["websocket"])
    await mod.join(world.ws, session)
    event = await post_message(http, world, session, "<b>bold</b> & plain")
    assert event["data"]["message"] == "<b>bold</b> & plain" and "html" not in event["data"]
    seen = await mod.wait_for("chat:message-received", lambda m: m["id"] == event["id"])
    assert (seen["content"], seen["html"]) == ("<b>bold</b> & plain", None)
    # What looks like an attack goes through as text in a standard workspace (recorded as suspicious).
    event = await post_message(http, world, session, "<script>x()</script>")
    assert event["data"]["message"] == "<script>x()</script>"
    # The echo agent answers in markdown: its reply carries the server's HTML beside the text.
    events = await events_until(
        http, world, session, lambda es: sum(e["source"] == "ai_agent" and e["kind"] == "message" for e in es) >= 2
    )
    reply = [e for e in events if e["source"] == "ai_agent" and e["kind"] == "message"][-1]
    assert reply["data"]["message"].endswith("<script>x()</script>"), reply
    assert "&lt;script&gt;x()&lt;/script&gt;" in reply["data"]["html"] and "<script" not in reply["data"]["html"]

    url = f"{world.base('alice')}/sessions/{session}/events"
    status, body, _ = await call(http, "POST", url, {"kind": "message", "source": "customer", "message": "x" * 10_001})
    assert (status, body["code"]) == (422, "message_too_long")
    status, body, _ = await call(http, "POST", url, {"kind": "message", "source": "customer"})
    assert (status, body["detail"]) == (422, "Missing 'message' field for event")
    status, body, _ = await call(http, "POST", url, {"kind": "shout", "source": "customer", "message": "hi"})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "kind"]
    status, body, _ = await call(http, "POST", url, {"kind": "message", "source": "ai_agent"})
    assert status == 422 and "supported for direct posting" in body["detail"]
    status, body, _ = await call(http, "POST", url, data=b"{not json", headers={"Content-Type": "application/json"})
    assert status == 422 and body["detail"][0]["type"] == "json_invalid"
    contents = [content for _, _, content in stored_messages(world.server, world.ws, session)]
    assert "x" * 10_001 not in contents
    # A member posts as a human agent only as a moderator.
    status, body, _ = await call(http, "POST", url, {"kind": "message", "source": "human_agent", "message": "hi"})
    assert (status, body["code"]) == (403, "forbidden")


async def test_a_deleted_message_is_a_deleted_event_without_its_content(world, http):
    session = (await new_session(http, world))["id"]
    gone = await post_message(http, world, session, "my card is 4111 1111 1111 1111")
    await events_until(http, world, session, finished)  # the echo agent's reply repeats it, in chunks too
    db_execute(  # the member's message and the reply, as a moderator deleting both would
        world.server,
        "UPDATE chat_chatmessage SET deleted_at = CURRENT_TIMESTAMP, version = 2 WHERE session_id IN "
        "(SELECT s.id FROM chat_chatsession s JOIN chat_workspace w ON w.id = s.workspace_id WHERE w.slug = ? AND s.key = ?)",
        (world.ws, session),
    )
    for who in ("alice", "mod"):
        _, events, _ = await call(http, "GET", f"{world.base(who)}/sessions/{session}/events?wait_for_data=0")
        [event] = [e for e in events if e["id"] == gone["id"]]
        assert (event["deleted"], event["data"]["message"]) == (True, ""), event
        messages = [e for e in events if e["kind"] == "message"]
        assert len(messages) == 2 and all(e["deleted"] for e in messages), messages
        assert "4111" not in json.dumps(events)


async def test_hidden_messages_are_left_out_for_members_and_closed_sessions_refuse_posts(world, http):
    session = (await new_session(http, world, agent="echo"))["id"]
    kept = await post_message(http, world, session, "keep me")
    hidden = await post_message(http, world, session, "hide me")
    seq = next(seq for seq, key, _ in stored_messages(world.server, world.ws, session) if key == hidden["id"])
    hide_message(world.server, world.ws, session, seq)
    url = f"{world.base('alice')}/sessions/{session}/events?wait_for_data=0&source=customer"
    _, events, _ = await call(http, "GET", url)
    assert [e["id"] for e in events] == [kept["id"]]
    _, events, _ = await call(http, "GET", url.replace(world.base("alice"), world.base("mod")))
    assert [(e["id"], e["deleted"]) for e in events] == [(kept["id"], False), (hidden["id"], True)]
    status, body, _ = await call(http, "GET", f"{world.base('alice')}/sessions/{session}/events/{hidden['id']}")
    assert (status, body["code"]) == (404, "event_not_found")

    close_session(world.server, world.ws, session)
    url = f"{world.base('alice')}/sessions/{session}/events"
    status, body, _ = await call(http, "POST", url, {"kind": "message", "source": "customer", "message": "hello?"})
    assert (status, body["code"]) == (409, "session_closed")


async def test_an_opening_message_on_the_agents_behalf_is_allowed_once(world, http):
    # parlant-chat-react posts its agentOpeningMessage this way right after creating a session.
    session = (await new_session(http, world, agent="echo"))["id"]
    url = f"{world.base('alice')}/sessions/{session}/events"
    opening = {"kind": "message", "source": "human_agent_on_behalf_of_ai_agent", "message": "Hi! How can I help?"}
    status, event, _ = await call(http, "POST", url, opening)
    assert status == 201 and event["source"] == "human_agent_on_behalf_of_ai_agent"
    assert event["data"]["participant"] == {"id": "echo", "display_name": "Echo"}
    status, body, _ = await call(http, "POST", url, opening)
    assert (status, body["code"]) == (403, "forbidden")
    assert [row[2] for row in stored_messages(world.server, world.ws, session)] == ["Hi! How can I help?"]


async def test_cors_follows_the_allowed_origins(world, http):
    url = f"{world.base('alice')}/sessions"
    preflight = {
        "Origin": ALLOWED_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-fern-language,x-fern-runtime,x-fern-runtime-version",
    }
    status, _, headers = await call(http, "OPTIONS", url, headers=preflight)
    assert status == 204 and headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    allowed = {h.strip() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "x-fern-language", "x-fern-runtime", "x-fern-runtime-version"} <= allowed
    assert "POST" in headers["Access-Control-Allow-Methods"]
    status, _, headers = await call(
        http, "GET", f"{world.base('alice')}/agents/echo", headers={"Origin": ALLOWED_ORIGIN}
    )
    assert status == 200 and headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    status, body, headers = await call(
        http, "GET", f"{world.base('alice')}/sessions/x", headers={"Origin": ALLOWED_ORIGIN}
    )
    assert status == 404 and headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN  # errors are readable too
    for method in ("OPTIONS", "GET", "POST"):
        status, body, headers = await call(
            http,
            method,
            url if method != "GET" else f"{world.base('alice')}/agents/echo",
            {"agent_id": "echo"} if method == "POST" else None,
            headers={**preflight, "Origin": "http://evil.example"},
        )
        assert (status, body["code"]) == (403, "forbidden") and "Access-Control-Allow-Origin" not in headers, method


# --- rate limits ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(module_server_factory, module_backend) -> World:
    env = {**SERVER_ENV, "CHAT_MESSAGE_RATE_LIMIT": "3", "CHAT_API_RATE_LIMIT": "25/m", "CHAT_PENALTY_STRIKES": "1000"}
    return make_world(module_server_factory(module_backend, conformance=False, **env))


async def test_sends_share_the_socket_budget_and_requests_the_apis(limited, http, new):
    world = limited
    session = (await new_session(http, world, agent="echo"))["id"]
    alice = await new("alice").connect(world.server.url, world.tokens["alice"], ["websocket"])
    await alice.join(world.ws, session)
    assert (await alice.send(session, "from the socket"))["ok"] is True
    await post_message(http, world, session, "from the widget 1")
    await post_message(http, world, session, "from the widget 2")
    url = f"{world.base('alice')}/sessions/{session}/events"
    status, body, headers = await call(
        http, "POST", url, {"kind": "message", "source": "customer", "message": "one more"}
    )
    assert (status, body["code"]) == (429, "rate_limited") and int(headers["Retry-After"]) >= 1
    assert body["retryAfter"] > 0
    # The budget is the user's, whichever way they send.
    ack = await alice.send(session, "and from the socket again")
    assert ack["ok"] is False and ack["code"] == "rate_limited"
    # Every request counts against the REST API's rate (25 a minute here), shared with /api/v1/.
    statuses = []
    while 429 not in statuses:
        assert len(statuses) <= 60, statuses  # two windows' worth: one of them must overflow
        statuses.append((await call(http, "GET", f"{world.base('carol')}/agents/echo"))[0])
    assert statuses[0] == 200 and len(statuses) >= 26, statuses
    status, body, _ = await call(
        http,
        "GET",
        f"{world.server.url}/api/v1/workspaces/{world.ws}/sessions/",
        headers={"Authorization": f"Bearer {world.tokens['carol']}"},
    )
    assert (status, body["code"]) == (429, "rate_limited")


@pytest.fixture(scope="module")
def guarded(module_server_factory, module_backend) -> World:
    """A server of its own: the failures below block this test process's address for a minute."""
    return make_world(
        module_server_factory(module_backend, conformance=False, **{**SERVER_ENV, "CHAT_API_RATE_LIMIT": "5/m"})
    )


async def test_failed_authentications_are_rate_limited_before_tokens_are_looked_at(guarded, http):
    world = guarded
    url = f"{world.server.url}/parlant/{world.ws}/agents/echo"
    statuses = []
    while 429 not in statuses:
        assert len(statuses) <= 12, statuses  # two windows' worth: one of them must overflow
        statuses.append((await call(http, "GET", url, headers={"Authorization": "Bearer chat_not-a-token"}))[0])
    assert statuses[0] == 403 and set(statuses[:-1]) == {403} and len(statuses) >= 6, statuses
    # Over the rate, the address is refused before any token is checked, a good one included.
    status, body, headers = await call(http, "GET", url, headers={"Authorization": f"Bearer {world.tokens['alice']}"})
    assert (status, body["code"]) == (429, "rate_limited") and int(headers["Retry-After"]) >= 1
    # Through the REST API the user, authenticated, still has their own budget.
    status, _, _ = await call(
        http,
        "GET",
        f"{world.server.url}/api/v1/workspaces/{world.ws}/sessions/",
        headers={"Authorization": f"Bearer {world.tokens['alice']}"},
    )
    assert status == 200


@pytest.fixture(scope="module")
def capped(module_server_factory, module_backend) -> World:
    env = {**SERVER_ENV, "CHAT_PARLANT_MAX_OPEN_REQUESTS": "2", "CHAT_PARLANT_TOKEN_MAX_AGE_S": "2"}
    return make_world(module_server_factory(module_backend, conformance=False, **env))


async def test_open_requests_per_user_are_capped(capped, http):
    """Long-polls hold a worker's tasks and sockets: a user may keep only so many open; others are unaffected."""
    world = capped
    session = (await new_session(http, world))["id"]
    poll = f"{world.base('alice')}/sessions/{session}/events?min_offset=1000&wait_for_data=30"
    waits = [asyncio.create_task(call(http, "GET", poll)) for _ in range(2)]
    try:
        await asyncio.sleep(1.0)  # both are open and waiting
        assert not any(wait.done() for wait in waits)
        status, body, _ = await call(http, "GET", f"{world.base('alice')}/agents/echo")
        assert (status, body["code"]) == (429, "too_many_open_requests"), body
        status, _, _ = await call(http, "GET", f"{world.base('carol')}/agents/echo")
        assert status == 200
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    # The client went away: its requests are closed, and the user's count with them.
    deadline = time.monotonic() + 5
    while (status := (await call(http, "GET", f"{world.base('alice')}/agents/echo"))[0]) == 429:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert status == 200


async def test_a_parlant_grant_expires_after_its_max_age_however_busy(capped, http):
    world = capped
    headers = {"Authorization": f"Bearer {world.tokens['alice']}"}
    async with http.post(f"{world.server.url}/api/v1/auth/socket-token", headers=headers) as response:
        token = (await response.json())["token"]
    url = f"{world.server.url}/parlant/{world.ws}/t/{token}/agents/echo"
    started = time.monotonic()
    while time.monotonic() - started < 1.5:  # in use all the time: idleness never ends it
        assert (await call(http, "GET", url))[0] == 200
        await asyncio.sleep(0.2)
    await asyncio.sleep(max(0.0, 2.2 - (time.monotonic() - started)))
    status, body, _ = await call(http, "GET", url)
    assert (status, body["code"], body["reason"]) == (403, "unauthenticated", "token_expired")


# --- several workers -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_workers(module_server_factory, services_backend) -> tuple[World, World]:
    first = module_server_factory(services_backend, conformance=False, **SERVER_ENV)
    second = module_server_factory(services_backend, conformance=False, **SERVER_ENV)
    world = make_world(first)
    return world, World(second, world.ws, world.other_ws, world.tokens, world.users)


@pytest.mark.services
async def test_a_long_poll_and_a_stream_on_one_worker_see_what_happens_on_another(two_workers, http):
    a, b = two_workers
    session = (await new_session(http, a, agent="slow"))["id"]
    # Waiting on worker B...
    waiting = asyncio.create_task(
        call(http, "GET", f"{b.base('alice')}/sessions/{session}/events?min_offset=0&wait_for_data=10")
    )
    stream_events: list[dict] = []

    async def stream_on_b() -> None:
        async with http.get(f"{b.base('alice')}/sessions/{session}/events?sse=true&wait_for_data=10") as response:
            async for frame in sse_frames(response):
                _, event = parse_frame(frame)
                if event is not None:
                    stream_events.append(event)
                    if event["kind"] == "status" and event["data"]["status"] == "ready":
                        return

    streaming = asyncio.create_task(stream_on_b())
    await asyncio.sleep(0.5)
    # ...a message posted on worker A, answered by an agent on whichever worker claims it.
    posted = await post_message(http, a, session, "across the workers we go")
    status, events, _ = await asyncio.wait_for(waiting, 10)
    assert status == 200 and events[0]["id"] == posted["id"]
    await asyncio.wait_for(streaming, 20)
    # Both workers serve the same log: same offsets, same events, nothing twice.
    status, on_a, _ = await call(http, "GET", f"{a.base('alice')}/sessions/{session}/events?wait_for_data=0")
    assert [e["offset"] for e in on_a] == list(range(len(on_a)))
    assert [(e["offset"], e["id"]) for e in stream_events] == [(e["offset"], e["id"]) for e in on_a]

    # The per-event stream on B follows a reply streamed by whichever worker runs it.
    posted = await post_message(http, a, session, "one more time with feeling")
    key = f"agent-{posted['id']}"
    deadline = time.monotonic() + 10
    while (await call(http, "GET", f"{b.base('alice')}/sessions/{session}/events/{key}"))[0] != 200:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    counts = []
    async with http.get(f"{b.base('alice')}/sessions/{session}/events/{key}?sse=true") as response:
        async for frame in sse_frames(response):
            _, update = parse_frame(frame)
            if update is not None:
                counts.append(len(update["data"]["chunks"]))
                final = update
    assert final["data"]["chunks"][-1] is None and len(counts) >= 2 and counts == sorted(set(counts)), counts


# --- under uvicorn, the production server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def uvicorn_world(module_server_factory, module_backend) -> World:
    return make_world(module_server_factory(module_backend, conformance=False, server="uvicorn", **SERVER_ENV))


async def test_under_uvicorn_streams_flow_and_the_access_log_keeps_no_token(uvicorn_world, http):
    world = uvicorn_world
    session = (await new_session(http, world, agent="slow"))["id"]
    url = f"{world.base('alice')}/sessions/{session}/events?sse=true&wait_for_data=10"
    started = time.monotonic()
    async with http.get(url) as response:
        assert response.status == 200 and time.monotonic() - started < 2  # open at once, before any event
        posted = await post_message(http, world, session, "under uvicorn too")
        kinds = []
        async for frame in sse_frames(response):
            _, event = parse_frame(frame)
            if event is None:
                continue
            kinds.append(event["kind"])
            if event["kind"] == "message" and event["source"] == "ai_agent":
                reply = event
                break
    assert kinds[0] == "message" and reply["data"]["chunks"][-1] is not None  # caught mid-stream
    counts = []
    async with http.get(f"{world.base('alice')}/sessions/{session}/events/{reply['id']}?sse=true") as response:
        async for frame in sse_frames(response):
            _, update = parse_frame(frame)
            if update is not None:
                counts.append(len(update["data"]["chunks"]))
                final = update
    assert final["data"]["chunks"][-1] is None and counts == sorted(set(counts)), counts
    events = await events_until(http, world, session, finished)
    assert events[0]["id"] == posted["id"] and [e["offset"] for e in events] == list(range(len(events)))
    status, body, _ = await call(
        http, "GET", f"{world.base('alice')}/sessions/{session}/events?min_offset=99&wait_for_data=1"
    )
    assert (status, body["detail"]) == (504, "Request timed out")
    # uvicorn logs every request's path here; the path's token is redacted.
    log = world.server.log_text()
    assert f"/parlant/{world.ws}/t/[redacted]/sessions/{session}/events" in log
    assert world.tokens["alice"] not in log
