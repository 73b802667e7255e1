"""The conformance application, served by the engine alone: no Django project of ours needed.

Layer: application (an example on top of the engine).

    python -m uvicorn channels_socketio.conformance_app:application --port 3000

serves on ``/socket.io/`` the behaviour protocol test suites expect
(:mod:`channels_socketio.conformance`) and on ``/engine.io/`` a bare
Engine.IO echo endpoint, with the suites' fast heartbeats (300 ms / 200 ms)
and any origin allowed.  ``SIO_REDIS_URL`` makes several such processes share
rooms through Redis (the engine's tests start two).

It is also the shortest complete example of putting the engine behind an
ASGI server: configure Django if nobody has, build an
:class:`~channels_socketio.transport.server.EngineServer` over a
:class:`~channels_socketio.protocol.server.SocketServer` with the namespaces,
and route the two consumers.
"""

from __future__ import annotations

import os

from django.conf import settings

if not settings.configured:
    # The consumers are Channels consumers; they need settings, not a project.
    settings.configure(INSTALLED_APPS=["channels"], CHANNEL_LAYERS={}, ALLOWED_HOSTS=["*"])

import django  # noqa: E402

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from channels_socketio.conformance import NAMESPACES, EchoEngineHandler, conformance_namespace  # noqa: E402
from channels_socketio.protocol.server import SocketOptions, SocketServer  # noqa: E402
from channels_socketio.transport import daphne_compat  # noqa: E402
from channels_socketio.transport.broker import Broker, LocalBroker  # noqa: E402
from channels_socketio.transport.polling import PollingConsumer  # noqa: E402
from channels_socketio.transport.redis_broker import RedisBroker  # noqa: E402
from channels_socketio.transport.server import EngineServer  # noqa: E402
from channels_socketio.transport.session import EngineOptions  # noqa: E402
from channels_socketio.transport.websocket import WebSocketConsumer  # noqa: E402
from channels_socketio.transport.worker_channel import WorkerChannel  # noqa: E402

#: What the protocol test suites expect: fast heartbeats and connect timeout, the reference's CONNECT_ERROR.
#: ``SIO_MAX_BUFFERED_PACKETS`` / ``SIO_MAX_BUFFERED_BYTES``: how much a client may leave unread.
OPTIONS = EngineOptions(
    ping_interval_ms=300,
    ping_timeout_ms=200,
    max_buffered_packets=int(os.environ.get("SIO_MAX_BUFFERED_PACKETS") or EngineOptions.max_buffered_packets),
    max_buffered_bytes=int(os.environ.get("SIO_MAX_BUFFERED_BYTES") or EngineOptions.max_buffered_bytes),
)
SOCKET_OPTIONS = SocketOptions(connect_timeout_ms=1000, connect_error_data=False)


def any_origin(origin: str, request_origin: str) -> bool:
    return True


def broker() -> Broker:
    url = os.environ.get("SIO_REDIS_URL", "")
    return RedisBroker(url) if url else LocalBroker()


def build() -> ProtocolTypeRouter:
    daphne_compat.install()  # under daphne: the protocol's close codes (1002, 1008...), not only 1000
    sockets = SocketServer(WorkerChannel(broker()), options=SOCKET_OPTIONS)
    for name in NAMESPACES:
        sockets.register(conformance_namespace(name))
    engine = EngineServer(sockets, OPTIONS, any_origin, sockets.fanout.worker)
    echo = EngineServer(EchoEngineHandler(), OPTIONS, any_origin, WorkerChannel(broker()))
    return ProtocolTypeRouter(
        {
            "http": URLRouter(
                [
                    path("socket.io/", PollingConsumer.as_asgi(engine=engine)),
                    path("engine.io/", PollingConsumer.as_asgi(engine=echo)),
                ]
            ),
            "websocket": URLRouter(
                [
                    path("socket.io/", WebSocketConsumer.as_asgi(engine=engine)),
                    path("engine.io/", WebSocketConsumer.as_asgi(engine=echo)),
                ]
            ),
        }
    )


application = build()
