"""ASGI entry point: Socket.IO (polling and WebSocket) at ``/socket.io/``, Django for the rest."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from chat.transport import daphne_compat  # noqa: E402
from chat.transport.polling import PollingConsumer  # noqa: E402
from chat.transport.websocket import WebSocketConsumer  # noqa: E402
from chatsite import realtime  # noqa: E402

daphne_compat.install()
stack = realtime.build()

http_routes = [path("socket.io/", PollingConsumer.as_asgi(engine=stack.engine))]
websocket_routes = [path("socket.io/", WebSocketConsumer.as_asgi(engine=stack.engine))]
if stack.echo_engine is not None:
    http_routes.append(path("engine.io/", PollingConsumer.as_asgi(engine=stack.echo_engine)))
    websocket_routes.append(path("engine.io/", WebSocketConsumer.as_asgi(engine=stack.echo_engine)))

application = ProtocolTypeRouter(
    {
        "http": URLRouter([*http_routes, re_path(r"", django_application)]),
        "websocket": URLRouter(websocket_routes),
    }
)
