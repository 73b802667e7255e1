"""Who a socket is: decided once, on the Socket.IO handshake.

The ``CONNECT`` auth payload's ``token`` (an API token) or, for pages
served by this site, the Django session cookie.  Anything else is
:class:`~chat.errors.Unauthenticated`, and no event handler ever runs.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from chat.errors import Unauthenticated
from security.models import ApiToken, token_digest

MAX_TOKEN_LENGTH = 512


def user_for_token(token: Any) -> AbstractBaseUser | None:
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        return None
    row = ApiToken.objects.select_related("user").filter(digest=token_digest(token)).first()
    if row is None or not row.usable or not row.user.is_active:
        return None
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    return row.user


def user_for_session_cookie(scope: dict[str, Any]) -> AbstractBaseUser | None:
    cookie_header = b"; ".join(value for key, value in scope.get("headers", ()) if key == b"cookie")
    if not cookie_header:
        return None
    try:
        cookies = SimpleCookie(cookie_header.decode("latin-1"))
    except CookieError:
        return None
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    if morsel is None:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(morsel.value)
    user = get_user(SimpleNamespace(session=store))
    return user if user.is_authenticated else None


def _resolve(auth: dict[str, Any] | None, scope: dict[str, Any]) -> AbstractBaseUser | None:
    if isinstance(auth, dict) and "token" in auth:
        return user_for_token(auth["token"])
    return user_for_session_cookie(scope)


async def authenticate(auth: dict[str, Any] | None, scope: dict[str, Any]) -> AbstractBaseUser:
    user = await database_sync_to_async(_resolve)(auth, scope)
    if user is None:
        raise Unauthenticated()
    return user
