"""Request and response bodies of the REST API.

Layer: REST API.

Field names are camelCase, as on the socket protocol, and a message is the
very ``ChatMessage`` shape sockets receive (:func:`chat.shapes.message_shape`)
plus its moderation state.  Input is checked here for shape only (types,
lengths, and text PostgreSQL can store); rules about the chat itself are the
services' and answer with their own codes.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from chat.ids import ATTACHMENT_ID_PATTERN, CLIENT_ID_PATTERN
from chat.models import (
    ChatMessage,
    ChatSession,
    ContentPolicy,
    ContentType,
    Membership,
    MessageVersion,
    PresenceStatus,
    Role,
    SenderType,
    SessionStatus,
    VersionReason,
    WorkspaceBan,
)
from chat.services import reactions
from chat.services.moderation import EDIT_WINDOW_MAX_S, MUTE_MAX_SECONDS
from chat.shapes import message_shape, to_ms
from security.models import SecurityEvent, SecurityEventType

#: Who may post over REST (agents post through the agent runner).
POSTED_SENDER_TYPES = [("user", "User"), ("system", "System")]
USERNAME_PATTERN = r"^[\w.@+-]{1,150}\Z"
SEARCH_MAX_LENGTH = 200


def storable(value: str) -> str:
    """Text PostgreSQL can store: no NUL character, no lone surrogate."""
    if "\x00" in value:
        raise serializers.ValidationError("Must not contain the NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError("Must be valid Unicode text.") from None
    return value


def storable_json(value: Any) -> Any:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            storable(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                storable(str(key))
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
    return value


class Strict:
    """JSON strings only: DRF would otherwise turn ``5`` or ``true`` into ``"5"`` and ``"True"``."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid_type")
        return super().to_internal_value(data)


class Text(Strict, serializers.CharField):
    default_error_messages = {"invalid_type": "Must be a string."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.validators.append(storable)


class Integer(serializers.IntegerField):
    """A JSON number without a fraction: not ``"5"``, not ``5.5``, not ``true``."""

    def to_internal_value(self, data: Any) -> int:
        if type(data) is not int:
            self.fail("invalid")
        return super().to_internal_value(data)


class ClientId(Strict, serializers.RegexField):
    default_error_messages = {"invalid_type": "Must be a string."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("error_messages", {"invalid": "Use 1-128 characters of A-Z, a-z, 0-9, _ and -."})
        super().__init__(CLIENT_ID_PATTERN, max_length=128, **kwargs)


class Username(Strict, serializers.RegexField):
    default_error_messages = {"invalid_type": "Must be a string."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("error_messages", {"invalid": "A username: 1-150 letters, digits and @.+-_"})
        super().__init__(USERNAME_PATTERN, max_length=150, **kwargs)


# --- workspaces and members --------------------------------------------------------------


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "workspace",
            value={
                "id": "acme",
                "name": "Acme support",
                "role": "moderator",
                "mutedUntil": None,
                "contentPolicy": "standard",
                "editWindowSeconds": 900,
                "createdAt": "2026-01-05T09:30:00Z",
            },
            response_only=True,
        )
    ]
)
class WorkspaceSerializer(serializers.Serializer):
    """A workspace the caller belongs to, with the caller's role in it."""

    id = serializers.CharField(source="workspace.slug", help_text="The slug: `workspaceId` on sockets.")
    name = serializers.CharField(source="workspace.name")
    role = serializers.ChoiceField(Role.choices, help_text="The caller's role in this workspace.")
    mutedUntil = serializers.DateTimeField(source="muted_until", allow_null=True, help_text="Set while muted.")
    contentPolicy = serializers.ChoiceField(
        ContentPolicy.choices,
        source="workspace.content_policy",
        help_text="What a message that looks like an attack does: `standard` -- it is delivered as text and "
        "recorded as `suspicious_activity`; `strict` -- it is refused with `message_blocked`.",
    )
    editWindowSeconds = serializers.IntegerField(
        source="workspace.edit_window_s",
        help_text="How long after sending an author may edit or delete a message (0: never).",
    )
    createdAt = serializers.DateTimeField(source="workspace.created_at")


class WorkspaceUpdateSerializer(serializers.Serializer):
    contentPolicy = serializers.ChoiceField(
        ContentPolicy.choices, required=False, help_text="`standard` or `strict` (admins only). Absent: nothing changes."
    )
    editWindowSeconds = Integer(
        min_value=0,
        max_value=EDIT_WINDOW_MAX_S,
        required=False,
        help_text="Seconds after sending during which authors may edit or delete (admins only; 0: never).",
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "member",
            value={
                "userId": "alice",
                "userName": "alice",
                "role": "member",
                "joinedAt": "2026-01-05T09:30:00Z",
                "mutedUntil": None,
            },
            response_only=True,
        )
    ]
)
class MemberSerializer(serializers.Serializer):
    userId = serializers.CharField(source="user.username", help_text="The username, as `userId` on sockets.")
    userName = serializers.CharField(source="user.username")
    role = serializers.ChoiceField(Role.choices)
    joinedAt = serializers.DateTimeField(source="created_at")
    mutedUntil = serializers.DateTimeField(
        source="muted_until", allow_null=True, help_text="Until when their sends fail with `muted`; null if not muted."
    )

    def to_representation(self, instance: Membership) -> dict[str, Any]:
        data = super().to_representation(instance)
        if instance.muted_until is not None and instance.muted_until <= timezone.now():
            data["mutedUntil"] = None
        return data


@extend_schema_serializer(
    examples=[OpenApiExample("add a member", value={"username": "bob", "role": "member"}, request_only=True)]
)
class MemberCreateSerializer(serializers.Serializer):
    username = Username(help_text="An existing user's username.")
    role = serializers.ChoiceField(Role.choices, default=Role.MEMBER, help_text="Only admins grant moderator or admin.")


@extend_schema_serializer(examples=[OpenApiExample("promote", value={"role": "moderator"}, request_only=True)])
class MemberUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(Role.choices, required=False, help_text="Absent: nothing changes.")


@extend_schema_serializer(
    examples=[OpenApiExample("mute for an hour", value={"durationSeconds": 3600, "reason": "spam"}, request_only=True)]
)
class MuteSerializer(serializers.Serializer):
    durationSeconds = Integer(
        min_value=1, max_value=MUTE_MAX_SECONDS, help_text="How long their sends fail with `muted`."
    )
    reason = Text(max_length=500, required=False, allow_blank=True, default="", help_text="For the audit log.")


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "ban",
            value={
                "userId": "mallory",
                "role": "member",
                "reason": "abuse",
                "bannedBy": "mod1",
                "createdAt": "2026-01-05T09:30:00Z",
            },
            response_only=True,
        )
    ]
)
class BanSerializer(serializers.Serializer):
    userId = serializers.CharField(source="user.username")
    role = serializers.ChoiceField(Role.choices, help_text="The role they had; lifting the ban restores it.")
    reason = serializers.CharField()
    bannedBy = serializers.CharField(source="banned_by.username", allow_null=True, default=None)
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = WorkspaceBan


@extend_schema_serializer(
    examples=[OpenApiExample("ban", value={"username": "mallory", "reason": "abuse"}, request_only=True)]
)
class BanCreateSerializer(serializers.Serializer):
    username = Username(help_text="A member of the workspace.")
    reason = Text(max_length=500, required=False, allow_blank=True, default="")


# --- sessions ------------------------------------------------------------------------------


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "session",
            value={
                "id": "support-42",
                "workspaceId": "acme",
                "title": "Refund question",
                "agentId": "helper",
                "status": "open",
                "createdBy": "alice",
                "sharedWith": ["bob"],
                "lastSeq": 12,
                "createdAt": "2026-01-05T09:30:00Z",
                "lastActivityAt": "2026-01-05T09:41:12Z",
            },
            response_only=True,
        )
    ]
)
class SessionSerializer(serializers.Serializer):
    id = serializers.CharField(source="key", help_text="The client-chosen id, unique within the workspace.")
    workspaceId = serializers.CharField(source="workspace.slug")
    title = serializers.CharField()
    agentId = serializers.CharField(source="agent.key", allow_null=True, default=None)
    status = serializers.ChoiceField(SessionStatus.choices)
    createdBy = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    sharedWith = serializers.SerializerMethodField()
    lastSeq = serializers.IntegerField(source="last_seq", help_text="The newest message's seq (0: none yet).")
    createdAt = serializers.DateTimeField(source="created_at")
    lastActivityAt = serializers.DateTimeField(source="last_activity_at")

    def get_sharedWith(self, session: ChatSession) -> list[str]:
        return sorted(user.username for user in session.shared_with.all())


class SessionWithUnreadSerializer(SessionSerializer):
    """A session in the caller's list: with how far they read it (``chat.services.read_state``)."""

    lastReadSeq = serializers.IntegerField(
        source="last_read_seq", help_text="The seq the caller marked read (`chat:mark-read`); 0: nothing."
    )
    unreadCount = serializers.IntegerField(
        source="unread_count", help_text="Visible messages after `lastReadSeq` that others sent."
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "create", value={"id": "support-42", "title": "Refund question", "agentId": "helper"}, request_only=True
        )
    ]
)
class SessionCreateSerializer(serializers.Serializer):
    id = ClientId(help_text="The session's id, chosen by the client.")
    title = Text(max_length=200, required=False, allow_blank=True, default="")
    agentId = ClientId(required=False, allow_null=True, default=None, help_text="An agent of the workspace.")


@extend_schema_serializer(
    examples=[OpenApiExample("retitle", value={"title": "Refund (resolved)", "agentId": None}, request_only=True)]
)
class SessionUpdateSerializer(serializers.Serializer):
    title = Text(max_length=200, required=False, allow_blank=True)
    agentId = ClientId(required=False, allow_null=True, help_text="null removes the agent.")


class SessionFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(SessionStatus.choices, required=False, help_text="Only open or closed sessions.")
    agent = ClientId(required=False, help_text="Only sessions with this agent (its id).")
    created_since = serializers.DateTimeField(required=False, help_text="Only sessions created at or after this.")
    participant = Username(
        required=False, help_text="Only sessions this user created, was shared with, or wrote in."
    )
    unread = serializers.BooleanField(
        required=False, default=False, help_text="Only sessions with messages the caller has not read."
    )


@extend_schema_serializer(examples=[OpenApiExample("share", value={"username": "bob"}, request_only=True)])
class ShareSerializer(serializers.Serializer):
    username = Username(help_text="A member of the workspace.")


# --- messages ------------------------------------------------------------------------------

MESSAGE_EXAMPLE = {
    "id": "m-0001",
    "sessionId": "support-42",
    "workspaceId": "acme",
    "seq": 12,
    "senderType": "user",
    "userId": "alice",
    "userName": "alice",
    "content": "Where is my refund?",
    "contentType": "text",
    "html": None,
    "metadata": {},
    "timestamp": 1767605672000,
    "version": 1,
    "editedAt": None,
    "deleted": False,
    "hidden": False,
    "hiddenBy": None,
    "hiddenAt": None,
    "reactions": [{"emoji": "👍", "count": 2, "users": ["alice", "bob"]}],
    "reactionsVersion": 3,
    "attachments": [],
}


class ReactionSerializer(serializers.Serializer):
    emoji = serializers.CharField(help_text="One emoji.")
    count = serializers.IntegerField(help_text="How many members reacted with it (exact).")
    users = serializers.ListField(
        child=serializers.CharField(),
        help_text="Who reacted (usernames), the first `CHAT_REACTION_USERS_SHOWN`; `me` is your name in it.",
    )


class MessageListSerializer(serializers.ListSerializer):
    """A page of messages: their reactions read in one query."""

    def to_representation(self, data: Any) -> list[Any]:
        messages = list(data.all() if hasattr(data, "all") else data)
        reactions.attach([message for message in messages if not hasattr(message, "reaction_aggregate")])
        return super().to_representation(messages)


ATTACHMENT_EXAMPLE = {
    "id": "3f5c0a9e8b7d4c2a9e1f0b6d5c4a3b21",
    "name": "receipt.png",
    "contentType": "image/png",
    "size": 48213,
    "width": 640,
    "height": 480,
    "url": "/api/v1/attachments/eyJhIjoiM2Y1YyIsInUiOjd9:1uXyZa:3kQm.../",
}


@extend_schema_serializer(examples=[OpenApiExample("attachment", value=ATTACHMENT_EXAMPLE, response_only=True)])
class AttachmentSerializer(serializers.Serializer):
    """An uploaded file (``chat.shapes.attachment_shape``)."""

    id = serializers.CharField(help_text="The server's id (32 hex digits): what a message's `attachments` lists.")
    name = serializers.CharField(help_text="The uploader's file name, for display only (last path segment).")
    contentType = serializers.CharField(help_text="Sniffed from the bytes, never the uploader's claim.")
    size = serializers.IntegerField(help_text="Bytes.")
    width = serializers.IntegerField(allow_null=True, help_text="Raster images: pixels, when the header says.")
    height = serializers.IntegerField(allow_null=True)
    url = serializers.CharField(
        allow_null=True,
        help_text="A signed download path for the caller, relative to the server, valid for "
        "CHAT_ATTACHMENT_URL_TTL_S. `null` in broadcasts: ask `GET .../attachments/<id>/` for one.",
    )


class AttachmentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The file (multipart/form-data). Its type is sniffed from its bytes.")
    name = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="The name to show instead of the part's filename (control characters: `attachment_name_invalid`).",
    )


@extend_schema_serializer(examples=[OpenApiExample("message", value=MESSAGE_EXAMPLE, response_only=True)])
class MessageSerializer(serializers.Serializer):
    """The socket protocol's ``ChatMessage``, plus its moderation state and reactions."""

    class Meta:
        list_serializer_class = MessageListSerializer

    id = serializers.CharField(help_text="The client's id, unique within the session; the idempotency key.")
    sessionId = serializers.CharField()
    workspaceId = serializers.CharField()
    seq = serializers.IntegerField(help_text="1, 2, 3... per session, no gaps.")
    senderType = serializers.ChoiceField(SenderType.choices)
    userId = serializers.CharField(allow_null=True)
    userName = serializers.CharField()
    content = serializers.CharField(help_text="Exactly what the sender wrote. Show it as text, never as HTML.")
    contentType = serializers.ChoiceField(ContentType.choices)
    html = serializers.CharField(
        allow_null=True,
        help_text="`markdown` messages: the server's safe HTML rendering of `content` (an allow-list of "
        "elements; links http/https/mailto with rel=\"nofollow noopener\"). `null` for `text`.",
    )
    metadata = serializers.DictField()
    timestamp = serializers.IntegerField(help_text="Milliseconds since the epoch.")
    version = serializers.IntegerField(help_text="1 when sent, one more with every edit, deletion or regeneration.")
    editedAt = serializers.IntegerField(allow_null=True, help_text="When last edited (ms); null if never.")
    deleted = serializers.BooleanField(
        help_text="A tombstone: deleted by its author or a moderator; `content`, `html`, `metadata` are empty."
    )
    hidden = serializers.BooleanField(help_text="Hidden by a moderator (only moderators ever see these).")
    hiddenBy = serializers.CharField(allow_null=True, help_text="Moderators only: who hid it.")
    hiddenAt = serializers.IntegerField(allow_null=True, help_text="Moderators only: when (ms).")
    reactions = ReactionSerializer(many=True, help_text="In order of first use; see `chat:reactions-updated`.")
    reactionsVersion = serializers.IntegerField(
        help_text="The reactions' version: 0 never reacted to, then +1 per change. Keep the highest seen."
    )
    attachments = AttachmentSerializer(many=True, help_text="The files the message carries, in the order sent.")

    def to_representation(self, message: ChatMessage) -> dict[str, Any]:
        if not hasattr(message, "reaction_aggregate"):
            reactions.attach([message])
        data = message_shape(message)
        data["hidden"] = message.hidden
        data["hiddenBy"] = message.hidden_by.username if message.hidden and message.hidden_by else None
        data["hiddenAt"] = to_ms(message.hidden_at) if message.hidden and message.hidden_at else None
        return data


@extend_schema_serializer(
    examples=[OpenApiExample("posted", value={**MESSAGE_EXAMPLE, "duplicate": False}, response_only=True)]
)
class PostedMessageSerializer(MessageSerializer):
    duplicate = serializers.BooleanField(help_text="True when this id was posted before: nothing new was stored.")


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "integrator message",
            value={"id": "crm-7781", "content": "Order #7781 was refunded.", "metadata": {"orderId": 7781}},
            request_only=True,
        ),
        OpenApiExample(
            "system notice",
            value={"id": "sys-1", "content": "An agent will join shortly.", "senderType": "system", "senderName": "bot"},
            request_only=True,
        ),
    ]
)
class MessageCreateSerializer(serializers.Serializer):
    id = ClientId(help_text="Your id for the message: posting the same id again returns the original.")
    content = Text(help_text="1 to CHAT_MESSAGE_MAX_LENGTH characters (longer: `message_too_long`).")
    contentType = serializers.ChoiceField(ContentType.choices, default=ContentType.TEXT)
    metadata = serializers.DictField(
        required=False, default=dict, help_text="Free-form JSON object, at most 16 KiB and 8 levels deep."
    )
    senderType = serializers.ChoiceField(
        POSTED_SENDER_TYPES,
        default="user",
        help_text="`user`: as the caller (an integrator's own user), and the session's agent answers. "
        "`system`: a system notice (moderators and admins only).",
    )
    senderName = Text(
        max_length=150, required=False, allow_blank=False, help_text="For `system` messages: the name shown."
    )
    attachments = serializers.ListField(
        child=serializers.RegexField(ATTACHMENT_ID_PATTERN),
        required=False,
        default=list,
        help_text="Ids of your uploads in this session (`POST .../attachments/`), at most "
        "CHAT_ATTACHMENTS_PER_MESSAGE (`too_many_attachments`); each must be yours, in this session and not "
        "sent before (`attachment_not_found`, `attachment_in_use`).",
    )

    def validate_metadata(self, value: dict) -> dict:
        return storable_json(value)


class ChangedMessageSerializer(MessageSerializer):
    duplicate = serializers.BooleanField(
        help_text="True when nothing new was stored: a repeat of this change, the same text, or deleted already."
    )


@extend_schema_serializer(
    examples=[OpenApiExample("edit", value={"version": 1, "content": "Where is my refund for #7781?"}, request_only=True)]
)
class MessageEditSerializer(serializers.Serializer):
    version = Integer(
        min_value=1,
        max_value=2**31,
        help_text="The version you edit (the message's `version` as you have it). Another current version is "
        "409 `version_conflict`; repeating this very edit answers 200 with `duplicate: true`.",
    )
    content = Text(help_text="1 to CHAT_MESSAGE_MAX_LENGTH characters (longer: `message_too_long`).")
    contentType = serializers.ChoiceField(ContentType.choices, required=False, help_text="Default: the message's own.")
    metadata = serializers.DictField(required=False, help_text="Default: the message's own. At most 16 KiB of JSON.")

    def validate_metadata(self, value: dict) -> dict:
        return storable_json(value)

    # An edit replaces the content: ``version`` and ``content`` are required even though the method is PATCH
    # (the view validates it whole; drf-spectacular would otherwise document a PATCH body as all-optional).
    @property
    def partial(self) -> bool:
        return False

    @partial.setter
    def partial(self, value: bool) -> None:
        pass


class MessageDeleteParamsSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1,
        max_value=2**31,
        required=False,
        help_text="Delete only if the message is still at this version (otherwise 409 `version_conflict`).",
    )


class MessageVersionSerializer(serializers.Serializer):
    """A version of a message that an edit or deletion replaced."""

    version = serializers.IntegerField()
    content = serializers.CharField(help_text="Exactly what it said then. Show it as text, never as HTML.")
    contentType = serializers.ChoiceField(ContentType.choices, source="content_type")
    html = serializers.SerializerMethodField()
    metadata = serializers.DictField()
    reason = serializers.ChoiceField(VersionReason.choices, help_text="What replaced it.")
    changedBy = serializers.SerializerMethodField(help_text="Who replaced it (null: a deleted user).")
    replacedAt = serializers.SerializerMethodField(help_text="When it was replaced (ms).")

    def get_html(self, row: MessageVersion) -> str | None:
        return row.html if row.content_type == ContentType.MARKDOWN else None

    def get_changedBy(self, row: MessageVersion) -> str | None:
        return row.changed_by.get_username() if row.changed_by else None

    def get_replacedAt(self, row: MessageVersion) -> int:
        return to_ms(row.replaced_at)


class MessageVersionsSerializer(serializers.Serializer):
    messageId = serializers.CharField()
    version = serializers.IntegerField(help_text="The current version (the message itself).")
    deleted = serializers.BooleanField()
    results = MessageVersionSerializer(many=True, help_text="The replaced versions, oldest first.")


class HistoryParamsSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50, help_text="Messages per page, 1-200.")
    after_seq = serializers.IntegerField(
        min_value=0, max_value=2**53, required=False, help_text="Messages after this seq, oldest first (catching up)."
    )
    before_seq = serializers.IntegerField(
        min_value=1,
        max_value=2**53,
        required=False,
        help_text="Messages before this seq (paging back). With after_seq: the messages between the two.",
    )


class HistoryPageSerializer(serializers.Serializer):
    results = MessageSerializer(many=True, help_text="In seq order, oldest first.")
    hasMore = serializers.BooleanField(
        help_text="With after_seq: more messages follow the page; otherwise: older messages precede it."
    )
    next = serializers.URLField(allow_null=True, help_text="The page after this one (after_seq), if any.")
    previous = serializers.URLField(allow_null=True, help_text="The page before this one (before_seq), if any.")
    lastSeq = serializers.IntegerField(help_text="The session's newest seq now.")


class SearchParamsSerializer(serializers.Serializer):
    q = Text(
        min_length=1,
        max_length=SEARCH_MAX_LENGTH,
        help_text="Words to find (PostgreSQL full-text search: `\"a phrase\"`, `or`, `-word`; plain "
        "substring matching of every word on SQLite).",
    )
    session = ClientId(required=False, help_text="Only this session.")

    def validate_q(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Give at least one word.")
        return value


# --- presence -------------------------------------------------------------------------------


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "presence",
            value={
                "sessionId": "support-42",
                "workspaceId": "acme",
                "userId": "alice",
                "userName": "alice",
                "socketId": "x7Gd0mPq1k9s",
                "status": "active",
                "lastSeen": 1767605672000,
            },
            response_only=True,
        )
    ]
)
class PresenceSerializer(serializers.Serializer):
    """The socket protocol's ``ChatPresence``: one socket in the session."""

    sessionId = serializers.CharField()
    workspaceId = serializers.CharField()
    userId = serializers.CharField()
    userName = serializers.CharField()
    socketId = serializers.CharField()
    status = serializers.ChoiceField(PresenceStatus.choices)
    lastSeen = serializers.IntegerField(help_text="Milliseconds since the epoch.")


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "online",
            value={"userId": "alice", "userName": "alice", "status": "active", "lastSeen": 1767605672000, "sockets": 2},
            response_only=True,
        )
    ]
)
class OnlineUserSerializer(serializers.Serializer):
    userId = serializers.CharField()
    userName = serializers.CharField()
    status = serializers.ChoiceField(PresenceStatus.choices, help_text="The most present of their sockets.")
    lastSeen = serializers.IntegerField(help_text="Milliseconds since the epoch.")
    sockets = serializers.IntegerField(help_text="Their connected sockets in this workspace's sessions.")


# --- security events ---------------------------------------------------------------------------


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "event",
            value={
                "id": 311,
                "type": "rate_limit_exceeded",
                "userId": "alice",
                "workspaceId": "acme",
                "sessionId": "",
                "ip": "203.0.113.9",
                "userAgent": "curl/8.5",
                "detail": {"surface": "rest", "rate": "120/m"},
                "createdAt": "2026-01-05T09:30:00Z",
            },
            response_only=True,
        )
    ]
)
class SecurityEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.ChoiceField(SecurityEventType.choices)
    userId = serializers.CharField(source="user.username", allow_null=True, default=None)
    workspaceId = serializers.CharField(source="workspace.slug", allow_null=True, default=None)
    sessionId = serializers.CharField(source="session_key", help_text="Empty when no session was involved.")
    ip = serializers.IPAddressField(allow_null=True)
    userAgent = serializers.CharField(source="user_agent")
    detail = serializers.DictField()
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = SecurityEvent


class SecurityEventFilterSerializer(serializers.Serializer):
    type = serializers.ChoiceField(SecurityEventType.choices, required=False)
    user = Username(required=False, help_text="Only events of this user.")
    session = ClientId(required=False, help_text="Only events about this session id.")
    since = serializers.DateTimeField(required=False, help_text="At or after this time.")
    until = serializers.DateTimeField(required=False, help_text="Before this time.")

