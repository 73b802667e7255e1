"""``/workspaces/{workspace}/sessions/``: list, create, read, update, close, share; who is in one.

Layer: REST API (thin: parse, call :mod:`chat.services.sessions`, announce, shape).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from chat.actions import access
from chat.models import ChatSession, Presence
from chat.services import announce, read_state
from chat.services import sessions as service
from chat.shapes import presence_shape

from .base import ApiView, valid_body
from .pagination import NewestFirst
from .schema import LIST, SESSION, USERNAME, WORKSPACE, errors
from .serializers import (
    PresenceSerializer,
    SessionCreateSerializer,
    SessionFilterSerializer,
    SessionSerializer,
    SessionUpdateSerializer,
    SessionWithUnreadSerializer,
    ShareSerializer,
)

TAG = ["sessions"]


def _with_sharees(sessions: QuerySet[ChatSession]) -> QuerySet[ChatSession]:
    return sessions.prefetch_related(Prefetch("shared_with", queryset=get_user_model().objects.only("username")))


@extend_schema(tags=TAG, parameters=[WORKSPACE])
class SessionList(ApiView):
    serializer_class = SessionWithUnreadSerializer
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[ChatSession]:
        if getattr(self, "swagger_fake_view", False):
            return ChatSession.objects.none()
        query = self.validated_query(SessionFilterSerializer)
        unread_only = query.pop("unread", False)
        sessions = service.list_sessions(self.membership, service.SessionFilters(**query))
        sessions = read_state.with_unread(sessions, self.membership.user_id)
        if unread_only:
            sessions = sessions.filter(unread_count__gt=0)
        return _with_sharees(sessions)

    @extend_schema(
        summary="List sessions",
        description="The sessions the caller may see (created, shared with them, or any as a moderator), "
        "newest first, filtered by status, agent, creation time and participant, each with the caller's "
        "read pointer and unread count; `unread=true`: only those with unread messages.",
        parameters=[SessionFilterSerializer],
        responses={200: SessionWithUnreadSerializer(many=True), **errors(*LIST, "not_a_member")},
    )
    def get(self, request: Request, workspace: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SessionWithUnreadSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a session",
        description="Owned by the caller. Sockets may then join it with `chat:join-session`.",
        request=SessionCreateSerializer,
        responses={
            201: SessionSerializer,
            **errors("invalid_payload", "not_a_member", "agent_not_found", "session_exists"),
        },
    )
    def post(self, request: Request, workspace: str) -> Response:
        data = valid_body(SessionCreateSerializer, request)
        session = service.create_session(self.membership, data["id"], title=data["title"], agent_key=data["agentId"])
        response = Response(SessionSerializer(session).data, status=status.HTTP_201_CREATED)
        response["Location"] = request.build_absolute_uri(f"{session.key}/")
        return response


@extend_schema(tags=TAG, parameters=[WORKSPACE, SESSION])
class SessionDetail(ApiView):
    serializer_class = SessionSerializer

    def session(self) -> ChatSession:
        return service.get_session(self.membership, self.kwargs["session"])

    @extend_schema(
        summary="Get a session", responses={200: SessionSerializer, **errors("not_a_member", "session_not_found")}
    )
    def get(self, request: Request, workspace: str, session: str) -> Response:
        return Response(SessionSerializer(self.session()).data)

    @extend_schema(
        summary="Update a session's title or agent",
        description="By its creator or a moderator. Sockets in the session receive `chat:session-updated`.",
        request=SessionUpdateSerializer,
        responses={
            200: SessionSerializer,
            **errors("invalid_payload", "forbidden", "not_a_member", "session_not_found", "agent_not_found"),
        },
    )
    def patch(self, request: Request, workspace: str, session: str) -> Response:
        row = self.session()
        data = valid_body(SessionUpdateSerializer, request)
        changes = {}
        if "title" in data:
            changes["title"] = data["title"]
        if "agentId" in data:
            changes["agent_key"] = data["agentId"]
        if service.update_session(self.membership, row, **changes):
            announce.session_updated(row)
        return Response(SessionSerializer(row).data)


@extend_schema(tags=TAG, parameters=[WORKSPACE, SESSION])
class SessionClose(ApiView):
    serializer_class = SessionSerializer

    @extend_schema(
        summary="Close a session",
        description="By its creator or a moderator. Every socket in it receives `chat:session-closed`; from "
        "then on sends fail with `session_closed` (history stays readable). Closing a closed session "
        "changes nothing.",
        request=None,
        responses={200: SessionSerializer, **errors("forbidden", "not_a_member", "session_not_found")},
    )
    def post(self, request: Request, workspace: str, session: str) -> Response:
        row = service.get_session(self.membership, session)
        service.check_can_manage(self.membership, row)
        if service.close_session(request.user, row):
            announce.session_closed(row, request.user.get_username())
        return Response(SessionSerializer(row).data)


@extend_schema(tags=TAG, parameters=[WORKSPACE, SESSION])
class SessionShare(ApiView):
    serializer_class = SessionSerializer

    @extend_schema(
        summary="Share a session with a member",
        description="By its creator or a moderator; the member may then read, join and write in it.",
        request=ShareSerializer,
        responses={
            200: SessionSerializer,
            **errors("invalid_payload", "forbidden", "not_a_member", "session_not_found", "member_not_found"),
        },
    )
    def post(self, request: Request, workspace: str, session: str) -> Response:
        row = service.get_session(self.membership, session)
        data = valid_body(ShareSerializer, request)
        service.share_session(self.membership, row, data["username"])
        return Response(SessionSerializer(row).data)


@extend_schema(tags=TAG, parameters=[WORKSPACE, SESSION, USERNAME])
class SessionUnshare(ApiView):
    serializer_class = SessionSerializer

    @extend_schema(
        summary="Stop sharing a session with a member",
        description="Their sockets in the session leave it at once (`chat:session-left`, code `access_revoked`).",
        responses={200: SessionSerializer, **errors("forbidden", "not_a_member", "session_not_found")},
    )
    def delete(self, request: Request, workspace: str, session: str, username: str) -> Response:
        row = service.get_session(self.membership, session)
        access.unshare_session(self.membership, row, username)
        return Response(SessionSerializer(row).data)


def live_presence() -> QuerySet[Presence]:
    """Rows refreshed within the TTL: sockets whose worker is alive."""
    cutoff = timezone.now() - timedelta(seconds=settings.CHAT.presence_ttl_s)
    return Presence.objects.filter(last_seen__gte=cutoff)


@extend_schema(tags=["presence"], parameters=[WORKSPACE, SESSION])
class SessionPresence(ApiView):
    serializer_class = PresenceSerializer

    @extend_schema(
        summary="Who is in a session",
        description="One entry per connected socket, live from the presence store, oldest connection first.",
        responses={
            200: OpenApiResponse(PresenceSerializer(many=True)),
            **errors("not_a_member", "session_not_found"),
        },
    )
    def get(self, request: Request, workspace: str, session: str) -> Response:
        row = service.get_session(self.membership, session)
        rows = live_presence().filter(session=row).order_by("connected_at", "pk")
        return Response([presence_shape(presence, row) for presence in rows])
