"""Every ``chat:*`` event's name, spelled once.

The names are the protocol's (``schema/chat-events.schema.json``, the one
description of every event and payload); ``tests/unit/test_event_names.py``
holds this module, the schema and the metrics' label sets in step, so a new
event fails a test until every place that lists events knows it.
"""

from __future__ import annotations

# --- client -> server (each answered by an ack, and by ``<name>-error`` on failure) ---

JOIN_SESSION = "chat:join-session"
LEAVE_SESSION = "chat:leave-session"
SEND_MESSAGE = "chat:send-message"
REQUEST_HISTORY = "chat:request-history"
TYPING = "chat:typing"
UPDATE_PRESENCE = "chat:update-presence"
CANCEL_AGENT = "chat:cancel-agent"
ADD_REACTION = "chat:add-reaction"
REMOVE_REACTION = "chat:remove-reaction"
MARK_READ = "chat:mark-read"
REGENERATE = "chat:regenerate"
RATE_MESSAGE = "chat:rate-message"
EDIT_MESSAGE = "chat:edit-message"
DELETE_MESSAGE = "chat:delete-message"

CLIENT_EVENTS = frozenset(
    {
        JOIN_SESSION,
        LEAVE_SESSION,
        SEND_MESSAGE,
        REQUEST_HISTORY,
        TYPING,
        UPDATE_PRESENCE,
        CANCEL_AGENT,
        ADD_REACTION,
        REMOVE_REACTION,
        MARK_READ,
        REGENERATE,
        RATE_MESSAGE,
        EDIT_MESSAGE,
        DELETE_MESSAGE,
    }
)

# --- server -> client ---

JOIN_SESSION_SUCCESS = "chat:join-session-success"
USER_JOINED = "chat:user-joined"
USER_LEFT = "chat:user-left"
MESSAGE_RECEIVED = "chat:message-received"
MESSAGE_SENT = "chat:message-sent"
HISTORY_RESPONSE = "chat:history-response"
TYPING_INDICATOR = "chat:typing-indicator"
PRESENCE_UPDATED = "chat:presence-updated"
AGENT_STREAM_CHUNK = "chat:agent-stream-chunk"
AGENT_TOOL_CALL = "chat:agent-tool-call"
AGENT_REASONING = "chat:agent-reasoning"
MESSAGE_HIDDEN = "chat:message-hidden"
MESSAGE_UNHIDDEN = "chat:message-unhidden"
MESSAGE_UPDATED = "chat:message-updated"
MESSAGE_DELETED = "chat:message-deleted"
SESSION_UPDATED = "chat:session-updated"
SESSION_CLOSED = "chat:session-closed"
SESSION_LEFT = "chat:session-left"
BANNED = "chat:banned"
REACTIONS_UPDATED = "chat:reactions-updated"
READ_UPDATED = "chat:read-updated"


def error_event(name: str) -> str:
    """The event a failed ``name`` is also answered with (besides its ack)."""
    return f"{name}-error"


SERVER_EVENTS = frozenset(
    {
        JOIN_SESSION_SUCCESS,
        USER_JOINED,
        USER_LEFT,
        MESSAGE_RECEIVED,
        MESSAGE_SENT,
        HISTORY_RESPONSE,
        TYPING_INDICATOR,
        PRESENCE_UPDATED,
        AGENT_STREAM_CHUNK,
        AGENT_TOOL_CALL,
        AGENT_REASONING,
        MESSAGE_HIDDEN,
        MESSAGE_UNHIDDEN,
        MESSAGE_UPDATED,
        MESSAGE_DELETED,
        SESSION_UPDATED,
        SESSION_CLOSED,
        SESSION_LEFT,
        BANNED,
        REACTIONS_UPDATED,
        READ_UPDATED,
        *(error_event(name) for name in CLIENT_EVENTS),
    }
)
