"""A Socket.IO namespace: its connect and disconnect hooks and its event handlers.

Layer: protocol core.

Handlers are registered explicitly by event name and found by dictionary
lookup, so a client can only ever reach a function that was registered for
it, never an attribute named by the client.
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, TypeVar

from channels_socketio.errors import InvalidPayload
from channels_socketio.protocol.socket import Socket

EventHandler = Callable[..., Awaitable[Any]]
ConnectHandler = Callable[["Socket", "dict[str, Any] | None"], Awaitable[None]]
DisconnectHandler = Callable[["Socket", str], Awaitable[None]]
NoticeHandler = Callable[["Socket", Any], Awaitable[None]]
F = TypeVar("F", bound=Callable[..., Any])


class Namespace:
    """Register with :meth:`on`, :meth:`on_connect` and :meth:`on_disconnect`.

    Example::

        chat = Namespace("/")

        @chat.on("message")
        async def message(socket, text):
            await socket.to("lobby").emit("message", text)
            return "ok"          # becomes the client's ack, if it asked for one
    """

    def __init__(self, name: str = "/") -> None:
        if not name.startswith("/"):
            raise ValueError("A namespace name starts with '/'.")
        self.name = name
        self._handlers: dict[str, tuple[EventHandler, int, int | None]] = {}
        self.connect_handler: ConnectHandler | None = None
        self.disconnect_handler: DisconnectHandler | None = None
        self.notice_handler: NoticeHandler | None = None

    def on(self, event: str) -> Callable[[F], F]:
        def register(handler: F) -> F:
            if not inspect.iscoroutinefunction(handler):
                raise TypeError(f"Handler for {event!r} must be an async function.")
            self._handlers[event] = (handler, *_positional_arity(event, inspect.signature(handler)))
            return handler

        return register

    def on_connect(self, handler: ConnectHandler) -> ConnectHandler:
        self.connect_handler = handler
        return handler

    def on_disconnect(self, handler: DisconnectHandler) -> DisconnectHandler:
        self.disconnect_handler = handler
        return handler

    def on_notice(self, handler: NoticeHandler) -> NoticeHandler:
        """Run ``handler(socket, data)`` for a server-side notice (:meth:`Emitter.notice_room`), between the socket's events."""
        self.notice_handler = handler
        return handler

    def handler_for(self, event: str) -> EventHandler | None:
        entry = self._handlers.get(event)
        return entry[0] if entry else None

    def bind(self, event: str, socket: Socket, args: list[Any]) -> Callable[[], Awaitable[Any]] | None:
        """Prepare a call of the event's handler with the client's arguments.

        The client chooses how many arguments it sends; a count the handler
        does not accept is the client's error, reported as such, rather than
        a ``TypeError`` inside our code.
        """
        entry = self._handlers.get(event)
        if entry is None:
            return None
        handler, least, most = entry
        count = 1 + len(args)  # the socket comes first
        if count < least or (most is not None and count > most):
            raise InvalidPayload(f"Wrong number of arguments for {event!r}.")
        return lambda: handler(socket, *args)

    @property
    def events(self) -> list[str]:
        return sorted(self._handlers)


def _positional_arity(event: str, signature: inspect.Signature) -> tuple[int, int | None]:
    """How many positional arguments a handler takes, at least and at most (``None``: any number).

    Worked out once at registration: binding a signature for every event
    cost a percent of the server's time under load.
    """
    least, most = 0, 0
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            return least, None
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            most += 1
            least += parameter.default is parameter.empty
        elif parameter.kind is parameter.KEYWORD_ONLY and parameter.default is parameter.empty:
            raise TypeError(f"Handler for {event!r} has a required keyword-only parameter: clients send positional ones.")
    return least, most
