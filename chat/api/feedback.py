"""``/workspaces/{workspace}/feedback/``: members' ratings of agent replies, for the workspace's moderators.

Layer: REST API.  Newest first (by when the rating was last changed),
cursor-paginated; filter by agent, rating, session and time.  JSON by
default, CSV with ``?format=csv`` or ``Accept: text/csv`` (the same page,
the same ``next``/``previous`` links in a ``Link`` header).  CSV cells
starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return are
prefixed with ``'`` so a spreadsheet never runs them as formulas.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from chat.models import MessageFeedback, Rating

from .base import ApiView, filtered
from .pagination import Cursor
from .schema import LIST, WORKSPACE, errors
from .serializers import ClientId

COLUMNS = (
    "id", "workspaceId", "sessionId", "messageId", "agentId", "version",
    "userId", "rating", "comment", "createdAt", "updatedAt",
)  # fmt: skip
#: What a spreadsheet reads as the start of a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class FeedbackSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    workspaceId = serializers.CharField(source="message.session.workspace.slug")
    sessionId = serializers.CharField(source="message.session.key")
    messageId = serializers.CharField(source="message.key")
    agentId = serializers.CharField(source="message.agent.key", allow_null=True, default=None)
    version = serializers.IntegerField(help_text="The reply's version when it was rated.")
    userId = serializers.CharField(source="user.username")
    rating = serializers.ChoiceField(Rating.choices)
    comment = serializers.CharField(allow_blank=True)
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")


class FeedbackFilterSerializer(serializers.Serializer):
    agent = ClientId(required=False, help_text="Only ratings of this agent's replies (its key).")
    rating = serializers.ChoiceField(Rating.choices, required=False)
    session = ClientId(required=False, help_text="Only ratings of replies in this session.")
    since = serializers.DateTimeField(required=False, help_text="Rated (or last changed) at or after this time.")
    until = serializers.DateTimeField(required=False, help_text="Rated (or last changed) before this time.")


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class CsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        rows = data.get("results") if isinstance(data, dict) and "results" in data else data
        out = io.StringIO()
        writer = csv.writer(out)
        if isinstance(rows, list):
            writer.writerow(COLUMNS)
            for row in rows:
                writer.writerow([safe_cell(row.get(column)) for column in COLUMNS])
        elif isinstance(rows, dict):  # an error: its fields, one per line
            for key, value in rows.items():
                writer.writerow([safe_cell(key), safe_cell(value)])
        return out.getvalue().encode()


class RecentlyRated(Cursor):
    ordering = ("-updated_at", "-pk")

    def get_paginated_response(self, data: Any) -> Response:
        response = super().get_paginated_response(data)
        links = [
            f'<{url}>; rel="{rel}"'
            for rel, url in (("next", self.get_next_link()), ("prev", self.get_previous_link()))
            if url
        ]
        if links:
            response["Link"] = ", ".join(links)
        return response


@extend_schema(tags=["moderation"], parameters=[WORKSPACE])
class FeedbackList(ApiView):
    serializer_class = FeedbackSerializer
    pagination_class = RecentlyRated
    renderer_classes = [JSONRenderer, CsvRenderer]
    moderators_only = True

    def get_queryset(self) -> QuerySet[MessageFeedback]:
        if getattr(self, "swagger_fake_view", False):
            return MessageFeedback.objects.none()
        query = self.validated_query(FeedbackFilterSerializer)
        rows = MessageFeedback.objects.filter(message__session__workspace_id=self.membership.workspace_id)
        rows = rows.select_related("user", "message__session__workspace", "message__agent")
        fields = {"agent": "message__agent__key", "rating": "rating", "session": "message__session__key"}
        return filtered(rows, query, fields, "updated_at")

    @extend_schema(
        summary="Export ratings of agent replies",
        description=(
            "Moderators and admins. Newest first; filter by agent, rating, session and time. "
            "`?format=csv` (or `Accept: text/csv`) gives the page as CSV, its links in a `Link` header."
        ),
        parameters=[FeedbackFilterSerializer],
        responses={
            (200, "application/json"): FeedbackSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR, description="The same page as CSV, one rating per row."
            ),
            **errors(*LIST, "forbidden", "not_a_member"),
        },
    )
    def get(self, request: Request, workspace: str, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(FeedbackSerializer(page, many=True).data)
