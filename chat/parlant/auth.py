"""Who calls the Parlant-compatible API: a token in the URL path, or ``Authorization: Bearer``.

Layer: the Parlant-compatible API (synchronous; called through ``database_sync_to_async``).

Why in the path: ``parlant-chat-react`` builds every request from its
``server`` prop and lets its host set no header, cookie or parameter, so a
host page that wants the widget signed in puts the token there:
``server="https://chat.example.com/parlant/<workspace>/t/<token>"``.  Other
Parlant clients may send ``Authorization: Bearer <token>`` instead (the
REST API's header, :mod:`chat.api.auth`).

Tokens are the sockets' (:mod:`chat.auth`): an API token (``chat_…``),
a token the external verifier accepts, or a one-time socket token
(``sock_…``).  The widget sends its URL with every request, so a one-time
token is redeemed by the first request -- after which no socket can use it
-- and that URL keeps working through a :class:`~chat.parlant.models.TokenGrant`
until it goes unused for ``CHAT_PARLANT_TOKEN_IDLE_S``.  Tokens are never
stored (only digests) or logged.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from chat.auth import MAX_TOKEN_LENGTH, consume_socket_token, resolve
from chat.errors import Unauthenticated
from chat.parlant.models import TokenGrant
from security.models import SOCKET_TOKEN_PREFIX, token_digest

#: A grant's ``last_used_at`` is written at most this often (not on every long-poll).
TOUCH_EVERY_S = 30

HOW = "Put a valid token in the URL (/parlant/<workspace>/t/<token>/) or send Authorization: Bearer <token>."

_PATH_TOKEN = re.compile(r"(/parlant/[^/\s?]*/t/)[^/\s?]+")


def redact_path(text: str) -> str:
    """``text`` with the token of every Parlant URL in it replaced by ``[redacted]``."""
    return _PATH_TOKEN.sub(r"\1[redacted]", text)


class RedactPathTokens(logging.Filter):
    """Keeps the tokens of Parlant URLs out of a logger's records (uvicorn's access log prints request paths).

    Installed on ``uvicorn.access`` when the app loads (:class:`chat.parlant.apps.ParlantConfig`);
    production runs uvicorn with ``--no-access-log`` anyway, this covers setups that log access.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_path(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str) and "/parlant/" in record.msg:
            record.msg = redact_path(record.msg)
        return True


def _refused(reason: str) -> Unauthenticated:
    return Unauthenticated(f"Authentication required. {HOW}", reason=reason)


def authenticate(token: str | None) -> AbstractBaseUser:
    """The caller's user for ``token`` (from the path or the header), or :class:`Unauthenticated`."""
    if not token:
        raise _refused("no_credentials")
    if len(token) > MAX_TOKEN_LENGTH:
        raise _refused("malformed_token")
    if token.startswith(SOCKET_TOKEN_PREFIX):
        return _socket_token_user(token)
    result = resolve({"token": token}, {})
    if result.user is None:
        raise _refused(result.failure or "invalid_token")
    return result.user


def _idle_limit() -> timedelta:
    return timedelta(seconds=settings.CHAT.parlant_token_idle_s)


def _granted(digest: str) -> AbstractBaseUser | None:
    grant = TokenGrant.objects.select_related("user").filter(digest=digest).first()
    if grant is None:
        return None
    now = timezone.now()
    too_old = grant.created_at < now - timedelta(seconds=settings.CHAT.parlant_token_max_age_s)
    if grant.last_used_at < now - _idle_limit() or too_old or not grant.user.is_active:
        grant.delete()
        raise _refused("token_expired")
    if grant.last_used_at < now - timedelta(seconds=TOUCH_EVERY_S):
        TokenGrant.objects.filter(pk=grant.pk).update(last_used_at=now)
    return grant.user


def _socket_token_user(token: str) -> AbstractBaseUser:
    digest = token_digest(token)
    user = _granted(digest)
    if user is not None:
        return user
    with transaction.atomic():
        # Two first requests at once: one consumes the token (its row is locked until it commits),
        # the other then finds that one's grant.
        result = consume_socket_token(token)
        if result.user is None:
            user = _granted(digest)
            if user is not None:
                return user
            raise _refused(result.failure or "invalid_token")
        now = timezone.now()
        TokenGrant.objects.filter(last_used_at__lt=now - _idle_limit()).delete()
        TokenGrant.objects.create(digest=digest, user=result.user, last_used_at=now)
    return result.user
