"""Builds this process's real-time stack: Engine.IO servers, the Socket.IO server, namespaces.

The composition root for the real-time side, next to ``asgi.py``: the only
place that knows which application runs on top of the protocol (the chat,
or the conformance behaviour) and reads the settings that shape it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from channels_socketio import observer
from channels_socketio.conformance import NAMESPACES, EchoEngineHandler, conformance_namespace
from channels_socketio.protocol.server import SocketOptions, SocketServer
from channels_socketio.transport.broker import Broker, LocalBroker
from channels_socketio.transport.redis_broker import RedisBroker
from channels_socketio.transport.server import EngineServer
from channels_socketio.transport.session import EngineOptions
from channels_socketio.transport.worker_channel import WorkerChannel
from chat.agents import runner as agent_runner
from chat.events import chat_namespace
from chat.services import presence
from chat.services.writer import writer
from monitoring import observer as engine_metrics
from monitoring import registry
from security import events as security_events


@dataclass(frozen=True)
class Realtime:
    sockets: SocketServer
    engine: EngineServer
    #: The bare Engine.IO echo endpoint; only in conformance mode.
    echo_engine: EngineServer | None


def build() -> Realtime:
    config = settings.CHAT
    observer.install(engine_metrics.EngineMetrics())
    options = EngineOptions(
        ping_interval_ms=config.ping_interval_ms,
        ping_timeout_ms=config.ping_timeout_ms,
        max_payload=config.max_payload,
        max_packets_per_post=config.max_packets_per_post,
        max_pending_sessions_per_address=config.pending_sessions_per_address,
        max_buffered_packets=config.max_buffered_packets,
        max_buffered_bytes=config.max_buffered_bytes,
    )
    worker = WorkerChannel(_broker(config.redis_url))
    # Conformance mode answers an unknown namespace exactly as the reference server does;
    # the chat keeps the error's data.code, as for every other refusal.
    socket_options = SocketOptions(
        connect_timeout_ms=config.connect_timeout_ms,
        connect_error_data=not config.conformance,
        max_pending_events=config.max_pending_events,
    )
    sockets = SocketServer(worker, options=socket_options)
    echo_engine = None
    if config.conformance:
        for name in NAMESPACES:
            sockets.register(conformance_namespace(name))
        echo_worker = WorkerChannel(_broker(config.redis_url))
        echo_engine = EngineServer(EchoEngineHandler(), options, config.origin_allowed, echo_worker)
    else:
        sockets.register(chat_namespace())
    engine = EngineServer(sockets, options, config.origin_allowed, worker)
    _report_buffers(engine, sockets)
    return Realtime(sockets=sockets, engine=engine, echo_engine=echo_engine)


def _broker(redis_url: str) -> Broker:
    """Redis publish/subscribe between the workers when Redis is configured; otherwise one process."""
    return RedisBroker(redis_url) if redis_url else LocalBroker()


def _report_buffers(engine: EngineServer, sockets: SocketServer) -> None:
    """Tell monitoring what this process holds in memory, and where to count sessions per workspace."""
    registry.add_buffers("engine", engine.buffer_sizes)
    registry.add_buffers("sockets", sockets.buffer_sizes)
    registry.add_buffers(
        "acks", lambda: {"pending_acks": {"items": sockets.pending_acks(list(engine.sessions.values()))}}
    )
    registry.add_buffers("writer", lambda: {"message_writer_queue": {"items": writer.queued}})
    registry.add_buffers("security", lambda: {"security_event_queue": {"items": security_events.recorder.pending}})
    registry.add_buffers("agents", lambda: {"agent_runs_local": {"items": agent_runner.runner.active_runs}})
    registry.set_workspace_sessions(presence.sessions_per_workspace)
