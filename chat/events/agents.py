"""``chat:cancel-agent``: stop an agent's reply while it streams (or before it starts).

Payload ``{sessionId, messageId, workspaceId?}`` where ``messageId`` is the
reply's id (the ``messageId`` of its stream chunks) or the id of the user
message it answers.  Allowed for the author of that user message, the
session's creator, and the workspace's moderators and admins.

The ack is ``{ok: true, sessionId, messageId, inReplyTo, status}`` with
``status`` ``cancelled`` (it had not started; the final chunk with
``cancelled: true`` has been sent) or ``cancelling`` (it is running, on this
worker or another: its final chunk with ``cancelled: true`` and the reply
stored as far as it got follow).  Errors: ``not_joined``,
``agent_run_not_found``, ``agent_run_finished``, ``forbidden``, and
``rate_limited`` (cancels count against the ``send`` budget).
"""

from __future__ import annotations

from typing import Any

from channels_socketio.protocol.namespace import Namespace
from channels_socketio.protocol.socket import Socket
from chat import event_names
from chat.agents import runner
from chat.events.access import current_joined
from chat.events.handler import chat_event
from chat.events.payloads import required_client_id


def register(namespace: Namespace) -> None:
    # Rate-limited with the sends: a cancel is an action on a message, and as cheap.
    @chat_event(namespace, event_names.CANCEL_AGENT, operation="send")
    async def cancel_agent(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        entry = await current_joined(socket, payload)
        message_key = required_client_id(payload, "messageId")
        request = await runner.cancel(entry.session_id, message_key, socket.user, entry.moderates)
        return {
            "sessionId": entry.session_key,
            "messageId": request.ticket.reply_key,
            "inReplyTo": request.ticket.trigger_key,
            "status": request.status,
        }
