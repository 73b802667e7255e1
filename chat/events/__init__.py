"""The chat application's Socket.IO events (the ``chat:*`` protocol)."""

from __future__ import annotations

from chat.protocol.namespace import Namespace


def chat_namespace() -> Namespace:
    return Namespace("/")
