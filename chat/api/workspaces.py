"""``/workspaces/``: the caller's workspaces, their members, mutes and bans.

Layer: REST API (thin: parse, call :mod:`chat.services.moderation` or, for changes of access,
:mod:`chat.actions.access`, shape).
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from chat.actions import access
from chat.models import Membership, WorkspaceBan
from chat.services import moderation

from .base import ApiView, valid_body
from .pagination import OldestFirst
from .schema import LIST, USERNAME, WORKSPACE, errors
from .serializers import (
    BanCreateSerializer,
    BanSerializer,
    MemberCreateSerializer,
    MemberSerializer,
    MemberUpdateSerializer,
    MuteSerializer,
    WorkspaceSerializer,
    WorkspaceUpdateSerializer,
)

TAG = ["workspaces"]
MODERATION = ["moderation"]


class WorkspaceList(ApiView):
    serializer_class = WorkspaceSerializer
    pagination_class = OldestFirst

    def get_queryset(self) -> QuerySet[Membership]:
        return Membership.objects.filter(user_id=self.request.user.pk).select_related("workspace")

    @extend_schema(
        tags=TAG,
        summary="List my workspaces",
        description="Every workspace the caller is a member of, with the caller's role in it.",
        responses={200: WorkspaceSerializer(many=True), **errors(*LIST)},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WorkspaceSerializer(page, many=True).data)


@extend_schema(tags=TAG, parameters=[WORKSPACE])
class WorkspaceDetail(ApiView):
    serializer_class = WorkspaceSerializer

    @extend_schema(
        summary="Get one of my workspaces",
        responses={200: WorkspaceSerializer, **errors("not_a_member")},
    )
    def get(self, request: Request, workspace: str) -> Response:
        return Response(WorkspaceSerializer(self.membership).data)

    @extend_schema(
        summary="Change a workspace's settings",
        description="Admins of the workspace only. `contentPolicy`: what a message that looks like an attack "
        "(script tags, event handlers, `javascript:` URLs, obfuscated hosts) does -- `standard` (the default) "
        "delivers it as text and records `suspicious_activity` with a strike for the sender; `strict` refuses "
        "it with `message_blocked`. Applies to the next message (on other workers within 5 s). "
        "`editWindowSeconds`: how long after sending an author may edit or delete a message (0: never). Audited.",
        request=WorkspaceUpdateSerializer,
        responses={200: WorkspaceSerializer, **errors("invalid_payload", "forbidden", "not_a_member")},
    )
    def patch(self, request: Request, workspace: str) -> Response:
        data = valid_body(WorkspaceUpdateSerializer, request)
        membership = self.membership
        if "contentPolicy" in data:
            membership.workspace = moderation.set_content_policy(membership, data["contentPolicy"])
        if "editWindowSeconds" in data:
            membership.workspace = moderation.set_edit_window(membership, data["editWindowSeconds"])
        return Response(WorkspaceSerializer(membership).data)


@extend_schema(tags=TAG, parameters=[WORKSPACE])
class MemberList(ApiView):
    serializer_class = MemberSerializer
    pagination_class = OldestFirst

    def get_queryset(self) -> QuerySet[Membership]:
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return Membership.objects.filter(workspace_id=self.membership.workspace_id).select_related("user")

    @extend_schema(
        summary="List the workspace's members",
        description="Any member may list the members, oldest membership first.",
        responses={200: MemberSerializer(many=True), **errors(*LIST, "not_a_member")},
    )
    def get(self, request: Request, workspace: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(MemberSerializer(page, many=True).data)

    @extend_schema(
        summary="Add a member",
        description="Moderators add plain members; admins add members of any role. A banned user cannot be "
        "added until the ban is lifted.",
        request=MemberCreateSerializer,
        responses={
            201: MemberSerializer,
            **errors("invalid_payload", "forbidden", "banned", "not_a_member", "user_not_found", "member_exists"),
        },
    )
    def post(self, request: Request, workspace: str) -> Response:
        data = valid_body(MemberCreateSerializer, request)
        membership = moderation.add_member(self.membership, data["username"], data["role"])
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=TAG, parameters=[WORKSPACE, USERNAME])
class MemberDetail(ApiView):
    serializer_class = MemberSerializer

    def target(self) -> Membership:
        return moderation.member(self.membership.workspace, self.kwargs["username"])

    @extend_schema(summary="Get a member", responses={200: MemberSerializer, **errors("not_a_member", "member_not_found")})
    def get(self, request: Request, workspace: str, username: str) -> Response:
        return Response(MemberSerializer(self.target()).data)

    @extend_schema(
        summary="Change a member's role",
        description="Admins only, for moderator and admin roles; nobody changes their own role. A demoted "
        "moderator's sockets lose the moderator view at once, and leave the sessions they could reach only as one.",
        request=MemberUpdateSerializer,
        responses={
            200: MemberSerializer,
            **errors("invalid_payload", "forbidden", "not_a_member", "member_not_found"),
        },
    )
    def patch(self, request: Request, workspace: str, username: str) -> Response:
        target = self.target()
        data = valid_body(MemberUpdateSerializer, request)
        membership = access.change_role(self.membership, target, data.get("role", target.role))
        return Response(MemberSerializer(membership).data)

    @extend_schema(
        summary="Remove a member",
        description="Their sockets leave every session of the workspace at once (`chat:session-left`, code "
        "`access_revoked`). They may be added again later (to keep them out, ban them instead).",
        responses={204: OpenApiResponse(description="Removed."), **errors("invalid_payload", "forbidden", "not_a_member", "member_not_found")},
    )
    def delete(self, request: Request, workspace: str, username: str) -> Response:
        access.remove_member(self.membership, self.target())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=MODERATION, parameters=[WORKSPACE, USERNAME])
class MemberMute(ApiView):
    serializer_class = MemberSerializer
    moderators_only = True

    @extend_schema(
        summary="Mute a member for a period",
        description="Until `mutedUntil`, every message they send (socket or REST) fails with code `muted`. "
        "Muting again replaces the period.",
        request=MuteSerializer,
        responses={
            200: MemberSerializer,
            **errors("invalid_payload", "forbidden", "not_a_member", "member_not_found"),
        },
    )
    def post(self, request: Request, workspace: str, username: str) -> Response:
        target = moderation.member(self.membership.workspace, username)
        data = valid_body(MuteSerializer, request)
        target = moderation.mute(self.membership, target, data["durationSeconds"], data["reason"])
        return Response(MemberSerializer(target).data)


@extend_schema(tags=MODERATION, parameters=[WORKSPACE, USERNAME])
class MemberUnmute(ApiView):
    serializer_class = MemberSerializer
    moderators_only = True

    @extend_schema(
        summary="Lift a member's mute",
        request=None,
        responses={200: MemberSerializer, **errors("forbidden", "not_a_member", "member_not_found")},
    )
    def post(self, request: Request, workspace: str, username: str) -> Response:
        target = moderation.member(self.membership.workspace, username)
        return Response(MemberSerializer(moderation.unmute(self.membership, target)).data)


@extend_schema(tags=MODERATION, parameters=[WORKSPACE])
class BanList(ApiView):
    serializer_class = BanSerializer
    pagination_class = OldestFirst
    moderators_only = True

    def get_queryset(self) -> QuerySet[WorkspaceBan]:
        if getattr(self, "swagger_fake_view", False):
            return WorkspaceBan.objects.none()
        return WorkspaceBan.objects.filter(workspace_id=self.membership.workspace_id).select_related(
            "user", "banned_by"
        )

    @extend_schema(
        summary="List the workspace's bans",
        responses={200: BanSerializer(many=True), **errors(*LIST, "forbidden", "not_a_member")},
    )
    def get(self, request: Request, workspace: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(BanSerializer(page, many=True).data)

    @extend_schema(
        summary="Ban a member",
        description="Their membership is removed, every socket they have in the workspace receives "
        "`chat:banned` and is disconnected at once, and they cannot join or be added again until the ban is lifted.",
        request=BanCreateSerializer,
        responses={
            201: BanSerializer,
            **errors("invalid_payload", "forbidden", "not_a_member", "member_not_found"),
        },
    )
    def post(self, request: Request, workspace: str) -> Response:
        data = valid_body(BanCreateSerializer, request)
        target = moderation.member(self.membership.workspace, data["username"])
        row = access.ban(self.membership, target, data["reason"])
        return Response(BanSerializer(row).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=MODERATION, parameters=[WORKSPACE, USERNAME])
class BanDetail(ApiView):
    serializer_class = BanSerializer
    moderators_only = True

    @extend_schema(
        summary="Get a ban", responses={200: BanSerializer, **errors("forbidden", "not_a_member", "member_not_found")}
    )
    def get(self, request: Request, workspace: str, username: str) -> Response:
        return Response(BanSerializer(moderation.find_ban(self.membership.workspace, username)).data)

    @extend_schema(
        summary="Lift a ban",
        description="The user becomes a member again, with the role they had.",
        responses={200: MemberSerializer, **errors("forbidden", "not_a_member", "member_not_found")},
    )
    def delete(self, request: Request, workspace: str, username: str) -> Response:
        row = moderation.find_ban(self.membership.workspace, username)
        return Response(MemberSerializer(moderation.unban(self.membership, row)).data)
