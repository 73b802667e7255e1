"""Reactions and read pointers over REST: the actions behind ``chat:add-reaction``, ``chat:remove-reaction``
and ``chat:mark-read``, for integrators.

Layer: REST API (thin: parse, call :mod:`chat.actions.reactions` and
:mod:`chat.actions.read_state`).  The same checks, caps, limits (``react``
and ``read`` per member, on top of the API's own rate) and broadcasts as on
a socket: members in the session receive ``chat:reactions-updated`` and
``chat:read-updated`` as if the change came from a socket.

- ``PUT .../messages/{message}/reactions/{emoji}/``: add your reaction
  (idempotent: adding it again changes nothing and is not announced);
- ``DELETE`` the same: remove it (idempotent too);
- ``POST .../sessions/{session}/read/`` ``{"seq": n}``: move your read
  pointer forward to ``n`` (clamped to the newest message; never back).

The emoji is one path segment, percent-encoded as any URL is
(``%F0%9F%91%8D`` for 👍).
"""

from __future__ import annotations

from typing import Any, Callable

from asgiref.sync import async_to_sync
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from chat.actions.messages import SessionRef
from chat.actions.reactions import add_reaction, remove_reaction
from chat.actions.read_state import mark_read
from chat.models import ChatMessage, ChatSession
from chat.services import screening
from chat.services import sessions as service
from chat.shapes import reactions_fields

from .base import ApiView, valid_body
from .schema import MESSAGE, SESSION, WORKSPACE, errors
from .serializers import Integer, ReactionSerializer

EMOJI = OpenApiParameter(
    "emoji", str, OpenApiParameter.PATH, description="One emoji, percent-encoded (`%F0%9F%91%8D` for 👍)."
)
REACTION_ERRORS = (
    "invalid_emoji",
    "reaction_emoji_limit",
    "reaction_user_limit",
    "muted",
    "not_a_member",
    "session_not_found",
    "message_not_found",
    "session_closed",
    "rate_limited",
)


class ReactionsSerializer(serializers.Serializer):
    messageId = serializers.CharField(source="key")
    reactions = ReactionSerializer(many=True, help_text="The message's reactions after the change, first use first.")
    reactionsVersion = serializers.IntegerField(
        help_text="Their version: +1 per change. A socket keeps the highest of this and `chat:reactions-updated`."
    )

    def to_representation(self, message: ChatMessage) -> dict[str, Any]:
        return {"messageId": message.key, **reactions_fields(message)}


class MarkReadSerializer(serializers.Serializer):
    seq = Integer(min_value=0, max_value=2**63 - 1, help_text="Read up to this message's `seq` (clamped).")


class ReadPointerSerializer(serializers.Serializer):
    sessionId = serializers.CharField()
    lastReadSeq = serializers.IntegerField(help_text="Your pointer now (it never moves back).")
    unreadCount = serializers.IntegerField(help_text="Visible messages after it that others sent.")


def _where(row: ChatSession) -> SessionRef:
    return SessionRef(row.pk, row.key, row.workspace_id, row.workspace.slug)


def _limit(request: Request, operation: str) -> None:
    async_to_sync(screening.limiter().check)(operation, request.user.pk)


@extend_schema(tags=["messages"], parameters=[WORKSPACE, SESSION, MESSAGE, EMOJI])
class MessageReaction(ApiView):
    serializer_class = ReactionsSerializer

    @extend_schema(
        summary="React to a message",
        description="Adds your reaction (once: adding it again answers the same aggregate and announces "
        "nothing). Members in the session receive `chat:reactions-updated`. Muted members cannot react.",
        request=None,
        responses={200: ReactionsSerializer, **errors(*REACTION_ERRORS)},
    )
    def put(self, request: Request, workspace: str, session: str, message: str, emoji: str) -> Response:
        return self._change(add_reaction, session, message, emoji)

    @extend_schema(
        summary="Take back your reaction",
        description="Removes your reaction; removing one you did not make changes nothing. Members in the "
        "session receive `chat:reactions-updated`.",
        request=None,
        responses={200: ReactionsSerializer, **errors(*REACTION_ERRORS)},
    )
    def delete(self, request: Request, workspace: str, session: str, message: str, emoji: str) -> Response:
        return self._change(remove_reaction, session, message, emoji)

    def _change(self, change: Callable[..., ChatMessage], session: str, message: str, emoji: str) -> Response:
        row = service.get_session(self.membership, session)
        _limit(self.request, "react")
        return Response(ReactionsSerializer(change(self.request.user, _where(row), message, emoji)).data)


@extend_schema(tags=["sessions"], parameters=[WORKSPACE, SESSION])
class SessionRead(ApiView):
    serializer_class = ReadPointerSerializer

    @extend_schema(
        summary="Mark a session read",
        description="Moves your read pointer forward to `seq` (a `seq` past the newest message is clamped to "
        "it; an older one changes nothing). Members in the session and your own sockets receive "
        "`chat:read-updated`; `GET .../sessions/?unread=true` then leaves the session out when nothing is unread.",
        request=MarkReadSerializer,
        responses={
            200: ReadPointerSerializer,
            **errors("invalid_payload", "not_a_member", "session_not_found", "rate_limited"),
        },
    )
    def post(self, request: Request, workspace: str, session: str) -> Response:
        row = service.get_session(self.membership, session)
        seq = valid_body(MarkReadSerializer, request)["seq"]
        _limit(request, "read")
        pointer = mark_read(request.user, _where(row), seq)
        return Response({"sessionId": row.key, "lastReadSeq": pointer.seq, "unreadCount": pointer.unread_count})
