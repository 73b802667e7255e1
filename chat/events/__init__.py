"""The chat application's Socket.IO events: the ``chat:*`` protocol of ``docs/protocol.md``."""

from __future__ import annotations

from channels_socketio.protocol.namespace import Namespace


def chat_namespace() -> Namespace:
    from chat.events import (
        access,
        agents,
        connection,
        edits,
        feedback,
        messages,
        presence,
        reactions,
        read_state,
        sessions,
    )

    namespace = Namespace("/")
    for module in (connection, sessions, access, messages, edits, reactions, read_state, presence, agents, feedback):
        module.register(namespace)
    return namespace
