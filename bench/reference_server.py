"""The reference for the benchmark: python-socketio's AsyncServer under uvicorn.

Does the same room broadcast as the chat server, minus authentication and
persistence, for ``bench/loadgen.mjs --mode plain``:

- ``join`` ``{room}``: enter the room; the ack answers ``{"ok": true}``;
- ``broadcast`` ``{room, id, t, content}``: the payload goes to everyone else
  in the room as ``broadcast``, and the sender gets ``sent`` ``{id}`` (as our
  sender gets ``chat:message-sent``).

One process, asyncio event loop, like one uvicorn worker.  With
``--redis-url`` rooms go through python-socketio's ``AsyncRedisManager``, as
several of its workers would share them (one worker here: the cost of the
Redis path itself).  Run::

    .venv/bin/python bench/reference_server.py --port 8101 [--ws websockets|wsproto] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging

import socketio


def build_app(redis_url: str | None = None) -> socketio.ASGIApp:
    manager = socketio.AsyncRedisManager(redis_url, channel="bench-reference") if redis_url else None
    sio = socketio.AsyncServer(
        async_mode="asgi", cors_allowed_origins="*", logger=False, engineio_logger=False, client_manager=manager
    )

    @sio.event
    async def connect(sid, environ, auth=None):
        return True

    @sio.event
    async def join(sid, data):
        room = data.get("room") if isinstance(data, dict) else None
        if not isinstance(room, str):
            return {"ok": False}
        await sio.enter_room(sid, room)
        return {"ok": True}

    @sio.event
    async def broadcast(sid, data):
        if not isinstance(data, dict) or not isinstance(data.get("room"), str):
            return
        await sio.emit("broadcast", data, room=data["room"], skip_sid=sid)
        await sio.emit("sent", {"id": data.get("id")}, to=sid)

    return socketio.ASGIApp(sio)


def default_ws() -> str:
    return "websockets" if importlib.util.find_spec("websockets") else "wsproto"


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--ws", default=default_ws(), choices=["websockets", "websockets-sansio", "wsproto"])
    parser.add_argument("--redis-url", help="rooms through AsyncRedisManager on this Redis")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(
        build_app(args.redis_url),
        host=args.host,
        port=args.port,
        ws=args.ws,
        # The same server settings as ours under uvicorn (bench/run.py
        # ``ours_command``): uvloop and httptools when installed, and no
        # WebSocket compression, which Socket.IO servers leave off by default.
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        ws_per_message_deflate=False,
        lifespan="off",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
