"""The parlant and openai backends against small real HTTP servers speaking their wire formats.

:class:`FakeOpenAI` serves ``POST /v1/chat/completions`` as Server-Sent
Events (``data: {json}`` lines with ``choices[0].delta.content``, then
``data: [DONE]``), answering 429 or 5xx for the keys it is told to, and
cutting a stream off halfway when asked.  :class:`FakeParlant` serves
Parlant's session and event endpoints: session creation, customer message
events, and long-polling ``GET /sessions/{id}/events`` (``min_offset``,
``kinds``, ``wait_for_data``, 504 when nothing came), with an agent that
acknowledges, processes, types, answers and gets ready like Parlant's does.

Both run on any event loop (the test's) or in a thread of their own
(:class:`ThreadedServer`, for servers that a separate daphne process calls).
No database and no chat server is involved here: the backends are driven
directly through the :class:`~chat.agents.backends.AgentBackend` interface.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from aiohttp import web

from chat.agents import network
from chat.agents.backends import AgentContext, BackendError, ContextMessage, make_backend
from chat.agents.backends import openai as openai_backend
from chat.agents.backends import parlant as parlant_backend

# --- fake servers --------------------------------------------------------------------------


class FakeServer:
    """An aiohttp application on 127.0.0.1, started on the current loop."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.url = ""

    def app(self) -> web.Application:  # pragma: no cover - overridden
        raise NotImplementedError

    async def start(self) -> FakeServer:
        self.runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class ThreadedServer:
    """Run a :class:`FakeServer` on an event loop in a thread of its own."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="fake-provider")

    def __enter__(self) -> FakeServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self.server

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class OpenAIRequest:
    key: str | None
    body: dict[str, Any]
    status: int


@dataclass
class FakeOpenAI(FakeServer):
    """``POST /v1/chat/completions`` with ``stream: true``, as the OpenAI API streams it."""

    #: The reply, streamed one word (with its leading space) per event.
    reply: str = "Hello from the model"
    delay_s: float = 0.0
    #: Keys answered with 429 / with 503.
    rate_limited: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    #: Close the connection after this many content events, without [DONE].
    cut_after: int | None = None
    #: Instead of ``reply``: these ``delta`` objects, one chunk each (tool calls, reasoning...), verbatim.
    script: list[dict[str, Any]] | None = None
    #: The last chunk's ``finish_reason``.
    finish_reason: str = "stop"
    requests: list[OpenAIRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        FakeServer.__init__(self)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.completions)
        return app

    def words(self) -> list[str]:
        words = self.reply.split(" ")
        return [w if i == 0 else f" {w}" for i, w in enumerate(words)]

    async def completions(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        body = await request.json()
        status = 429 if key in self.rate_limited else 503 if key in self.failing else 200
        self.requests.append(OpenAIRequest(key, body, status))
        if status != 200:
            return web.json_response({"error": {"message": f"Incorrect API key provided: {key}"}}, status=status)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)

        async def event(payload: Any) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            await response.write(f"data: {data}\n\n".encode())

        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": body.get("model")}
        await event({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
        deltas = self.script if self.script is not None else [{"content": word} for word in self.words()]
        for i, delta in enumerate(deltas):
            if self.cut_after is not None and i >= self.cut_after:
                # Halfway: a moment later the connection drops mid-body, no [DONE], no finish_reason.
                await asyncio.sleep(0.05)
                request.transport.close()
                return response
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            await event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        await event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": self.finish_reason}]})
        await event("[DONE]")
        await response.write_eof()
        return response


@dataclass
class FakeParlant(FakeServer):
    """Parlant's session and event endpoints, with an agent that answers every customer message."""

    #: How the agent answers: a list of messages per customer message.
    answer: Any = field(default=lambda text: [f"Parlant heard: {text}"])
    step_s: float = 0.02
    #: Make the agent end its turn with an ``error`` status instead of answering.
    fail: bool = False
    #: Emit agent messages in Parlant's streaming mode (``data.chunks`` growing word by word, then ``None``).
    streaming: bool = False
    #: Serve ``GET .../events/{id}?sse=true`` as Server-Sent Events (newer Parlant); else it answers JSON.
    sse: bool = True
    #: ``data.tool_calls`` of a ``tool`` event the agent emits before answering (none when empty).
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    #: Wait this long before reacting at all (to exercise 504s on long-polls).
    think_s: float = 0.0
    #: Answer every long poll with an immediate 504, as a broken proxy would.
    always_504: bool = False
    sessions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    session_requests: list[dict[str, Any]] = field(default_factory=list)
    event_posts: list[dict[str, Any]] = field(default_factory=list)
    polls: list[dict[str, str]] = field(default_factory=list)
    timeouts: int = 0
    event_streams: int = 0

    def __post_init__(self) -> None:
        FakeServer.__init__(self)
        self._changed: asyncio.Condition | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def changed(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/sessions", self.create_session)
        app.router.add_post("/sessions/{sid}/events", self.create_event)
        app.router.add_get("/sessions/{sid}/events", self.list_events)
        app.router.add_get("/sessions/{sid}/events/{eid}", self.read_event)
        return app

    def forget_sessions(self) -> None:
        self.sessions.clear()

    async def create_session(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.session_requests.append({"query": dict(request.query), "body": body})
        if "agent_id" not in body:
            return web.json_response({"detail": "agent_id required"}, status=422)
        sid = f"sess_{len(self.session_requests)}"
        self.sessions[sid] = []
        return web.json_response(
            {
                "id": sid,
                "agent_id": body["agent_id"],
                "customer_id": body.get("customer_id") or "guest",
                "creation_utc": "2025-01-01T00:00:00Z",
                "title": body.get("title"),
                "mode": "auto",
                "consumption_offsets": {"client": 0},
            },
            status=201,
        )

    async def _append(self, sid: str, source: str, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        events = self.sessions[sid]
        event = {
            "id": f"evt_{sid}_{len(events)}",
            "source": source,
            "kind": kind,
            "offset": len(events),
            "creation_utc": "2025-01-01T00:00:00Z",
            "trace_id": "trace_1",
            "data": data,
            "metadata": {},
            "deleted": False,
        }
        events.append(event)
        async with self.changed:
            self.changed.notify_all()
        return event

    async def create_event(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        if sid not in self.sessions:
            return web.json_response({"detail": "Session not found"}, status=404)
        body = await request.json()
        self.event_posts.append({"sid": sid, "query": dict(request.query), "body": body})
        if body.get("kind") != "message" or body.get("source") != "customer" or not body.get("message"):
            return web.json_response({"detail": "bad event"}, status=422)
        event = await self._append(
            sid, "customer", "message", {"message": body["message"], "participant": {"display_name": "guest"}}
        )
        task = asyncio.get_running_loop().create_task(self._agent_turn(sid, event["offset"], body["message"]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response(event, status=201)

    async def _agent_turn(self, sid: str, offset: int, text: str) -> None:
        await asyncio.sleep(self.think_s)

        async def status(name: str, **data: Any) -> None:
            await asyncio.sleep(self.step_s)
            await self._append(sid, "ai_agent", "status", {"status": name, "acknowledged_offset": offset, "data": data})

        await status("acknowledged")
        await status("processing", stage="Interpreting")
        if self.fail:
            await status("error", exception="boom")
            return
        if self.tool_calls:
            await asyncio.sleep(self.step_s)
            await self._append(sid, "system", "tool", {"tool_calls": self.tool_calls})
        await status("typing")
        for message in self.answer(text):
            await asyncio.sleep(self.step_s)
            data: dict[str, Any] = {"message": message, "participant": {"id": "ag_1", "display_name": "Agent"}}
            if not self.streaming:
                await self._append(sid, "ai_agent", "message", data)
                continue
            pieces = self.pieces(message)
            data = {"message": "", "chunks": [pieces[0]], "participant": data["participant"]}
            event = await self._append(sid, "ai_agent", "message", data)
            for piece in [*pieces[1:], None]:
                await asyncio.sleep(self.step_s)
                chunks = [*event["data"]["chunks"], piece]
                joined = "".join(c for c in chunks if c is not None)
                event["data"] = {**event["data"], "chunks": chunks, "message": joined if piece is None else ""}
                async with self.changed:
                    self.changed.notify_all()
        await status("ready")

    @staticmethod
    def pieces(message: str) -> list[str]:
        """How a streamed message grows: word by word, each later word with its leading space."""
        words = message.split(" ")
        return [w if i == 0 else f" {w}" for i, w in enumerate(words)]

    async def list_events(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        if sid not in self.sessions:
            return web.json_response({"detail": "Session not found"}, status=404)
        self.polls.append(dict(request.query))
        if self.always_504:
            self.timeouts += 1
            return web.json_response({"detail": "Request timed out"}, status=504)
        min_offset = int(request.query.get("min_offset", "0"))
        kinds = [k for k in request.query.get("kinds", "").split(",") if k]
        wait = int(request.query.get("wait_for_data", "60"))

        def matching() -> list[dict[str, Any]]:
            return [e for e in self.sessions[sid] if e["offset"] >= min_offset and (not kinds or e["kind"] in kinds)]

        if wait > 0 and not matching():
            try:
                async with self.changed:
                    await asyncio.wait_for(self.changed.wait_for(lambda: bool(matching())), wait)
            except asyncio.TimeoutError:
                self.timeouts += 1
                return web.json_response({"detail": "Request timed out"}, status=504)
        return web.json_response(matching())

    async def read_event(self, request: web.Request) -> web.Response:
        sid, eid = request.match_info["sid"], request.match_info["eid"]
        event = next((e for e in self.sessions.get(sid, []) if e["id"] == eid), None)
        if event is None:
            return web.json_response({"detail": "not found"}, status=404)
        if request.query.get("sse") == "true" and self.sse:
            return await self._event_stream(request, event)
        if request.query.get("wait_for_completion") == "true":
            async with self.changed:
                await asyncio.wait_for(
                    self.changed.wait_for(lambda: event["data"].get("chunks", [None])[-1] is None), 10
                )
        return web.json_response(event)

    async def _event_stream(self, request: web.Request, event: dict[str, Any]) -> web.StreamResponse:
        """Parlant's ``read_event`` with ``sse=true``: the event now and after every change, until its chunks end."""
        self.event_streams += 1
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        wait = int(request.query.get("wait_for_data", "60"))
        while True:
            chunks = event["data"].get("chunks")
            await response.write(f"data: {json.dumps(event)}\n\n".encode())
            if not isinstance(chunks, list) or (chunks and chunks[-1] is None):
                break
            try:
                async with self.changed:
                    await asyncio.wait_for(self.changed.wait_for(partial(_grew, event, len(chunks))), wait)
            except asyncio.TimeoutError:
                break
        await response.write_eof()
        return response


def _grew(event: dict[str, Any], count: int) -> bool:
    return len(event["data"]["chunks"]) > count


# --- helpers -------------------------------------------------------------------------------


@dataclass
class Recorder:
    statuses: list[str] = field(default_factory=list)
    saved: list[dict[str, Any]] = field(default_factory=list)


def context(
    text: str = "hello there",
    *,
    config: dict[str, Any] | None = None,
    history: list[ContextMessage] | None = None,
    state: dict[str, Any] | None = None,
    recorder: Recorder | None = None,
) -> AgentContext:
    recorder = recorder or Recorder()

    async def save_state(new_state: dict[str, Any]) -> None:
        recorder.saved.append(json.loads(json.dumps(new_state)))

    async def report_status(status: str) -> None:
        recorder.statuses.append(status)

    return AgentContext(
        session_id=1,
        session_key="s1",
        workspace_slug="acme",
        agent_key="bot",
        agent_name="Bot",
        config=config or {},
        message=ContextMessage("m9", 9, "user", "alice", text),
        history=history or [],
        state=state if state is not None else {},
        save_state=save_state,
        report_status=report_status,
    )


async def collect(backend_name: str, ctx: AgentContext) -> list[str]:
    return [chunk async for chunk in make_backend(backend_name, ctx.config).stream(ctx)]


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    """The fake providers listen on 127.0.0.1, which agents may call only when the operator allows it."""
    settings.CHAT = dataclasses.replace(
        settings.CHAT, agent_allowed_hosts=("127.0.0.1", "localhost"), agent_allow_private_networks=True
    )


@pytest.fixture(autouse=True)
def _fresh_rotation():
    openai_backend._rotation.clear()
    yield
    openai_backend._rotation.clear()


@pytest.fixture
async def fake_openai():
    server = FakeOpenAI()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def fake_parlant():
    server = FakeParlant()
    await server.start()
    yield server
    await server.stop()


def openai_config(server: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": f"{server.url}/v1",
        "model": "test-model",
        "api_keys": ["sk-one-1111", "sk-two-2222", "sk-three-3333"],
        **extra,
    }


# --- openai ---------------------------------------------------------------------------------


async def test_openai_streams_deltas_in_order(fake_openai):
    history = [
        ContextMessage("m1", 1, "user", "bob", "earlier question"),
        ContextMessage("agent-m1", 2, "agent", "Bot", "earlier answer"),
        ContextMessage("agent-m1-error", 3, "system", "system", "Bot could not answer."),
    ]
    ctx = context(
        "what now?", config=openai_config(fake_openai, system_prompt="Be brief.", temperature=0.1), history=history
    )
    chunks = await collect("openai", ctx)
    assert chunks == ["Hello", " from", " the", " model"]
    [request] = fake_openai.requests
    assert request.key == "sk-one-1111"
    assert request.body["stream"] is True and request.body["model"] == "test-model"
    assert request.body["temperature"] == 0.1
    assert request.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "earlier question", "name": "bob"},
        {"role": "assistant", "content": "earlier answer"},
        {"role": "user", "content": "what now?", "name": "alice"},
    ]


async def test_openai_429_rotates_to_the_next_key_and_remembers(fake_openai, caplog):
    fake_openai.rate_limited = {"sk-one-1111"}
    caplog.set_level(logging.DEBUG)
    assert "".join(await collect("openai", context(config=openai_config(fake_openai)))) == "Hello from the model"
    assert [(r.key, r.status) for r in fake_openai.requests] == [("sk-one-1111", 429), ("sk-two-2222", 200)]
    # The next run starts after the key that was rate limited.
    await collect("openai", context(config=openai_config(fake_openai)))
    assert fake_openai.requests[-1].key == "sk-two-2222"
    assert "sk-one" not in caplog.text and "sk-two" not in caplog.text
    assert "429" in caplog.text


async def test_openai_5xx_rotates_and_all_keys_failing_is_an_error(fake_openai, caplog):
    fake_openai.failing = {"sk-one-1111", "sk-two-2222", "sk-three-3333"}
    with pytest.raises(BackendError) as raised:
        await collect("openai", context(config=openai_config(fake_openai)))
    assert raised.value.code == "upstream_error"
    assert [r.key for r in fake_openai.requests] == ["sk-one-1111", "sk-two-2222", "sk-three-3333"]
    assert "sk-" not in caplog.text and "sk-" not in raised.value.message


async def test_openai_every_key_rate_limited(fake_openai):
    fake_openai.rate_limited = {"sk-one-1111", "sk-two-2222", "sk-three-3333"}
    with pytest.raises(BackendError) as raised:
        await collect("openai", context(config=openai_config(fake_openai)))
    assert raised.value.code == "rate_limited"


async def test_openai_stream_cut_off_halfway(fake_openai):
    fake_openai.reply = "one two three four five six"
    fake_openai.cut_after = 3
    got: list[str] = []
    ctx = context(config=openai_config(fake_openai))
    with pytest.raises(BackendError) as raised:
        async for chunk in make_backend("openai", ctx.config).stream(ctx):
            got.append(chunk)
    assert got == ["one", " two", " three"]
    assert raised.value.code == "stream_interrupted"
    # Nothing is retried once text was streamed.
    assert len(fake_openai.requests) == 1


async def test_openai_keys_from_numbered_environment_variables(fake_openai, monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_API_KEY_1", "OPENAI_API_KEY_2", "OPENAI_API_KEY_3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY_1", "sk-env-one")
    monkeypatch.setenv("OPENAI_API_KEY_2", "sk-env-two")
    fake_openai.rate_limited = {"sk-env-one"}
    config = {"base_url": f"{fake_openai.url}/v1", "model": "m"}
    assert "".join(await collect("openai", context(config=config))) == "Hello from the model"
    assert [r.key for r in fake_openai.requests] == ["sk-env-one", "sk-env-two"]
    # Named variables (CHAT_AGENT_KEY_*) instead of the default names.
    monkeypatch.setenv("CHAT_AGENT_KEY_MINE", "sk-mine")
    await collect("openai", context(config={**config, "api_key_env": "CHAT_AGENT_KEY_MINE"}))
    assert fake_openai.requests[-1].key == "sk-mine"


async def test_openai_without_any_key_sends_no_authorization(fake_openai, monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_API_KEY_1", "OPENAI_API_KEY_2", "OPENAI_API_KEY_3"):
        monkeypatch.delenv(name, raising=False)
    await collect("openai", context(config={"base_url": f"{fake_openai.url}/v1", "model": "m"}))
    assert fake_openai.requests[0].key is None


async def test_openai_context_is_bounded(fake_openai):
    history = [ContextMessage(f"m{i}", i, "user", "bob", f"message number {i}") for i in range(1, 41)]
    await collect("openai", context("last", config=openai_config(fake_openai, max_context_messages=5), history=history))
    sent = fake_openai.requests[-1].body["messages"]
    assert [m["content"] for m in sent] == [f"message number {i}" for i in range(36, 41)] + ["last"]
    # A character budget keeps the newest messages that fit.
    await collect("openai", context("last", config=openai_config(fake_openai, max_context_chars=60), history=history))
    sent = fake_openai.requests[-1].body["messages"]
    assert [m["content"] for m in sent] == ["message number 38", "message number 39", "message number 40", "last"]


async def test_openai_unreachable_is_a_backend_error():
    config = {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": "sk-x"}
    with pytest.raises(BackendError) as raised:
        await collect("openai", context(config=config))
    assert raised.value.code == "backend_unreachable"


async def test_openai_needs_a_model(fake_openai):
    with pytest.raises(BackendError) as raised:
        await collect("openai", context(config={"base_url": fake_openai.url}))
    assert raised.value.code == "agent_misconfigured"


# --- parlant --------------------------------------------------------------------------------


def parlant_config(server: FakeParlant, **extra: Any) -> dict[str, Any]:
    return {"url": server.url, "agent_id": "ag_1", "wait_for_data_s": 2, **extra}


async def test_parlant_turn_creates_session_posts_and_long_polls(fake_parlant):
    recorder = Recorder()
    state: dict[str, Any] = {}
    ctx = context(
        "where is my order?", config=parlant_config(fake_parlant, customer_id="cust_7"), state=state, recorder=recorder
    )
    assert await collect("parlant", ctx) == ["Parlant heard: where is my order?"]
    [created] = fake_parlant.session_requests
    assert created["query"] == {"allow_greeting": "false"}
    assert created["body"]["agent_id"] == "ag_1" and created["body"]["customer_id"] == "cust_7"
    [post] = fake_parlant.event_posts
    assert post["body"] == {"kind": "message", "source": "customer", "message": "where is my order?"}
    # Long-polling from the offset after our message, moving forward, for messages and statuses.
    assert all(p["kinds"] == "message,tool,status" and p["wait_for_data"] == "2" for p in fake_parlant.polls)
    offsets = [int(p["min_offset"]) for p in fake_parlant.polls]
    assert offsets[0] == 1 and offsets == sorted(offsets)
    assert recorder.statuses[-1] == "ready" and "typing" in recorder.statuses and "processing" in recorder.statuses
    assert recorder.saved == [{"parlant": {"url": fake_parlant.url, "agent_id": "ag_1", "session_id": "sess_1"}}]

    # The next message of the same chat session reuses the Parlant session.
    first_turn_polls = len(fake_parlant.polls)
    second = context("and now?", config=parlant_config(fake_parlant), state=recorder.saved[-1])
    assert await collect("parlant", second) == ["Parlant heard: and now?"]
    assert len(fake_parlant.session_requests) == 1
    assert fake_parlant.event_posts[-1]["sid"] == "sess_1"
    # It only read events after its own message: the first turn's events were not replayed.
    assert int(fake_parlant.polls[first_turn_polls]["min_offset"]) == 7


async def test_parlant_long_poll_timeouts_are_retried(fake_parlant):
    fake_parlant.think_s = 1.3
    ctx = context("slow one", config=parlant_config(fake_parlant, wait_for_data_s=1))
    assert await collect("parlant", ctx) == ["Parlant heard: slow one"]
    assert fake_parlant.timeouts >= 1


async def test_parlant_several_messages_in_one_turn(fake_parlant):
    fake_parlant.answer = lambda text: ["First part.", "Second part."]
    assert await collect("parlant", context(config=parlant_config(fake_parlant))) == ["First part.", "\n\nSecond part."]


async def test_parlant_streaming_message_is_followed_as_it_grows(fake_parlant):
    fake_parlant.streaming = True
    fake_parlant.step_s = 0.05
    got = await collect("parlant", context("hey you", config=parlant_config(fake_parlant)))
    assert got == ["Parlant", " heard:", " hey", " you"]
    assert fake_parlant.event_streams == 1


async def test_parlant_error_status_fails_the_run(fake_parlant):
    fake_parlant.fail = True
    with pytest.raises(BackendError) as raised:
        await collect("parlant", context(config=parlant_config(fake_parlant)))
    assert raised.value.code == "upstream_error"


async def test_parlant_session_gone_is_recreated(fake_parlant):
    recorder = Recorder()
    await collect("parlant", context(config=parlant_config(fake_parlant), recorder=recorder))
    fake_parlant.forget_sessions()
    again = context("again", config=parlant_config(fake_parlant), state=recorder.saved[-1], recorder=recorder)
    assert await collect("parlant", again) == ["Parlant heard: again"]
    assert len(fake_parlant.session_requests) == 2
    assert recorder.saved[-1]["parlant"]["session_id"] == "sess_2"


async def test_parlant_new_agent_id_gets_a_new_session(fake_parlant):
    recorder = Recorder()
    await collect("parlant", context(config=parlant_config(fake_parlant), recorder=recorder))
    await collect("parlant", context(config=parlant_config(fake_parlant, agent_id="ag_2"), state=recorder.saved[-1]))
    assert [r["body"]["agent_id"] for r in fake_parlant.session_requests] == ["ag_1", "ag_2"]


async def test_parlant_unreachable_is_a_backend_error():
    with pytest.raises(BackendError) as raised:
        await collect("parlant", context(config={"url": "http://127.0.0.1:9", "agent_id": "a"}))
    assert raised.value.code == "backend_error"


async def test_parlant_504_retries_are_bounded(fake_parlant, monkeypatch):
    monkeypatch.setattr(parlant_backend, "EMPTY_POLL_BACKOFF_S", 0.01)
    fake_parlant.always_504 = True
    with pytest.raises(BackendError) as raised:
        await collect("parlant", context(config=parlant_config(fake_parlant)))
    assert raised.value.code == "timeout"
    assert fake_parlant.timeouts == len(fake_parlant.polls) == parlant_backend.MAX_EMPTY_POLLS + 1


# --- where backends may connect ----------------------------------------------------------------


async def test_the_default_policy_refuses_the_providers_on_loopback(fake_openai, fake_parlant, settings):
    for hosts in (("api.openai.com",), ("*",), ("127.0.0.1", "localhost")):
        settings.CHAT = dataclasses.replace(
            settings.CHAT, agent_allowed_hosts=hosts, agent_allow_private_networks=False
        )
        for backend, config in (("openai", openai_config(fake_openai)), ("parlant", parlant_config(fake_parlant))):
            with pytest.raises(BackendError) as raised:
                await collect(backend, context(config=config))
            assert raised.value.code == "agent_misconfigured"
        with pytest.raises(BackendError):  # a name resolving to loopback
            await collect(
                "openai",
                context(
                    config=openai_config(
                        fake_openai, base_url=fake_openai.url.replace("127.0.0.1", "localhost") + "/v1"
                    )
                ),
            )
    assert fake_openai.requests == [] and fake_parlant.session_requests == []


async def test_connections_go_only_to_checked_addresses(fake_openai, settings, monkeypatch):
    """Should a name resolve to a public address when checked and to loopback when connecting (DNS rebinding), the connection is still refused."""
    settings.CHAT = dataclasses.replace(
        settings.CHAT, agent_allowed_hosts=("localhost",), agent_allow_private_networks=False
    )

    async def resolves_public(host: str, port: int, policy: Any) -> None:
        return None

    monkeypatch.setattr(network, "resolve_checked", resolves_public)
    config = openai_config(fake_openai, base_url=fake_openai.url.replace("127.0.0.1", "localhost") + "/v1")
    with pytest.raises(BackendError) as raised:
        await collect("openai", context(config=config))
    assert raised.value.code == "agent_misconfigured"
    assert fake_openai.requests == []


async def test_environment_keys_are_read_only_from_the_prefix_and_only_for_listed_hosts(
    fake_openai, settings, monkeypatch
):
    monkeypatch.setenv("DJANGO_SECRET_KEY", "the-servers-secret")
    monkeypatch.setenv("CHAT_AGENT_KEY_OPENAI", "sk-operator")
    config = {"base_url": f"{fake_openai.url}/v1", "model": "m"}
    with pytest.raises(BackendError) as raised:
        await collect("openai", context(config={**config, "api_key_env": "DJANGO_SECRET_KEY"}))
    assert raised.value.code == "agent_misconfigured"
    # Allowed only through "*": the operator's keys are not sent there.
    settings.CHAT = dataclasses.replace(settings.CHAT, agent_allowed_hosts=("*",))
    with pytest.raises(BackendError):
        await collect("openai", context(config={**config, "api_key_env": "CHAT_AGENT_KEY_OPENAI"}))
    assert fake_openai.requests == []
    await collect("openai", context(config={**config, "api_key": "sk-own"}))
    assert [r.key for r in fake_openai.requests] == ["sk-own"]


async def test_redirects_are_not_followed(settings):
    """A provider answering 307 to the metadata address gets an error, not a second request."""

    class Redirecting(FakeServer):
        def app(self) -> web.Application:
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self.redirect)
            return app

        async def redirect(self, request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect("http://169.254.169.254/latest/meta-data/")

    server = await Redirecting().start()
    try:
        with pytest.raises(BackendError) as raised:
            await collect("openai", context(config={"base_url": f"{server.url}/v1", "model": "m", "api_key": "sk-x"}))
        assert raised.value.code == "upstream_error"
    finally:
        await server.stop()


# --- echo -----------------------------------------------------------------------------------


async def test_echo_streams_word_by_word_with_its_delay():
    started = time.monotonic()
    chunks = await collect("echo", context("a b  c", config={"delay_ms": 30}))
    assert chunks == ["Echo:", " a", " b", " c"]
    assert time.monotonic() - started >= 4 * 0.03 * 0.9


def test_threaded_server_serves_from_another_thread():
    import urllib.request

    with ThreadedServer(FakeParlant()) as server:
        request = urllib.request.Request(
            f"{server.url}/sessions?allow_greeting=false", data=b'{"agent_id": "a"}', method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["id"] == "sess_1"
