"""Who a client is: decided once, on the Socket.IO handshake (and for every REST and Parlant request).

Layer: chat application (services): tokens are :mod:`security`'s, users,
workspaces and memberships the chat's.

The ``CONNECT`` auth payload's ``token`` decides, by its kind:

- ``chat_…``: an API token (stored hashed, revocable, optional expiry);
- ``sock_…``: a one-time socket token, valid for one connection within its
  lifetime; a replayed or expired one fails;
- anything else: asked of the external verifier (``CHAT_EXTERNAL_AUTH_URL``)
  when one is configured, asynchronously, its answer cached (see below).

Without a token, the Django session cookie of this site's own pages.
Failing all of these, :class:`~chat.errors.Unauthenticated` is raised and no
event handler ever runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from importlib import import_module
from types import SimpleNamespace
from typing import Any

import aiohttp
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from chat.errors import Unauthenticated, VerifierBusy
from chat.models import Membership, Role, Workspace, WorkspaceBan
from security.models import SOCKET_TOKEN_PREFIX, TOKEN_PREFIX, ApiToken, SocketToken, token_digest

logger = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 512
EXTERNAL_TIMEOUT_S = 5
#: The most of a verifier's answer read, in bytes.
MAX_VERIFIER_ANSWER = 65536


@dataclass(frozen=True)
class AuthResult:
    user: AbstractBaseUser | None
    #: Why authentication failed, for the security event (never the token).
    failure: str = ""


def user_for_token(token: Any) -> AbstractBaseUser | None:
    """An API token's user, for the REST API and sockets alike."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        return None
    row = ApiToken.objects.select_related("user").filter(digest=token_digest(token)).first()
    if row is None or not row.usable or not row.user.is_active:
        return None
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    return row.user


def consume_socket_token(token: str) -> AuthResult:
    """Use a one-time token: exactly one connection can ever succeed with it."""
    digest = token_digest(token)
    now = timezone.now()
    used = SocketToken.objects.filter(digest=digest, used_at__isnull=True, expires_at__gt=now).update(used_at=now)
    row = SocketToken.objects.select_related("user").filter(digest=digest).first()
    if row is None:
        return AuthResult(None, "unknown_token")
    if not used:
        return AuthResult(None, "token_replayed" if row.used_at and row.used_at < now else "token_expired")
    return AuthResult(row.user if row.user.is_active else None, "" if row.user.is_active else "inactive_user")


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


# --- the external verifier --------------------------------------------------------
#
# Asked over aiohttp on the event loop, never on the thread the database work
# shares.  Both answers are cached: an identity for ``CHAT_EXTERNAL_AUTH_CACHE_S``,
# a rejection for ``CHAT_EXTERNAL_AUTH_REJECT_CACHE_S`` (so replaying a bad
# token costs a cache read).  An unreachable or failing verifier is not
# cached: the next attempt asks again.  At most ``CHAT_EXTERNAL_AUTH_CONCURRENCY``
# questions are in flight per worker; beyond that a CONNECT is refused with
# ``auth_busy`` at once rather than queued.

#: What the cache holds for a token the verifier rejected.
_REJECTED = "rejected"
_in_flight = 0


def _cache_key(token: str) -> str:
    return f"chat:external-auth:{token_digest(token)}"


async def external_user(token: str) -> AuthResult:
    key = _cache_key(token)
    identity = await cache.aget(key)
    if identity is None:
        identity = await _ask_verifier_capped(settings.CHAT.external_auth_url, token)
        if identity is None:
            return AuthResult(None, "external_rejected")
        if identity == _REJECTED:
            await cache.aset(key, _REJECTED, settings.CHAT.external_auth_reject_cache_s)
        else:
            await cache.aset(key, identity, settings.CHAT.external_auth_cache_s)
    if identity == _REJECTED:
        return AuthResult(None, "external_rejected")
    user = await database_sync_to_async(_local_user)(identity)
    return AuthResult(user, "" if user else "inactive_user")


async def _ask_verifier_capped(url: str, token: str) -> dict[str, str] | str | None:
    global _in_flight
    if _in_flight >= settings.CHAT.external_auth_concurrency:
        raise VerifierBusy()
    _in_flight += 1
    try:
        return await _ask_verifier(url, token)
    finally:
        _in_flight -= 1


async def _ask_verifier(url: str, token: str) -> dict[str, str] | str | None:
    """The identity, ``_REJECTED`` (a definite no), or ``None`` (no answer worth caching)."""
    timeout = aiohttp.ClientTimeout(total=EXTERNAL_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.post(url, json={"token": token}, allow_redirects=False) as response:
                if response.status >= 500:
                    logger.warning("external auth verifier failed (HTTP %d)", response.status)
                    return None
                if response.status >= 300:
                    return _REJECTED
                body = json.loads(await response.content.read(MAX_VERIFIER_ANSWER))
    except ValueError:
        return _REJECTED
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        logger.warning("external auth verifier unreachable")
        return None
    return _identity(body) or _REJECTED


def _identity(body: Any) -> dict[str, str] | None:
    """Read Better Auth's answer: ``{user: {id, name}, session: {activeOrganizationId}}``."""
    if not isinstance(body, dict):
        return None
    user, session = body.get("user"), body.get("session") or {}
    if not isinstance(user, dict) or not isinstance(session, dict):
        return None
    user_id, workspace = user.get("id"), session.get("activeOrganizationId") or body.get("workspaceId")
    if not isinstance(user_id, str) or not user_id or len(user_id) > 100:
        return None
    name = user.get("name") if isinstance(user.get("name"), str) else user_id
    identity = {"user_id": user_id, "name": name[:150]}
    if isinstance(workspace, str) and 0 < len(workspace) <= 64:
        identity["workspace"] = workspace
    return identity


def _local_user(identity: dict[str, str]) -> AbstractBaseUser | None:
    """The local user for an external identity, created on first sight with its membership; ``None`` if deactivated."""
    User = get_user_model()
    username = f"ext-{identity['user_id']}"[:150]
    with transaction.atomic():
        user, _ = User.objects.get_or_create(username=username, defaults={"first_name": identity["name"][:150]})
        if not user.is_active:
            return None  # deactivated here: the external system's word does not bring it back
        slug = identity.get("workspace")
        if slug:
            workspace, _ = Workspace.objects.get_or_create(slug=slug[:64], defaults={"name": slug})
            if WorkspaceBan.objects.filter(user=user, workspace=workspace).exists():
                return user  # a ban outlives the external system's idea of membership
            try:
                with transaction.atomic():
                    Membership.objects.get_or_create(user=user, workspace=workspace, defaults={"role": Role.MEMBER})
            except IntegrityError:
                pass
    return user


# --- the handshake ------------------------------------------------------------------


def _is_external(auth: Any) -> bool:
    """Whether this CONNECT's token is one for the external verifier (well-formed, not one of ours)."""
    if not isinstance(auth, dict) or not settings.CHAT.external_auth_url:
        return False
    token = auth.get("token")
    return (
        isinstance(token, str)
        and 0 < len(token) <= MAX_TOKEN_LENGTH
        and not token.startswith((SOCKET_TOKEN_PREFIX, TOKEN_PREFIX))
    )


def resolve(auth: dict[str, Any] | None, scope: dict[str, Any]) -> AuthResult:
    """Synchronous (on the database thread), for synchronous callers; sockets use :func:`authenticate`."""
    if _is_external(auth):
        return async_to_sync(external_user)(auth["token"])
    return _resolve_own(auth, scope)


def _resolve_own(auth: dict[str, Any] | None, scope: dict[str, Any]) -> AuthResult:
    if not isinstance(auth, dict) or "token" not in auth:
        user = user_for_session_cookie(scope)
        return AuthResult(user, "" if user else "no_credentials")
    token = auth["token"]
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        return AuthResult(None, "malformed_token")
    if token.startswith(SOCKET_TOKEN_PREFIX):
        return consume_socket_token(token)
    if token.startswith(TOKEN_PREFIX):
        user = user_for_token(token)
        return AuthResult(user, "" if user else "invalid_token")
    return AuthResult(None, "invalid_token")


async def authenticate(auth: dict[str, Any] | None, scope: dict[str, Any]) -> AbstractBaseUser:
    """The CONNECT's user; raises :class:`Unauthenticated` (or ``auth_busy``, :class:`VerifierBusy`)."""
    if _is_external(auth):
        result = await external_user(auth["token"])
    else:
        result = await database_sync_to_async(_resolve_own)(auth, scope)
    if result.user is None:
        raise Unauthenticated(reason=result.failure)
    return result.user
