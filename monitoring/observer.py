"""The engine's observer: what :mod:`channels_socketio` reports becomes metrics.

Layer: monitoring.  The composition root installs :class:`EngineMetrics`
(``channels_socketio.observer.install``); the first connection of a real
server also starts the periodic probe (:mod:`monitoring.probe`).
"""

from __future__ import annotations

from channels_socketio.observer import Observer
from monitoring import metrics, probe


class EngineMetrics(Observer):
    """The engine's observer (:mod:`channels_socketio.observer`): its reports become :mod:`monitoring.metrics`."""

    def connection_opened(self, transport: str) -> float:
        opened_at = metrics.connection_opened(transport)
        probe.ensure_started()
        return opened_at

    connection_upgraded = staticmethod(metrics.connection_upgraded)
    connection_closed = staticmethod(metrics.connection_closed)
    connection_error = staticmethod(metrics.connection_error)
    slow_client_disconnected = staticmethod(metrics.slow_client_disconnected)
    messages_dropped = staticmethod(metrics.messages_dropped)
    message_received = staticmethod(metrics.message_received)
    event_handling = staticmethod(metrics.event_handling)
    event_failed = staticmethod(metrics.event_failed)
    message_delivered = staticmethod(metrics.message_delivered)
    broadcast_delivered = staticmethod(metrics.broadcast_delivered)
    broadcast = staticmethod(metrics.broadcast)  # type: ignore[assignment]
    layer_send = staticmethod(metrics.layer_send)  # type: ignore[assignment]
