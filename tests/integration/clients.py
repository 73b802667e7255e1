"""Clients for the integration tests: python-socketio, the Node driver, raw Engine.IO.

Both Socket.IO clients report what they saw in the same shape, so one test
can assert the same full event stream for each:

    events       [{"ns", "name", "args"}, ...] every event received, in order
    disconnects  [{"ns", "reason"}, ...]
    connect_errors [{"ns", "message", "data"}, ...]
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any, Callable
from urllib.parse import urlencode

import aiohttp
import socketio

from tests.integration import event_schema

#: Transport modes: what each client is told, and the transport it must end on.
MODES = ("polling", "websocket", "upgrade")
FINAL_TRANSPORT = {"polling": "polling", "websocket": "websocket", "upgrade": "websocket"}
PY_TRANSPORTS = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}
NODE_OPTIONS = {
    "polling": {"transports": ["polling"]},
    "websocket": {"transports": ["websocket"]},
    "upgrade": {"transports": ["polling", "websocket"], "upgrade": True},
}


async def until(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01) -> Any:
    """Wait for ``check()`` to return something truthy and return it; ``None`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(interval)


# --- binary values through JSON (the Node driver's {"$bin": base64}) ---------------------


def to_wire(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"$bin": base64.b64encode(value).decode()}
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    return value


def from_wire(value: Any) -> Any:
    if isinstance(value, list):
        return [from_wire(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return base64.b64decode(value["$bin"])
        return {key: from_wire(item) for key, item in value.items()}
    return value


# --- python-socketio --------------------------------------------------------------------


class PyClient:
    """python-socketio's AsyncClient recording everything it receives."""

    def __init__(self, namespaces: tuple[str, ...] = ("/",), replies: dict[str, list[Any]] | None = None) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.namespaces = namespaces
        self.replies = replies or {}
        self.events: list[dict[str, Any]] = []
        self.disconnects: list[dict[str, Any]] = []
        self.connect_errors: list[dict[str, Any]] = []
        for ns in namespaces:
            self._record(ns)

    def _record(self, ns: str) -> None:
        async def any_event(event: str, *args: Any) -> Any:
            self.events.append({"ns": ns, "name": event, "args": list(args)})
            reply = self.replies.get(event, list(args))
            return tuple(reply)

        async def disconnect(reason: str) -> None:
            self.disconnects.append({"ns": ns, "reason": reason})

        async def connect_error(data: Any) -> None:
            data = data if isinstance(data, dict) else {"message": data}
            self.connect_errors.append({"ns": ns, "message": data.get("message"), "data": data.get("data")})

        self.sio.on("*", any_event, namespace=ns)
        self.sio.on("disconnect", disconnect, namespace=ns)
        self.sio.on("connect_error", connect_error, namespace=ns)

    async def connect(self, url: str, mode: str, auth: Any = None, **kwargs: Any) -> PyClient:
        await self.sio.connect(
            url, transports=PY_TRANSPORTS[mode], namespaces=list(self.namespaces), auth=auth, wait_timeout=5, **kwargs
        )
        return self

    @property
    def transport(self) -> str:
        return self.sio.transport()

    @property
    def engine_sid(self) -> str:
        return self.sio.eio.sid

    def received(self, name: str, ns: str = "/") -> list[list[Any]]:
        return [event["args"] for event in self.events if event["ns"] == ns and event["name"] == name]

    async def wait_event(self, name: str, ns: str = "/", count: int = 1, timeout: float = 5.0) -> list[Any]:
        """The args of the ``count``-th event ``name`` (waiting for it); fails on timeout."""
        found = await until(lambda: len(self.received(name, ns)) >= count, timeout)
        assert found, f"no {name!r} #{count} on {ns} within {timeout}s; events: {self.events}"
        return self.received(name, ns)[count - 1]

    async def wait_disconnect(self, ns: str = "/", timeout: float = 5.0) -> str:
        found = await until(lambda: [d for d in self.disconnects if d["ns"] == ns], timeout)
        assert found, f"no disconnect on {ns} within {timeout}s"
        return found[0]["reason"]

    async def call(self, event: str, *args: Any, ns: str = "/", timeout: float = 5.0) -> list[Any]:
        """Emit with an ack; return every ack argument as a list."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        await self.sio.emit(event, args, namespace=ns, callback=lambda *ack: future.set_result(list(ack)))
        return await asyncio.wait_for(future, timeout)

    async def emit(self, event: str, *args: Any, ns: str = "/") -> None:
        await self.sio.emit(event, args, namespace=ns)

    async def close(self) -> None:
        await self.sio.shutdown()
        if self.sio.eio.state != "disconnected":
            await self.sio.eio.disconnect()


# --- Node ----------------------------------------------------------------------------------


def node_script(url: str, mode: str, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A driver script for one transport mode; in upgrade mode it waits for the upgrade first."""
    steps = [dict(step, args=to_wire(step["args"])) if "args" in step else step for step in steps]
    if mode == "upgrade":
        connects = [i for i, step in enumerate(steps) if step["do"] == "connect"]
        first = connects[0] + 1 if connects else 0
        steps = [*steps[:first], {"do": "waitUpgrade", "timeoutMs": 5000}, *steps[first:]]
    return {"url": url, "options": NODE_OPTIONS[mode], "steps": steps, **extra}


def node_view(output: dict[str, Any]) -> dict[str, Any]:
    """The driver's output with binary values as bytes, like python-socketio gives them.

    The official client's chat events and acks are checked against the event
    schema like python-socketio's (:mod:`tests.integration.event_schema`).
    """
    for event in output["events"]:
        event_schema.record("event", event["name"], tuple(from_wire(event["args"])))
    for ack in output["acks"]:
        event_schema.record("ack", ack["event"], tuple(from_wire(ack["args"])))
    return {
        "events": [
            {k: from_wire(v) if k == "args" else v for k, v in e.items() if k != "ackRequested"}
            for e in output["events"]
        ],
        "acks": [dict(a, args=from_wire(a["args"])) for a in output["acks"]],
        "results": from_wire(output["results"]),
        "connect_errors": output["connectErrors"],
        "disconnects": output["disconnects"],
        "transport": output["transport"],
    }


# --- raw Engine.IO over aiohttp ---------------------------------------------------------------


class RawEngine:
    """Raw Engine.IO requests, for what no well-behaved client would do."""

    def __init__(self, http: aiohttp.ClientSession, url: str, path: str = "/socket.io/") -> None:
        self.http = http
        self.base = url + path

    def query(self, **params: str) -> str:
        params = {"EIO": "4", "transport": "polling", **params}
        return self.base + "?" + urlencode({key: value for key, value in params.items() if value is not None})

    async def request(
        self, method: str, headers: dict[str, str] | None = None, data: Any = None, timeout: float = 10.0, **params: str
    ) -> tuple[int, Any, str]:
        """(status, headers, body); a request still waiting after ``timeout`` s raises ``TimeoutError``."""
        limit = aiohttp.ClientTimeout(total=timeout)
        async with self.http.request(
            method, self.query(**params), headers=headers, data=data, timeout=limit
        ) as response:
            body = await response.read()
            return response.status, response.headers, body.decode("utf-8", "replace")

    async def handshake(self, **params: str) -> dict[str, Any]:
        status, _, body = await self.request("GET", **params)
        assert status == 200 and body.startswith("0"), (status, body)
        return json.loads(body[1:])

    async def get(self, sid: str, timeout: float = 10.0, **params: str) -> tuple[int, str]:
        status, _, body = await self.request("GET", sid=sid, timeout=timeout, **params)
        return status, body

    async def post(self, sid: str, body: str | bytes) -> tuple[int, str]:
        status, _, text = await self.request("POST", sid=sid, data=body)
        return status, text

    async def websocket(self, headers: dict[str, str] | None = None, **params: str) -> aiohttp.ClientWebSocketResponse:
        url = self.query(transport="websocket", **params).replace("http://", "ws://", 1)
        return await self.http.ws_connect(url, headers=headers, autoping=False, max_msg_size=0)


def engine_error(body: str) -> tuple[int, str]:
    """(code, message) of an Engine.IO HTTP error body."""
    data = json.loads(body)
    return data["code"], data["message"]
