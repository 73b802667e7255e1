"""``/workspaces/{workspace}/security-events/``: the security log of a workspace, for its moderators.

Layer: REST API.  Events not tied to a workspace are seen in the admin, by superusers.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from security.models import SecurityEvent

from .base import ApiView, filtered
from .pagination import NewestFirst
from .schema import LIST, WORKSPACE, errors
from .serializers import SecurityEventFilterSerializer, SecurityEventSerializer


@extend_schema(tags=["moderation"], parameters=[WORKSPACE])
class SecurityEventList(ApiView):
    serializer_class = SecurityEventSerializer
    pagination_class = NewestFirst
    moderators_only = True

    def get_queryset(self) -> QuerySet[SecurityEvent]:
        if getattr(self, "swagger_fake_view", False):
            return SecurityEvent.objects.none()
        query = self.validated_query(SecurityEventFilterSerializer)
        events = SecurityEvent.objects.filter(workspace_id=self.membership.workspace_id).select_related(
            "user", "workspace"
        )
        fields = {"type": "type", "user": "user__username", "session": "session_key"}
        return filtered(events, query, fields, "created_at")

    @extend_schema(
        summary="List the workspace's security events",
        description="Moderators and admins. Newest first; filter by type, user, session and time.",
        parameters=[SecurityEventFilterSerializer],
        responses={200: SecurityEventSerializer(many=True), **errors(*LIST, "forbidden", "not_a_member")},
    )
    def get(self, request: Request, workspace: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SecurityEventSerializer(page, many=True).data)
