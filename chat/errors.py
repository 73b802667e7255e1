"""Every error the chat answers with, each with a stable machine code.

Layer: chat application, its bottom: it imports only the engine's errors
(:mod:`channels_socketio.errors`), whose base class the chat's errors share,
so one ``except ChatError`` and one ``as_payload`` serve both.  How an error
is shown on the wire (a Socket.IO ``CONNECT_ERROR``, a ``*-error`` event, a
WebSocket close code, a REST status) is decided in one table,
:data:`WIRE_ERRORS`: the engine's codes and the chat's, so a code means the
same thing everywhere.
"""

from __future__ import annotations

from typing import Any

from channels_socketio import errors as engine
from channels_socketio.errors import (  # noqa: F401 - the engine's codes are the chat's vocabulary too
    AckTimeout,
    BadRequest,
    ConnectionRefused,
    EngineRequestError,
    InvalidNamespace,
    InvalidPayload,
    PayloadTooLarge,
    ProtocolError,
    WireError,
)

#: The base of every error the server reports to a client (the engine's).
ChatError = engine.SocketIOError


class Unauthenticated(ConnectionRefused):
    code = "unauthenticated"
    default_message = "Authentication required: pass a valid token in the auth payload."


class VerifierBusy(ConnectionRefused):
    """Too many external-verifier questions in flight on this worker (``CHAT_EXTERNAL_AUTH_CONCURRENCY``)."""

    code = "auth_busy"
    default_message = "Authentication is busy; retry shortly."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        super().__init__(message, retryable=True, **details)


class NotAMember(ChatError):
    code = "not_a_member"
    default_message = "You are not a member of this workspace."


class PermissionDenied(ChatError):
    code = "forbidden"
    default_message = "You do not have access to this session."


class SessionNotFound(ChatError):
    code = "session_not_found"
    default_message = "No such session."


class AgentNotFound(ChatError):
    code = "agent_not_found"
    default_message = "No such agent in this workspace."


class SessionClosed(ChatError):
    code = "session_closed"
    default_message = "This session is closed."


class NotJoined(ChatError):
    code = "not_joined"
    default_message = "Join the session first."


class AccessRevoked(ChatError):
    code = "access_revoked"
    default_message = "You no longer have access to this session."


class MessageTooLong(ChatError):
    code = "message_too_long"
    default_message = "The message is too long."


class MetadataTooLarge(ChatError):
    code = "metadata_too_large"
    default_message = "The message metadata is too large or too deeply nested."


class InvalidEmoji(ChatError):
    code = "invalid_emoji"
    default_message = "A reaction is one emoji (flags, keycaps, skin tones and ZWJ sequences included)."


class ReactionEmojiLimit(ChatError):
    code = "reaction_emoji_limit"
    default_message = "This message already has as many different reactions as allowed."


class ReactionUserLimit(ChatError):
    code = "reaction_user_limit"
    default_message = "You already reacted to this message as many times as allowed."


class NotAuthor(ChatError):
    code = "not_author"
    default_message = "Only the author can edit this message."


class EditWindowClosed(ChatError):
    code = "edit_window_closed"
    default_message = "This message can no longer be changed: the workspace's edit window has passed."


class VersionConflict(ChatError):
    """The client edited from a version that is no longer current; ``currentVersion`` says which is."""

    code = "version_conflict"
    default_message = "The message changed since you read it; reload it and edit again."


class MessageDeleted(ChatError):
    code = "message_deleted"
    default_message = "This message was deleted."


class TooManyEdits(ChatError):
    code = "too_many_edits"
    default_message = "This message has been edited as often as it can be."


class StoreFailed(ChatError):
    """Storing failed; nothing was confirmed or broadcast, so the client may retry."""

    code = "internal"
    default_message = "The message could not be stored; please retry."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        super().__init__(message, retryable=True, **details)


class AttachmentTooLarge(ChatError):
    code = "attachment_too_large"
    default_message = "The file is larger than this workspace accepts."


class AttachmentTypeNotAllowed(ChatError):
    code = "attachment_type_not_allowed"
    default_message = "Files of this type are not accepted here."


class AttachmentNameInvalid(ChatError):
    code = "attachment_name_invalid"
    default_message = "The file name may not contain control characters and is limited to 255 characters."


class AttachmentsPendingLimit(ChatError):
    code = "attachments_pending_limit"
    default_message = "Too many uploads not yet sent in a message; send or wait for them to expire."


class AttachmentNotFound(ChatError):
    code = "attachment_not_found"
    default_message = "No such attachment."


class AttachmentInUse(ChatError):
    code = "attachment_in_use"
    default_message = "This attachment already belongs to another message."


class TooManyAttachments(ChatError):
    code = "too_many_attachments"
    default_message = "Too many attachments for one message."


class AttachmentLinkExpired(ChatError):
    code = "attachment_link_expired"
    default_message = "This download link has expired; ask for a new one."


class AttachmentLinkInvalid(ChatError):
    code = "attachment_link_invalid"
    default_message = "This download link is not valid."


#: One table for every surface: the engine's codes and the chat's.  Codes
#: missing here use ``DEFAULT_WIRE_ERROR``.
WIRE_ERRORS: dict[str, WireError] = {
    **engine.WIRE_ERRORS,
    "unauthenticated": WireError(401, 1008),
    "auth_busy": WireError(503, 1013),
    "too_many_failed_connects": WireError(429, 1008),
    "not_a_member": WireError(404, 1008),
    "session_not_found": WireError(404, 1008),
    "agent_not_found": WireError(404, 1008),
    "session_closed": WireError(409, 1008),
    "not_joined": WireError(409, 1008),
    "access_revoked": WireError(403, 1008),
    "message_too_long": WireError(400, 1009),
    "metadata_too_large": WireError(400, 1009),
    "rate_limited": WireError(429, 1008),
    "message_blocked": WireError(400, 1008),
    "spam_detected": WireError(429, 1008),
    "connection_limit": WireError(429, 1013),
    "muted": WireError(403, 1008),
    "banned": WireError(403, 1008),
    "member_not_found": WireError(404, 1008),
    "user_not_found": WireError(404, 1008),
    "message_not_found": WireError(404, 1008),
    "not_author": WireError(403, 1008),
    "edit_window_closed": WireError(403, 1008),
    "version_conflict": WireError(409, 1008),
    "message_deleted": WireError(409, 1008),
    "too_many_edits": WireError(409, 1008),
    "invalid_cursor": WireError(404, 1008),
    "session_exists": WireError(409, 1008),
    "member_exists": WireError(409, 1008),
    "agent_run_not_found": WireError(404, 1008),
    "agent_run_finished": WireError(409, 1008),
    "agent_run_active": WireError(409, 1008),
    "agent_config_invalid": WireError(400, 1008),
    "invalid_emoji": WireError(400, 1008),
    "reaction_emoji_limit": WireError(409, 1008),
    "reaction_user_limit": WireError(409, 1008),
    "attachment_too_large": WireError(413, 1009),
    "attachment_type_not_allowed": WireError(415, 1008),
    "attachment_name_invalid": WireError(400, 1008),
    "attachments_pending_limit": WireError(429, 1008),
    "attachment_not_found": WireError(404, 1008),
    "attachment_in_use": WireError(409, 1008),
    "too_many_attachments": WireError(400, 1008),
    "attachment_link_expired": WireError(403, 1008),
    "attachment_link_invalid": WireError(403, 1008),
}
DEFAULT_WIRE_ERROR = engine.DEFAULT_WIRE_ERROR


def wire_error(error: ChatError) -> WireError:
    return engine.wire_error(error, WIRE_ERRORS)
