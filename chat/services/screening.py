"""Screening a message's content on every surface, with the per-worker limiter, repeat tracker and event log.

Layer: chat services (the socket events, the REST API and the Parlant-compatible
API call it alike; it calls the services of ``security/``).

One limiter and one repeat tracker per worker process (their Redis clients
belong to its event loop), built on first use.  Security events for
attacker-triggerable failures are recorded once per user, kind and reason
within a window, so a flood cannot flood the log or the table; metrics
count every one.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from channels.db import database_sync_to_async

from chat.models import ContentPolicy
from chat.services import access
from monitoring import metrics
from security import events
from security.content import RepeatTracker, check_spam, find_hostile, repeat_tracker_from_settings
from security.errors import MessageBlocked, SpamDetected
from security.models import SecurityEventType
from security.ratelimit import RateLimiter, limiter_from_settings

#: At most one event per user and kind within this many seconds.
EVENT_DEDUP_S = 60.0
_DEDUP_MAX_KEYS = 50_000


@cache
def limiter() -> RateLimiter:
    return limiter_from_settings()


@cache
def repeats() -> RepeatTracker:
    return repeat_tracker_from_settings(limiter().backend)


_last_recorded: dict[tuple[Any, str], float] = {}


def record_client(
    scope: dict[str, Any], kind: str, *, user: Any = None, workspace: Any = None, session_key: str = "", **detail: Any
) -> None:
    """Record a security event about the client of ``scope``, once per kind and window.

    Attempts repeat at the attacker's pace: the window keeps the log (and
    the database) from growing with them.  Never pass a token or content.
    """
    who = getattr(user, "pk", None) or events.client_ip(scope)
    reasons = ":".join(str(detail.get(name, "")) for name in ("operation", "reason", "code"))
    key = (who, f"{kind}:{reasons}")
    now = time.monotonic()
    if now - _last_recorded.get(key, -EVENT_DEDUP_S) < EVENT_DEDUP_S:
        return
    if len(_last_recorded) >= _DEDUP_MAX_KEYS:
        _last_recorded.clear()
    _last_recorded[key] = now
    events.record(kind, user=user, workspace=workspace, session_key=session_key, scope=scope, detail=detail)


async def screen_content(
    scope: dict[str, Any], user: Any, content: str, *, workspace_id: int, session_key: str, surface: str
) -> None:
    """Refuse abuse; flag (``standard``) or refuse (``strict``) what looks like an attack.  Every surface's send.

    The content's length and form were checked first
    (``chat.services.messages.check_content``).  Content is never changed.

    - What looks like an attack (``security.content.find_hostile``) is a
      strike for the sender either way.  Under the workspace's ``strict``
      policy it is refused with ``message_blocked`` and recorded as
      ``message_blocked``; under ``standard`` (the default) the message goes
      through as text and is recorded as ``suspicious_activity`` with the reason.
    - Spam (floods, repeats) is refused with ``spam_detected`` under every
      policy, a strike and a ``suspicious_activity`` event, as before.

    The policy is read only when something looks like an attack, so the
    common message costs no query; each worker keeps what it read for
    ``access.CONTENT_POLICY_TTL_S`` (5 s), so a change applies everywhere within that.
    """
    reason = find_hostile(content)
    where = {"workspace": workspace_id, "session_key": session_key, "surface": surface}
    if reason is not None:
        policy = access.cached_content_policy(workspace_id)
        if policy is None:
            policy = await database_sync_to_async(access.content_policy)(workspace_id)
        if policy == ContentPolicy.STRICT:
            await limiter().strike(user.pk)
            metrics.suspicious_content(reason, "blocked")
            record_client(scope, SecurityEventType.MESSAGE_BLOCKED, user=user, reason=reason, **where)
            raise MessageBlocked(reason)
    try:
        check_spam(content)
        await repeats().check(user.pk, content)
    except SpamDetected as error:
        await limiter().strike(user.pk)
        record_client(scope, SecurityEventType.SUSPICIOUS_ACTIVITY, user=user, **where, **error.details)
        raise
    if reason is not None:
        await limiter().strike(user.pk)
        metrics.suspicious_content(reason, "accepted")
        record_client(
            scope, SecurityEventType.SUSPICIOUS_ACTIVITY, user=user, reason=reason, policy=ContentPolicy.STANDARD, **where
        )
