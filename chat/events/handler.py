"""How a chat event handler reports its outcome: an ack and, on failure, an ``*-error`` event.

Every handler takes one JSON object and either returns the fields of its
success or raises a :class:`~chat.errors.ChatError`.  The wrapper turns a
failure into the ``<event>-error`` event the seed protocol names (with the
ids the client sent) and, when the client asked for an ack, answers it with
``{ok: false, ...}``; success acks ``{ok: true, ...}``.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from channels_socketio.protocol.namespace import Namespace
from channels_socketio.protocol.socket import Socket
from chat import event_names
from chat.errors import ChatError
from chat.events import guards
from chat.events.payloads import payload_object
from chat.ids import is_client_id
from monitoring import metrics

logger = logging.getLogger(__name__)

ChatHandler = Callable[[Socket, dict[str, Any]], Awaitable[dict[str, Any] | None]]


def chat_event(namespace: Namespace, event: str, *, operation: str | None) -> Callable[[ChatHandler], ChatHandler]:
    """Register ``handler`` for ``event``, rate-limited as ``operation`` (see ``security.ratelimit``).

    ``operation=None``: the action the handler calls counts the event itself (sending a message).
    """
    error_event = event_names.error_event(event)

    def register(handler: ChatHandler) -> ChatHandler:
        async def handle(socket: Socket, *args: Any) -> dict[str, Any]:
            payload: Any = args[0] if args else None
            try:
                if operation is not None:
                    await guards.limit(socket, operation)
                result = await handler(socket, payload_object(args))
            except ChatError as error:
                metrics.event_failed(event, internal=False)
                guards.failed(socket, error, payload)
                body = _with_ids(error.as_payload(), payload)
            except Exception:
                logger.exception("%s handler failed", event)
                metrics.event_failed(event, internal=True)
                body = _with_ids(ChatError().as_payload(), payload)
            else:
                return {"ok": True, **(result or {})}
            await socket.emit(error_event, body)
            return {"ok": False, **body}

        handle.__name__ = handler.__name__
        namespace.on(event)(handle)
        return handler

    return register


def _with_ids(body: dict[str, Any], payload: Any) -> dict[str, Any]:
    """Echo the ids the client sent (only well-formed ones), so it can match the error to its request."""
    if not isinstance(payload, dict):
        return body
    session_id, message_id = payload.get("sessionId"), payload.get("messageId")
    message = payload.get("message")
    if isinstance(message, dict):
        session_id = session_id or message.get("sessionId")
        message_id = message.get("id")
    for name, value in (("sessionId", session_id), ("messageId", message_id)):
        if name not in body and is_client_id(value):
            body[name] = value
    return body
