"""A Socket.IO namespace: its connect and disconnect hooks and its event handlers.

Layer: protocol core.

Handlers are registered explicitly by event name and found by dictionary
lookup, so a client can only ever reach a function that was registered for
it, never an attribute named by the client.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

from chat.errors import InvalidPayload

if TYPE_CHECKING:
    from chat.protocol.socket import Socket

EventHandler = Callable[..., Awaitable[Any]]
ConnectHandler = Callable[["Socket", "dict[str, Any] | None"], Awaitable[None]]
DisconnectHandler = Callable[["Socket", str], Awaitable[None]]
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
        self._handlers: dict[str, tuple[EventHandler, inspect.Signature]] = {}
        self.connect_handler: ConnectHandler | None = None
        self.disconnect_handler: DisconnectHandler | None = None

    def on(self, event: str) -> Callable[[F], F]:
        def register(handler: F) -> F:
            if not inspect.iscoroutinefunction(handler):
                raise TypeError(f"Handler for {event!r} must be an async function.")
            self._handlers[event] = (handler, inspect.signature(handler))
            return handler

        return register

    def on_connect(self, handler: ConnectHandler) -> ConnectHandler:
        self.connect_handler = handler
        return handler

    def on_disconnect(self, handler: DisconnectHandler) -> DisconnectHandler:
        self.disconnect_handler = handler
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
        handler, signature = entry
        try:
            bound = signature.bind(socket, *args)
        except TypeError:
            raise InvalidPayload(f"Wrong number of arguments for {event!r}.") from None
        return lambda: handler(*bound.args, **bound.kwargs)

    @property
    def events(self) -> list[str]:
        return sorted(self._handlers)
