"""``POST /api/v1/auth/socket-token``: trade a session or API token for a one-time socket token."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from security.models import SocketToken


class SocketTokenView(APIView):
    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "SocketToken",
                {"token": serializers.CharField(), "expiresAt": serializers.DateTimeField()},
            )
        },
        summary="Issue a one-time socket token",
        description="Valid for one Socket.IO connection (auth payload `{token}`) within "
        "`CHAT_SOCKET_TOKEN_LIFETIME_S` seconds; a second use fails with `unauthenticated`.",
    )
    def post(self, request: Request) -> Response:
        row, secret = SocketToken.issue(request.user, settings.CHAT.socket_token_lifetime_s)
        return Response({"token": secret, "expiresAt": row.expires_at}, status=status.HTTP_201_CREATED)
