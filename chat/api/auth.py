"""API tokens for the REST API: ``Authorization: Bearer <token>``, the same tokens sockets use."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions

from chat.auth import user_for_token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, None] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme != self.keyword:
            return None
        user = user_for_token(token.strip())
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.", code="unauthenticated")
        return user, None

    def authenticate_header(self, request: Any) -> str:
        return self.keyword
