"""Who may read the monitoring API and dashboard: superusers, or whoever holds the ops token.

Monitoring is the whole server's: it counts every workspace's sessions and
lists the busiest ones by name.  A staff user may be the administrator of
one workspace only (the admin scopes them to it), so staff alone is not
enough: only the ops token and superusers see across workspaces.

The ops token (``CHAT_OPS_TOKEN``) is for scrapers and orchestrators that
have no user: ``Authorization: Bearer <token>``.  It is checked first and
without the database, so health stays readable while the database is down;
any other bearer token goes on to the usual API-token authentication.
"""

from __future__ import annotations

import hmac
from typing import Any

from rest_framework import authentication, permissions

from monitoring import conf


class OpsPrincipal:
    """The caller authenticated by the ops token: no user row, no other rights."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False
    pk = None
    id = None
    username = "ops-token"

    def get_username(self) -> str:
        return self.username

    def __str__(self) -> str:
        return self.username


OPS = OpsPrincipal()
OPS_AUTH = "ops-token"


def bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme == "Bearer" and value.strip() else None


def is_ops_token(token: str | None) -> bool:
    expected = conf.get().ops_token
    if not expected or not token:
        return False
    return hmac.compare_digest(token.encode("utf-8", "replace"), expected.encode())


class OpsTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Any) -> tuple[OpsPrincipal, str] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if is_ops_token(bearer(header)):
            return OPS, OPS_AUTH
        return None

    def authenticate_header(self, request: Any) -> str:
        return "Bearer"


def is_superuser(user: Any) -> bool:
    """An active superuser: the only users who may see every workspace's numbers."""
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_superuser)


class IsSuperuserOrOps(permissions.BasePermission):
    message = "Superusers or the ops token only."

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.auth == OPS_AUTH and request.user is OPS:
            return True
        return is_superuser(request.user)
