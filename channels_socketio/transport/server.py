"""The process's Engine.IO sessions and the checks every request passes first.

Layer: transport.  The polling and WebSocket consumers share one
:class:`EngineServer`; it owns the session table, the options sent in the
handshake, and the request verification the reference server performs
(transport, origin, protocol version, session id), in that order.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Callable

from channels_socketio.errors import (
    BadHandshakeMethod,
    BadRequest,
    Forbidden,
    TooManySessions,
    UnknownSession,
    UnknownTransport,
    UnsupportedProtocolVersion,
)
from channels_socketio.transport.relay import PollingRelay, owner_of, session_id_for
from channels_socketio.transport.scope import header, query_params, request_origin
from channels_socketio.transport.session import EngineHandler, EngineOptions, EngineSession
from channels_socketio.transport.worker_channel import WorkerChannel

logger = logging.getLogger(__name__)

TRANSPORTS = ("polling", "websocket")


def client_address(scope: dict[str, Any]) -> str:
    """The peer address the ASGI server reports (after any trusted proxy headers)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


class EngineServer:
    """Sessions of this worker process, keyed by session id."""

    def __init__(
        self,
        handler: EngineHandler,
        options: EngineOptions,
        origin_allowed: Callable[[str, str], bool],
        worker: WorkerChannel,
    ) -> None:
        self.handler = handler
        self.options = options
        self.origin_allowed = origin_allowed
        self.worker = worker
        self.sessions: dict[str, EngineSession] = {}
        #: Sessions not yet established, per client address (``max_pending_sessions_per_address``).
        self.pending: Counter[str] = Counter()
        self.relay = PollingRelay(self.sessions, options, worker)

    def verify(self, scope: dict[str, Any], method: str) -> EngineSession | str | None:
        """Check a request before any handler runs.

        Returns ``None`` for a handshake, the local session a request names,
        or, for a polling request whose session another worker owns, that
        worker's channel (the request is then relayed).  Raises the
        :class:`~channels_socketio.errors.EngineRequestError` the spec names.
        """
        params = query_params(scope)
        transport = params.get("transport")
        if transport not in TRANSPORTS:
            raise UnknownTransport()
        scope_transport = "websocket" if scope["type"] == "websocket" else "polling"
        if transport != scope_transport:
            raise BadRequest("Transport does not match the request.")
        origin = header(scope, b"origin")
        if origin is not None and not self.origin_allowed(origin, request_origin(scope)):
            raise Forbidden()
        sid = params.get("sid")
        if sid is None and method != "GET":
            raise BadHandshakeMethod()
        # Every request, not only the handshake: a session speaks the version it was opened
        # with (4), so an upgrade asking for another is refused, not answered with a probe.
        if params.get("EIO") != "4":
            raise UnsupportedProtocolVersion()
        if sid is None:
            limit = self.options.max_pending_sessions_per_address
            if limit and self.pending[client_address(scope)] >= limit:
                raise TooManySessions()
            return None
        session = self.sessions.get(sid)
        if session is None:
            owner = owner_of(sid)
            if transport == "polling" and owner is not None and owner != self.worker.name:
                return owner
            raise UnknownSession()
        if session.closed and not (method == "GET" and transport == "polling" and session.draining):
            raise UnknownSession()
        if transport == "polling" and session.transport != "polling":
            raise BadRequest("Session is not using polling.")
        return session

    async def create_session(self, scope: dict[str, Any], transport: str) -> EngineSession:
        sid = session_id_for(await self.worker.start())
        session = EngineSession(
            sid=sid,
            scope=scope,
            transport=transport,
            options=self.options,
            handler=self.handler,
            on_closed=self._forget,
            on_established=self._established,
        )
        self.sessions[sid] = session
        self.pending[client_address(scope)] += 1
        return session

    def _established(self, session: EngineSession) -> None:
        """No longer pending: established, or gone."""
        address = client_address(session.scope)
        self.pending[address] -= 1
        if self.pending[address] <= 0:
            del self.pending[address]

    def _forget(self, session: EngineSession) -> None:
        if self.sessions.pop(session.sid, None) is not None and not session.established:
            self._established(session)

    def buffer_sizes(self) -> dict[str, dict[str, int]]:
        """The sizes of this server's bounded buffers, for whoever monitors the process."""
        sessions = list(self.sessions.values())
        return {
            "engine_sessions": {"items": len(sessions)},
            "polling_outbox": {
                "items": sum(session.queued_packets for session in sessions),
                "bytes": sum(session.queued_bytes for session in sessions),
            },
            "websocket_outbox": {
                "items": sum(session.queued_frames for session in sessions),
                "bytes": sum(session.queued_frame_bytes for session in sessions),
            },
            # polling requests relayed to or from other workers
            "relay_waiting": {"items": self.relay.waiting},
            "relay_serving": {"items": self.relay.serving},
        }

    async def close_all(self, reason: str) -> None:
        for session in list(self.sessions.values()):
            await session.close(reason)
