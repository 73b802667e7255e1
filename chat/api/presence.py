"""``/workspaces/{workspace}/presence/``: who is online in a workspace, live from the presence store.

Layer: REST API.  (Who is in one session: :class:`chat.api.sessions.SessionPresence`.)
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from chat.models import PresenceStatus
from chat.shapes import to_ms

from .base import ApiView
from .schema import WORKSPACE, errors
from .serializers import OnlineUserSerializer
from .sessions import live_presence

#: When a user has several sockets, the most present status wins.
_RANK = {PresenceStatus.ACTIVE: 0, PresenceStatus.IDLE: 1, PresenceStatus.AWAY: 2}


@extend_schema(tags=["presence"], parameters=[WORKSPACE])
class WorkspacePresence(ApiView):
    serializer_class = OnlineUserSerializer

    @extend_schema(
        summary="Who is online in a workspace",
        description="Every user with at least one socket in one of the workspace's sessions, by username. "
        "Which sessions they are in is not shown: see each session's presence.",
        responses={
            200: OpenApiResponse(OnlineUserSerializer(many=True)),
            **errors("not_a_member"),
        },
    )
    def get(self, request: Request, workspace: str) -> Response:
        rows = live_presence().filter(session__workspace_id=self.membership.workspace_id)
        users: dict[str, dict] = {}
        for user_name, status, last_seen in rows.values_list("user_name", "status", "last_seen"):
            entry = users.setdefault(
                user_name,
                {"userId": user_name, "userName": user_name, "status": status, "lastSeen": last_seen, "sockets": 0},
            )
            entry["sockets"] += 1
            if _RANK.get(status, 9) < _RANK.get(entry["status"], 9):
                entry["status"] = status
            entry["lastSeen"] = max(entry["lastSeen"], last_seen)
        result = [dict(entry, lastSeen=to_ms(entry["lastSeen"])) for _, entry in sorted(users.items())]
        return Response(result)
