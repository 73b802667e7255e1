"""``parlant``: a client for a Parlant server (https://parlant.io), over its REST API.

Config::

    {
      "url": "http://127.0.0.1:8001",   # default
      "agent_id": "ag_123",             # required: the Parlant agent
      "customer_id": "cust_1",          # optional; without it Parlant makes a guest customer
      "api_key": "...",                 # optional, sent as Authorization: Bearer (masked everywhere)
      "wait_for_data_s": 30             # long-poll window per request (1..60)
    }

The URL must be on a host the operator allows, at an address it allows
(:mod:`chat.agents.network`): the default needs ``127.0.0.1`` in
``CHAT_AGENT_ALLOWED_HOSTS`` and ``CHAT_AGENT_ALLOW_PRIVATE_NETWORKS``.

Wire format, as documented for Parlant's sessions API (``/docs/api``, the
``parlant.api.sessions`` router) -- what we rely on:

1. ``POST /sessions?allow_greeting=false`` with ``{"agent_id", "customer_id"?, "title"}``
   answers ``200``/``201`` with a session whose ``id`` we keep.  This
   happens once per chat session and agent: the id is stored
   (``AgentSessionState``) with the URL and agent id it belongs to, and a
   new Parlant session is made only if those change or Parlant answers
   ``404`` for the stored one.
2. ``POST /sessions/{id}/events?moderation=none`` with
   ``{"kind": "message", "source": "customer", "message": <text>}`` answers
   the created event; its ``offset`` is where this turn starts.
3. ``GET /sessions/{id}/events?min_offset=N&kinds=message,tool,status&wait_for_data=S``
   long-polls: it answers as soon as events at offset >= N exist (a JSON
   list, offset order), or ``504`` when none came within ``S`` seconds, in
   which case we ask again after a short backoff (0.25 s doubling to 4 s),
   at most ``MAX_EMPTY_POLLS`` times in a row before the run fails with
   ``timeout``.  ``N`` moves past every event seen.
4. Events are ``{id, source, kind, offset, data, ...}``:

   - ``kind: "status"``: ``data = {"status", "acknowledged_offset", "data"}``.
     ``typing`` and ``processing`` show our typing indicator; ``ready``
     whose ``acknowledged_offset`` is at or after our message ends the turn
     (and hides it); ``error`` fails the run (``upstream_error``) and
     ``cancelled`` fails it (``upstream_cancelled``).  Statuses that
     acknowledge an earlier offset belong to an earlier turn and are skipped.
   - ``kind: "message"`` from ``ai_agent`` (or a human agent speaking for
     it): ``data.message`` is one message of the reply.  Several messages in
     one turn are streamed one after the other, separated by a blank line.
   - A message in Parlant's streaming mode carries ``data.chunks``: the
     pieces of its text so far, append-only, ending with ``null`` once it is
     complete.  We follow it as it grows with
     ``GET /sessions/{id}/events/{event_id}?sse=true&wait_for_data=S``
     (Server-Sent Events, each ``data:`` the whole event again whenever it
     changed, closing once ``chunks`` ends with ``null``) and pass on each
     new chunk as it appears.  A server that answers that request with JSON
     (no SSE) or closes the stream before the end is asked once more with
     ``?wait_for_completion=true`` for the rest.  A message without
     ``chunks`` (a server that does not stream) is passed on whole.
   - ``kind: "tool"`` (source ``system``): ``data.tool_calls`` is a list of
     ``{tool_id, arguments, result: {data, ...}}`` -- tools the Parlant
     engine ran for this turn; each is passed on as a completed tool step
     (name ``tool_id``, arguments as JSON, result ``result.data``).

Assumptions: no authentication unless ``api_key`` is set; Parlant's
``trace_id``/``correlation_id`` are not needed because offsets already
order the turn; a ``ready`` status without ``acknowledged_offset`` ends the
current turn.  The run's own timeout (``timeout_s`` or the server default)
bounds the whole exchange.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator

import aiohttp

from chat.agents import network
from chat.agents.backends.base import (
    MAX_WAIT_S,
    AgentBackend,
    AgentContext,
    BackendError,
    config_number,
    config_str,
)
from chat.agents.backends.sse import events as sse_events
from chat.agents.steps import COMPLETED, ToolCallDelta

logger = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8001"
DEFAULT_WAIT_S = 30
CONNECT_TIMEOUT_S = 10
AGENT_SOURCES = ("ai_agent", "human_agent_on_behalf_of_ai_agent", "human_agent")
MESSAGE_SEPARATOR = "\n\n"
#: Long polls in a row that may come back empty (504) before the run fails
#: with ``timeout``; between them we wait 0.25 s, doubling up to 4 s.
MAX_EMPTY_POLLS = 8
EMPTY_POLL_BACKOFF_S = 0.25
EMPTY_POLL_BACKOFF_MAX_S = 4.0


class _SessionGone(Exception):
    pass


class ParlantBackend(AgentBackend):
    name = "parlant"

    async def stream(self, context: AgentContext) -> AsyncIterator[str | ToolCallDelta]:
        url = config_str(self.config, "url", DEFAULT_URL).rstrip("/")
        agent_id = config_str(self.config, "agent_id")
        wait_s = int(config_number(self.config, "wait_for_data_s", DEFAULT_WAIT_S, minimum=1, maximum=MAX_WAIT_S))
        headers = {"Accept": "application/json"}
        api_key = self.config.get("api_key")
        if isinstance(api_key, str) and api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S, sock_read=wait_s + 30)
        try:
            session = await network.open_session(url, "url", base_url=url + "/", headers=headers, timeout=timeout)
            async with session as http:
                session_id = await self._session(http, context, url, agent_id, fresh=False)
                try:
                    offset = await self._post_message(http, session_id, context.message.content)
                except _SessionGone:
                    session_id = await self._session(http, context, url, agent_id, fresh=True)
                    offset = await self._post_message(http, session_id, context.message.content)
                async for text in self._read_turn(http, context, session_id, offset, wait_s):
                    yield text
        except aiohttp.ClientError as error:
            refused = network.refusal(error)
            if refused is not None:
                raise refused from None
            raise BackendError(f"Could not talk to the Parlant server ({type(error).__name__}).") from None

    async def _session(
        self, http: aiohttp.ClientSession, context: AgentContext, url: str, agent_id: str, *, fresh: bool
    ) -> str:
        known = context.state.get("parlant") or {}
        if not fresh and known.get("url") == url and known.get("agent_id") == agent_id and known.get("session_id"):
            return str(known["session_id"])
        body: dict[str, Any] = {"agent_id": agent_id, "title": f"{context.workspace_slug}/{context.session_key}"[:200]}
        customer_id = self.config.get("customer_id")
        if isinstance(customer_id, str) and customer_id:
            body["customer_id"] = customer_id
        async with http.post(
            "sessions", params={"allow_greeting": "false"}, json=body, allow_redirects=False
        ) as response:
            if response.status not in (200, 201):
                raise BackendError(
                    f"Parlant refused to create a session (HTTP {response.status}).", code="upstream_error"
                )
            created = await _json(response)
        session_id = created.get("id") if isinstance(created, dict) else None
        if not isinstance(session_id, str) or not session_id:
            raise BackendError("Parlant created a session without an id.", code="upstream_error")
        context.state["parlant"] = {"url": url, "agent_id": agent_id, "session_id": session_id}
        await context.save_state(context.state)
        return session_id

    async def _post_message(self, http: aiohttp.ClientSession, session_id: str, text: str) -> int:
        body = {"kind": "message", "source": "customer", "message": text}
        async with http.post(
            f"sessions/{session_id}/events", params={"moderation": "none"}, json=body, allow_redirects=False
        ) as response:
            if response.status == 404:
                raise _SessionGone()
            if response.status not in (200, 201):
                raise BackendError(f"Parlant refused the message (HTTP {response.status}).", code="upstream_error")
            event = await _json(response)
        offset = event.get("offset") if isinstance(event, dict) else None
        if not isinstance(offset, int):
            raise BackendError("Parlant answered an event without an offset.", code="upstream_error")
        return offset

    async def _read_turn(
        self, http: aiohttp.ClientSession, context: AgentContext, session_id: str, offset: int, wait_s: int
    ) -> AsyncIterator[str | ToolCallDelta]:
        next_offset = offset + 1
        sent_any = False
        empty_polls = 0
        while True:
            params = {"min_offset": str(next_offset), "kinds": "message,tool,status", "wait_for_data": str(wait_s)}
            async with http.get(f"sessions/{session_id}/events", params=params, allow_redirects=False) as response:
                if response.status == 504:
                    events = []
                elif response.status != 200:
                    raise BackendError(
                        f"Parlant failed to list events (HTTP {response.status}).", code="upstream_error"
                    )
                else:
                    events = await _json(response)
            if not isinstance(events, list):
                raise BackendError("Parlant answered events in an unknown shape.", code="upstream_error")
            if not events:
                # A long poll that timed out (504) or came back empty: ask again, a bounded number of times.
                empty_polls += 1
                if empty_polls > MAX_EMPTY_POLLS:
                    raise BackendError(f"Parlant sent nothing in {MAX_EMPTY_POLLS} long polls.", code="timeout")
                await asyncio.sleep(min(EMPTY_POLL_BACKOFF_S * 2 ** (empty_polls - 1), EMPTY_POLL_BACKOFF_MAX_S))
                continue
            empty_polls = 0
            for event in sorted((e for e in events if isinstance(e, dict)), key=lambda e: e.get("offset", 0)):
                if isinstance(event.get("offset"), int):
                    next_offset = max(next_offset, event["offset"] + 1)
                data = event.get("data") if isinstance(event.get("data"), dict) else {}
                if event.get("kind") == "status":
                    acknowledged = data.get("acknowledged_offset")
                    if isinstance(acknowledged, int) and acknowledged < offset:
                        continue
                    status = data.get("status")
                    if status in ("typing", "processing"):
                        await context.report_status(status)
                    elif status == "ready":
                        await context.report_status("ready")
                        return
                    elif status == "error":
                        raise BackendError("The Parlant agent reported an error.", code="upstream_error")
                    elif status == "cancelled":
                        raise BackendError("Parlant cancelled the agent's reply.", code="upstream_cancelled")
                elif event.get("kind") == "tool":
                    for step in tool_steps(event):
                        yield step
                elif event.get("kind") == "message" and event.get("source") in AGENT_SOURCES:
                    message = ParlantMessage(separator=MESSAGE_SEPARATOR if sent_any else "")
                    async for text in self._follow(http, session_id, event, message, wait_s):
                        sent_any = True
                        yield text

    async def _follow(
        self, http: aiohttp.ClientSession, session_id: str, event: dict, message: ParlantMessage, wait_s: int
    ) -> AsyncIterator[str]:
        """The text of one agent message as it grows (see the module docstring)."""
        for text in message.update(event):
            yield text
        if message.complete or not event.get("id"):
            return
        path = f"sessions/{session_id}/events/{event['id']}"
        params = {"sse": "true", "wait_for_data": str(wait_s)}
        async with http.get(path, params=params, allow_redirects=False) as response:
            if response.status != 200:
                raise BackendError(
                    f"Parlant failed to stream a message (HTTP {response.status}).", code="upstream_error"
                )
            if response.content_type == "text/event-stream":
                async for data in sse_events(response):
                    try:
                        update = json.loads(data)
                    except json.JSONDecodeError:
                        raise BackendError(
                            "Parlant streamed something that is not JSON.", code="upstream_error"
                        ) from None
                    for text in message.update(update):
                        yield text
                    if message.complete:
                        return
            else:
                for text in message.update(await _json(response)):
                    yield text
        if message.complete:
            return
        # No SSE here, or the stream ended early: wait for the whole message once.
        params = {"wait_for_completion": "true", "wait_for_data": str(wait_s)}
        async with http.get(path, params=params, allow_redirects=False) as response:
            if response.status != 200:
                raise BackendError(
                    f"Parlant failed to complete a message (HTTP {response.status}).", code="upstream_error"
                )
            for text in message.update(await _json(response), final=True):
                yield text


class ParlantMessage:
    """One Parlant message event as it grows: what of its text was passed on already."""

    def __init__(self, separator: str = "") -> None:
        self.separator = separator
        self.seen = 0
        self.sent = False
        self.complete = False

    def update(self, event: Any, *, final: bool = False) -> list[str]:
        """The new text in this version of the event (the separator before the first piece)."""
        data = event.get("data") if isinstance(event, dict) and isinstance(event.get("data"), dict) else {}
        chunks = data.get("chunks")
        pieces: list[str] = []
        if isinstance(chunks, list):
            pieces = [c for c in chunks[self.seen :] if isinstance(c, str) and c]
            self.seen = max(self.seen, len(chunks))
            self.complete = bool(chunks) and chunks[-1] is None
        message = data.get("message")
        if not isinstance(chunks, list) or ((self.complete or final) and not self.sent and not pieces):
            # A whole message (a server that does not stream), or a streamed one whose chunks were empty.
            self.complete = True
            pieces = [message] if isinstance(message, str) and message and not self.sent else []
        if final:
            self.complete = True
        if pieces and not self.sent:
            pieces[0] = self.separator + pieces[0]
            self.sent = True
        return pieces


def tool_steps(event: dict[str, Any]) -> list[ToolCallDelta]:
    """The tool calls of a Parlant ``tool`` event, each as a completed step."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    calls = data.get("tool_calls")
    steps: list[ToolCallDelta] = []
    for i, call in enumerate(calls if isinstance(calls, list) else []):
        if not isinstance(call, dict):
            continue
        name = call.get("tool_id") or call.get("tool_name") or "tool"
        arguments = call.get("arguments") if isinstance(call.get("arguments"), dict) else {}
        result = call.get("result")
        result_data = result.get("data") if isinstance(result, dict) else result
        steps.append(
            ToolCallDelta(
                f"{event.get('id') or 'tool'}:{i}",
                str(name),
                json.dumps(arguments, ensure_ascii=False, sort_keys=True, default=str),
                COMPLETED,
                result_data if result_data is not None else "",
            )
        )
    return steps


async def _json(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        raise BackendError("Parlant answered something that is not JSON.", code="upstream_error") from None
