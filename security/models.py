"""Credentials and the security event log."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "chat_"


def token_digest(token: str) -> str:
    """Tokens are high-entropy secrets, so a plain SHA-256 is a safe index for them."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for a user or an integrator; only its digest is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    #: The first characters of the token, to recognise it in lists without revealing it.
    hint = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    @classmethod
    def issue(cls, user, name: str = "", expires_at=None) -> tuple["ApiToken", str]:
        """Create a token; the secret is returned once and never stored."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, name=name, digest=token_digest(secret), hint=secret[:12], expires_at=expires_at
        )
        return token, secret

    @property
    def usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def __str__(self) -> str:
        return f"{self.hint}… ({self.user})"


class SecurityEventType(models.TextChoices):
    MESSAGE_BLOCKED = "message_blocked"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    SUSPICIOUS_ACTIVITY = "suspicious_activity"
    SESSION_VALIDATION_FAILED = "session_validation_failed"
    UNAUTHORIZED_ACCESS_ATTEMPT = "unauthorized_access_attempt"
    AUTHENTICATION_FAILED = "authentication_failed"
    CONNECTION_LIMIT_EXCEEDED = "connection_limit_exceeded"
    #: Disconnected for leaving more unread than CHAT_MAX_BUFFERED_* allow.
    SLOW_CLIENT_DISCONNECTED = "slow_client_disconnected"


class SecurityEvent(models.Model):
    type = models.CharField(max_length=40, choices=SecurityEventType.choices, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    workspace = models.ForeignKey("chat.Workspace", null=True, blank=True, on_delete=models.SET_NULL)
    session_key = models.CharField(max_length=128, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    #: Bounded (see ``security.events``); never message bodies or tokens.
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.type} at {self.created_at:%Y-%m-%d %H:%M:%S}"


SOCKET_TOKEN_PREFIX = "sock_"


class SocketToken(models.Model):
    """A one-time token for one socket connection, like Better Auth's one-time tokens.

    Issued to an already-authenticated caller (session or API token) so a
    page can hand it to its socket without exposing a long-lived secret.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    @classmethod
    def purge_expired(cls, grace_s: int = 3600) -> int:
        """Forget tokens expired for longer than ``grace_s`` (kept that long so replays are still recognised)."""
        deleted, _ = cls.objects.filter(expires_at__lt=timezone.now() - timedelta(seconds=grace_s)).delete()
        return deleted

    @classmethod
    def issue(cls, user, lifetime_s: int) -> tuple["SocketToken", str]:
        secret = SOCKET_TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = timezone.now() + timedelta(seconds=lifetime_s)
        return cls.objects.create(user=user, digest=token_digest(secret), expires_at=expires), secret
