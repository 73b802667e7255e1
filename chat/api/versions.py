"""``.../sessions/{session}/messages/{message}/versions/``: the versions of a message that later changes replaced.

Layer: REST API.  Members who may read the session see the earlier
versions of its messages (a regenerated agent reply's earlier answers, an
edited message's earlier text), oldest first; the current version is the
message itself (``GET .../messages/{message}/``).  A hidden message is
``message_not_found`` for members, as everywhere; so is a deleted one,
whose earlier text only moderators may read.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from chat.models import ContentType, MessageVersion, VersionReason
from chat.services import sessions as service
from chat.services.sessions import MessageNotFound
from chat.shapes import to_ms

from .base import ApiView
from .schema import MESSAGE, SESSION, WORKSPACE, errors

#: A message keeps at most this many versions in one answer (the newest replaced ones).
MAX_VERSIONS = 200


class MessageVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="The number the message had while this was current.")
    content = serializers.CharField(allow_blank=True, help_text="Verbatim: show it as text.")
    contentType = serializers.ChoiceField(ContentType.choices, source="content_type")
    html = serializers.CharField(allow_null=True, help_text="The server's safe HTML of a markdown version.")
    metadata = serializers.DictField()
    reason = serializers.ChoiceField(VersionReason.choices, help_text="What replaced it.")
    replacedAt = serializers.IntegerField(help_text="When it was replaced (ms since the epoch).")

    def to_representation(self, row: MessageVersion) -> dict:
        return {
            "version": row.version,
            "content": row.content,
            "contentType": row.content_type,
            "html": row.html if row.content_type == ContentType.MARKDOWN else None,
            "metadata": row.metadata,
            "reason": row.reason,
            "replacedAt": to_ms(row.replaced_at),
        }


class MessageVersionsSerializer(serializers.Serializer):
    messageId = serializers.CharField()
    version = serializers.IntegerField(min_value=1, help_text="The current version (the message itself).")
    deleted = serializers.BooleanField()
    results = MessageVersionSerializer(many=True, help_text="Earlier versions, oldest first.")


@extend_schema(tags=["messages"], parameters=[WORKSPACE, SESSION, MESSAGE])
class MessageVersionList(ApiView):
    serializer_class = MessageVersionsSerializer

    @extend_schema(
        summary="List a message's earlier versions",
        description="Members of the session. Oldest first; the current version is the message itself.",
        responses={
            200: MessageVersionsSerializer,
            **errors("not_a_member", "session_not_found", "message_not_found"),
        },
    )
    def get(self, request: Request, workspace: str, session: str, message: str) -> Response:
        moderates = self.membership.moderates
        row = service.get_session(self.membership, session)
        found = service.get_message(row, message, include_hidden=moderates)
        if found.deleted_at is not None and not moderates:
            raise MessageNotFound()
        rows = list(MessageVersion.objects.filter(message=found).order_by("-version")[:MAX_VERSIONS])
        body = {
            "messageId": found.key,
            "version": found.version,
            "deleted": found.deleted_at is not None,
            "results": [MessageVersionSerializer(r).data for r in reversed(rows)],
        }
        return Response(body)
