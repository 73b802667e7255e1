"""The chat application's Socket.IO events: the ``chat:*`` protocol of ``docs/protocol.md``."""

from __future__ import annotations

from channels_socketio.protocol.namespace import Namespace


def chat_namespace() -> Namespace:
    from chat.events import access, agents, connection, edits, feedback, messages, presence, sessions

    namespace = Namespace("/")
    for module in (connection, sessions, access, messages, edits, presence, agents, feedback):
        module.register(namespace)
    return namespace
