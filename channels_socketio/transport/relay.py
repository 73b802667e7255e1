"""Long-polling without sticky sessions: requests relayed to the worker that owns the session.

Layer: transport.

Every session id names the channel of the worker that created it.  When a
polling request reaches another worker (a load balancer without sticky
sessions), that worker forwards it over the channel layer and answers the
HTTP request with what the owner replies; the owner serves it exactly as
if it had arrived there.  If the owner is gone, the request times out and
is answered "Session ID unknown", so the client reconnects.

Messages: ``eio.relay.request`` (to the owner), ``eio.relay.reply`` (back),
``eio.relay.cancel`` (the client went away while its GET waited).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from typing import Any, Mapping

from channels_socketio.errors import UnknownSession
from channels_socketio.transport.polling_exchange import PollingResponse, error_response, serve_polling
from channels_socketio.transport.session import EngineOptions, EngineSession
from channels_socketio.transport.worker_channel import WorkerChannel

logger = logging.getLogger(__name__)

REQUEST, REPLY, CANCEL = "eio.relay.request", "eio.relay.reply", "eio.relay.cancel"
#: A POST is answered as soon as its packets are handled.
POST_TIMEOUT_S = 10.0
#: Worker channel names as the channel layers make them; anything else in a
#: session id is refused, so a client cannot address arbitrary channels.
WORKER_CHANNEL = re.compile(r"worker\.[0-9a-f]{24}")
SEPARATOR = "~"


def session_id_for(worker_channel: str) -> str:
    return f"{secrets.token_urlsafe(15)}{SEPARATOR}{worker_channel}"


def owner_of(sid: str) -> str | None:
    """The worker channel a session id names, if it is well-formed."""
    _, separator, channel = sid.partition(SEPARATOR)
    if not separator or not WORKER_CHANNEL.fullmatch(channel):
        return None
    return channel


class PollingRelay:
    def __init__(self, sessions: Mapping[str, EngineSession], options: EngineOptions, worker: WorkerChannel) -> None:
        #: This worker's sessions (the engine server's table), to serve requests relayed here.
        self.sessions = sessions
        self.options = options
        self.worker = worker
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._serving: dict[str, asyncio.Task[None]] = {}
        worker.route(REQUEST, self._on_request)
        worker.route(REPLY, self._on_reply)
        worker.route(CANCEL, self._on_cancel)

    @property
    def waiting(self) -> int:
        """Requests this worker forwarded and waits to hear back about."""
        return len(self._waiting)

    @property
    def serving(self) -> int:
        """Requests other workers forwarded here, being served."""
        return len(self._serving)

    # --- the worker that received the HTTP request ------------------------------------------

    async def forward(self, owner: str, sid: str, method: str, body: bytes, too_large: bool) -> PollingResponse:
        me = await self.worker.start()
        rid = secrets.token_hex(8)
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = reply
        options = self.options
        heartbeat_s = (options.ping_interval_ms + options.ping_timeout_ms) / 1000
        timeout = POST_TIMEOUT_S if method == "POST" else heartbeat_s + 5
        request = {"type": REQUEST, "rid": rid, "reply_to": me, "sid": sid, "method": method, "body": body}
        if too_large:
            request["too_large"] = True
        try:
            await self.worker.send(owner, request)
            answer = await asyncio.wait_for(reply, timeout)
        except asyncio.TimeoutError:
            raise UnknownSession() from None
        except asyncio.CancelledError:
            await asyncio.shield(self.worker.send(owner, {"type": CANCEL, "rid": rid}))
            raise
        finally:
            self._waiting.pop(rid, None)
        return PollingResponse(int(answer["status"]), bytes(answer["body"]), bytes(answer["content_type"]))

    async def _on_reply(self, message: dict[str, Any]) -> None:
        reply = self._waiting.get(message.get("rid", ""))
        if reply is not None and not reply.done():
            reply.set_result(message)

    # --- the worker that owns the session -------------------------------------------------

    async def _on_request(self, message: dict[str, Any]) -> None:
        # Served in a task: a GET may wait for a whole heartbeat interval.
        rid = str(message.get("rid", ""))
        task = asyncio.get_running_loop().create_task(self._serve(message))
        self._serving[rid] = task
        task.add_done_callback(lambda _: self._serving.pop(rid, None))

    async def _serve(self, message: dict[str, Any]) -> None:
        try:
            session = self.sessions.get(str(message.get("sid", "")))
            method = "POST" if message.get("method") == "POST" else "GET"
            if session is None or (session.closed and not (method == "GET" and session.draining)):
                raise UnknownSession()
            response = await serve_polling(
                session, method, bytes(message.get("body") or b""), bool(message.get("too_large"))
            )
        except asyncio.CancelledError:
            return
        except Exception as error:
            response = error_response(error)
        reply = {"type": REPLY, "rid": message.get("rid"), "status": response.status, "body": response.body}
        reply["content_type"] = response.content_type
        await self.worker.send(str(message["reply_to"]), reply)

    async def _on_cancel(self, message: dict[str, Any]) -> None:
        task = self._serving.get(str(message.get("rid", "")))
        if task is not None:
            task.cancel()
