"""``chat:cancel-agent``: stop an agent's reply while it streams (or before it starts);
``chat:regenerate``: ask the agent again for a reply it gave.

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

``chat:regenerate`` ``{sessionId, messageId, requestId, workspaceId?}``:
``messageId`` is the agent reply's id, ``requestId`` the client's key for
this request (the same ``requestId`` again answers with the same run, on
any worker).  Allowed for the same people as cancelling.  The ack is
``{ok: true, sessionId, messageId, inReplyTo, requestId, version, status,
duplicate}``: ``version`` is the one the reply becomes, ``status`` the
run's (``pending``, ``running``, then a final one), ``duplicate`` true for a
repeated ``requestId``.  Errors: ``not_joined``, ``message_not_found`` (no
such agent reply in the session), ``forbidden``, ``agent_run_active`` (a
run of that message is queued or running), ``session_closed``,
``agent_not_found``, ``muted``, ``rate_limited`` (counted with ``send``).  See
:mod:`chat.agents.regenerations`.
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

    @chat_event(namespace, event_names.REGENERATE, operation="send")
    async def regenerate(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        entry = await current_joined(socket, payload)
        reply_key = required_client_id(payload, "messageId")
        request_key = required_client_id(payload, "requestId")
        request = await runner.regenerate(entry.session_id, reply_key, request_key, socket.user, entry.moderates)
        return {
            "sessionId": entry.session_key,
            "messageId": request.ticket.reply_key,
            "inReplyTo": request.ticket.trigger_key,
            "requestId": request_key,
            "version": request.ticket.version,
            "status": request.status,
            "duplicate": not request.created,
        }
