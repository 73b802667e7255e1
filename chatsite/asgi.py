"""ASGI entry point: Socket.IO (polling and WebSocket) at ``/socket.io/``, the Parlant-compatible
API at ``/parlant/`` (``chat.parlant``), Django for the rest."""

from __future__ import annotations

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.signals import request_finished  # noqa: E402
from django.db import connections  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from channels_socketio.transport import daphne_compat  # noqa: E402
from channels_socketio.transport.polling import PollingConsumer  # noqa: E402
from channels_socketio.transport.websocket import WebSocketConsumer  # noqa: E402
from chat.parlant.consumer import ParlantConsumer  # noqa: E402
from chat.parlant.gate import OpenRequests  # noqa: E402
from chat.parlant.watch import Watcher  # noqa: E402
from chatsite import realtime  # noqa: E402
from security.body_limit import BodyLimit, StreamingBodyLimit  # noqa: E402

daphne_compat.install()


def close_request_connections(sender: type, **kwargs: object) -> None:
    """Close an HTTP request's database connections when it ends.

    Under ASGI Django runs each request's view in a thread of its own that
    is never reused, so its connection could never serve another request;
    kept for ``CONN_MAX_AGE`` (which suits the socket handlers' long-lived
    thread, ``settings.DATABASES``) it would stay open until the thread is
    collected -- under steady REST traffic, dozens per worker, until
    PostgreSQL refuses new clients.  ``request_finished`` runs in the
    request's thread; test clients send it from other handler classes.
    """
    if isinstance(sender, type) and issubclass(sender, ASGIHandler):
        connections.close_all()


request_finished.connect(close_request_connections, dispatch_uid="chatsite.close_request_connections")
stack = realtime.build()

http_routes = [path("socket.io/", PollingConsumer.as_asgi(engine=stack.engine))]
websocket_routes = [path("socket.io/", WebSocketConsumer.as_asgi(engine=stack.engine))]
if stack.echo_engine is not None:
    http_routes.append(path("engine.io/", PollingConsumer.as_asgi(engine=stack.echo_engine)))
    websocket_routes.append(path("engine.io/", WebSocketConsumer.as_asgi(engine=stack.echo_engine)))
if not settings.CHAT.conformance:
    # Waiting requests are woken through this process's room fan-out (chat.parlant.watch).
    http_routes.append(
        re_path(
            r"^parlant/", ParlantConsumer.as_asgi(watcher=Watcher(stack.sockets.fanout), open_requests=OpenRequests())
        )
    )



def _upload_limit() -> int:
    return settings.CHAT.attachment_max_bytes_ceiling + 64 * 1024  # the multipart envelope around the file


application = ProtocolTypeRouter(
    {
        # Bodies for Django (the REST API, admin, pages) are bounded before anything parses them.
        "http": URLRouter(
            [
                *http_routes,
                # Uploads are streamed to a temporary file, bounded by the largest any workspace allows.
                re_path(
                    r"^api/v1/workspaces/[^/]+/sessions/[^/]+/attachments/$",
                    StreamingBodyLimit(django_application, _upload_limit, "attachment_too_large"),
                ),
                re_path(r"", BodyLimit(django_application, settings.CHAT.api_body_max_bytes)),
            ]
        ),
        "websocket": URLRouter(websocket_routes),
    }
)

# What is loaded by now lives as long as the process: move it out of the
# collector's way, so that full collections under load walk only what the
# traffic allocates, and collect the young generation less often: traffic
# allocates a great deal, nearly all of it short-lived and freed by
# reference counting (both otherwise show up as latency spikes).
gc.freeze()
gc.set_threshold(20_000, 20, 20)
