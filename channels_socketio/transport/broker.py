"""How messages reach the other worker processes: a publish/subscribe broker.

Layer: transport.

Two kinds of traffic cross processes: room broadcasts (each worker
subscribes to the topics of the rooms it has members in, see
:mod:`channels_socketio.protocol.rooms`) and messages addressed to one
worker (its own topic, see :mod:`channels_socketio.transport.worker_channel`:
polling requests relayed between workers).  A broker carries both the same
way: a message published to a topic reaches every *other* worker
subscribed to it, once, in the order it was published.  The publishing
worker serves its own members itself, without a round trip.

- :class:`LocalBroker`: one process, nothing to cross.
- :class:`~channels_socketio.transport.redis_broker.RedisBroker`: Redis
  publish/subscribe, one ``PUBLISH`` per message whatever the number of
  workers.

Messages are dicts of strings, numbers, bytes and lists (never pickled).
Delivery is at most once: a broker that lost its connection calls the
subscriber's ``on_gap`` once it is back, so that what needs every message
(ordered rooms) can catch up from its own store.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Protocol

Deliver = Callable[[str, dict[str, Any]], Awaitable[None]]
OnGap = Callable[[], Awaitable[None]]


class Broker(Protocol):
    #: Whether other processes exist to reach (False: publishing is a no-op).
    crosses_processes: bool

    async def start(self, deliver: Deliver, on_gap: OnGap) -> None:
        """Begin delivering messages of subscribed topics: ``deliver(topic, message)``, one at a time."""
        ...

    async def subscribe(self, topic: str) -> None: ...

    async def unsubscribe(self, topic: str) -> None: ...

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        """Send ``message`` to the other workers subscribed to ``topic``."""
        ...

    async def stop(self) -> None: ...


class LocalBroker:
    """A single process: every subscriber is local, so nothing is ever published."""

    crosses_processes = False

    async def start(self, deliver: Deliver, on_gap: OnGap) -> None:
        pass

    async def subscribe(self, topic: str) -> None:
        pass

    async def unsubscribe(self, topic: str) -> None:
        pass

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        pass

    async def stop(self) -> None:
        pass
