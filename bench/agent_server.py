"""The chat server with the benchmark's ``clock`` agent backend registered, in this process only.

``python -m bench.agent_server uvicorn|daphne HOST PORT`` (started by ``bench/agent_overhead.py``).
``uvicorn`` runs it as production does (uvloop, httptools, the corked
WebSocket protocol: ``deploy/Dockerfile``), ``daphne`` as ``make run SERVER=daphne``.
An agent row naming ``clock`` works in this server and nowhere else: the
backend is benchmark equipment, not part of the product.
"""

from __future__ import annotations

import os
import sys

#: Production's WebSocket protocol under uvicorn (docs/deployment.md).
CORKED_WS = "channels_socketio.transport.uvicorn_websocket:CorkedWebSocketProtocol"


def main(argv: list[str]) -> None:
    server, host, port = argv[0], argv[1], int(argv[2])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    from bench.agent_overhead import ClockBackend
    from chat.agents.backends import BACKENDS

    BACKENDS[ClockBackend.name] = ClockBackend
    if server == "uvicorn":
        import uvicorn

        uvicorn.run(
            "chatsite.asgi:application",
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            ws=CORKED_WS,
            ws_per_message_deflate=False,
            lifespan="off",
            access_log=False,
        )
        return
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(["-b", host, "-p", str(port), "chatsite.asgi:application"])


if __name__ == "__main__":
    main(sys.argv[1:])
