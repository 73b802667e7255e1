"""Builds this process's real-time stack: Engine.IO servers, the Socket.IO server, namespaces.

The composition root for the real-time side, next to ``asgi.py``: the only
place that knows which application runs on top of the protocol (the chat,
or the conformance behaviour) and reads the settings that shape it.
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.layers import get_channel_layer
from django.conf import settings

from channels_socketio import observer
from channels_socketio.conformance import NAMESPACES, EchoEngineHandler, conformance_namespace
from channels_socketio.protocol.server import SocketServer
from channels_socketio.transport.server import EngineServer
from channels_socketio.transport.session import EngineOptions
from channels_socketio.transport.worker_channel import WorkerChannel
from chat.events import chat_namespace
from monitoring import metrics


@dataclass(frozen=True)
class Realtime:
    sockets: SocketServer
    engine: EngineServer
    #: The bare Engine.IO echo endpoint; only in conformance mode.
    echo_engine: EngineServer | None


def build() -> Realtime:
    config = settings.CHAT
    observer.install(metrics.EngineMetrics())
    options = EngineOptions(
        ping_interval_ms=config.ping_interval_ms,
        ping_timeout_ms=config.ping_timeout_ms,
        max_payload=config.max_payload,
    )
    layer = get_channel_layer()
    worker = WorkerChannel(layer)
    sockets = SocketServer(worker)
    echo_engine = None
    if config.conformance:
        for name in NAMESPACES:
            sockets.register(conformance_namespace(name))
        echo_engine = EngineServer(EchoEngineHandler(), options, config.origin_allowed, WorkerChannel(layer))
    else:
        sockets.register(chat_namespace())
    engine = EngineServer(sockets, options, config.origin_allowed, worker)
    metrics.watch(engine=engine, sockets=sockets)
    return Realtime(sockets=sockets, engine=engine, echo_engine=echo_engine)
