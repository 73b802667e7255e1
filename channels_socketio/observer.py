"""What the engine reports as it works, for whoever measures it.

Layer: the engine's bottom, beside :mod:`channels_socketio.errors`.

The engine calls the methods of :data:`current` at each step that an
operator may want to count or time: connections opened, upgraded, closed
and refused; events received, handled and failed; broadcasts and other
channel-layer sends; deliveries.  This base class does nothing (and
:meth:`Observer.broadcast` / :meth:`Observer.layer_send` just await the
send); an application installs its own subclass once at start-up with
:func:`install`, as the chat's Prometheus exporter does.
"""

from __future__ import annotations

from typing import Any, Awaitable, TypeVar

T = TypeVar("T")


class Observer:
    # --- transport -------------------------------------------------------------------

    def connection_opened(self, transport: str) -> float:
        """A new Engine.IO session; the value returned comes back to :meth:`connection_closed`."""
        return 0.0

    def connection_upgraded(self) -> None:
        """A polling session moved onto its WebSocket."""

    def connection_closed(self, transport: str, reason: str, opened_at: float) -> None:
        """A session closed (exactly once per session), on its final transport."""

    def connection_error(self, reason: str) -> None:
        """A refused request or connect, or a protocol error, by its error code."""

    def slow_client_disconnected(self, transport: str) -> None:
        """A client left more unread than the engine's bounds allow and is being disconnected."""

    def messages_dropped(self, where: str, count: int) -> None:
        """Messages lost on their way to clients or to other workers.

        ``where``: ``slow_client`` (queued for a client disconnected for not
        reading), ``broker_overflow`` (the broker's outbox was full),
        ``broker_publish`` (the broker could not publish), ``unrouted`` (a
        message addressed to this worker that no handler takes),
        ``delivery_error`` (writing to a local socket failed).
        """

    # --- protocol --------------------------------------------------------------------

    def message_received(self, event: Any, size: int) -> None:
        """An event arrived from a client (called before its handler task is spawned)."""

    def event_handling(self) -> None:
        """First thing in an event's handler task."""

    def event_failed(self, event: Any, internal: bool) -> None:
        """An event handler failed: ``internal`` for an unexpected exception."""

    def message_delivered(self, event: str) -> None:
        """An event emitted straight to one socket, not through a room."""

    def broadcast_delivered(self, op: str, frames: Any, members: Any, exclude: Any) -> None:
        """A room message reached this worker's ``members`` (less ``exclude``)."""

    # --- channel layer ---------------------------------------------------------------

    async def broadcast(self, send: Awaitable[T]) -> T:
        """One broadcast to a room: ``await observer.current.broadcast(layer.group_send(...))``."""
        return await send

    async def layer_send(self, send: Awaitable[T], kind: str = "control") -> T:
        """A channel-layer send that carries no event (``control`` or ``relay``)."""
        return await send


#: The observer the engine reports to.
current: Observer = Observer()


def install(observer: Observer) -> None:
    """Make ``observer`` the one the engine reports to (once, at start-up)."""
    global current
    current = observer
