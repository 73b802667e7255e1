"""Who is in which session, from which socket, on which worker.

Each worker refreshes ``last_seen`` of its own rows; a row not refreshed
within the TTL belongs to a worker that died, and whichever worker purges
it announces the departure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError
from django.db.models import Count
from django.utils import timezone

from chat.errors import InvalidPayload
from chat.models import ChatSession, Presence, PresenceStatus


def enter(session: ChatSession, socket_id: str, user: AbstractBaseUser) -> Presence:
    now = timezone.now()
    try:
        return Presence.objects.create(
            session=session,
            socket_id=socket_id,
            user=user,
            user_name=user.get_username(),
            last_seen=now,
            worker_id=settings.CHAT.worker_id,
        )
    except IntegrityError:
        presence = Presence.objects.get(session=session, socket_id=socket_id)
        Presence.objects.filter(pk=presence.pk).update(last_seen=now, worker_id=settings.CHAT.worker_id)
        return presence


def set_status(session_id: int, socket_id: str, status: str) -> Presence | None:
    if status not in PresenceStatus.values:
        raise InvalidPayload("status must be 'active', 'idle' or 'away'.")
    updated = Presence.objects.filter(session_id=session_id, socket_id=socket_id).update(
        status=status, last_seen=timezone.now()
    )
    if not updated:
        return None
    return Presence.objects.select_related("session__workspace").get(session_id=session_id, socket_id=socket_id)


def leave(session_id: int, socket_id: str) -> bool:
    deleted, _ = Presence.objects.filter(session_id=session_id, socket_id=socket_id).delete()
    return bool(deleted)


def refresh_worker(worker_id: str) -> int:
    """Mark this worker's rows as alive."""
    return Presence.objects.filter(worker_id=worker_id).update(last_seen=timezone.now())


@dataclass(frozen=True)
class Departure:
    workspace_slug: str
    workspace_id: int
    session_key: str
    session_id: int
    user_name: str
    socket_id: str


def purge_expired(ttl_s: float | None = None) -> list[Departure]:
    """Delete rows not refreshed within the TTL; return each one deleted by this call.

    Rows are deleted one by one and reported only when this call's delete
    removed them, so two workers purging at once never both announce one.
    """
    ttl = settings.CHAT.presence_ttl_s if ttl_s is None else ttl_s
    cutoff = timezone.now() - timedelta(seconds=ttl)
    departures = []
    expired = Presence.objects.filter(last_seen__lt=cutoff).select_related("session__workspace")[:1000]
    for row in expired:
        deleted, _ = Presence.objects.filter(pk=row.pk, last_seen__lt=cutoff).delete()
        if deleted:
            departures.append(
                Departure(
                    workspace_slug=row.session.workspace.slug,
                    workspace_id=row.session.workspace_id,
                    session_key=row.session.key,
                    session_id=row.session_id,
                    user_name=row.user_name,
                    socket_id=row.socket_id,
                )
            )
    return departures


def remove_worker(worker_id: str) -> int:
    """Forget every row of this worker (on a clean shutdown)."""
    deleted, _ = Presence.objects.filter(worker_id=worker_id).delete()
    return deleted


def sessions_per_workspace() -> dict[str, tuple[int, int]]:
    """Per workspace slug, the sessions someone is present in and how many are present, across every worker."""
    rows = (
        Presence.objects.values("session__workspace__slug")
        .annotate(sessions=Count("session", distinct=True), members=Count("id"))
        .order_by()
    )
    return {row["session__workspace__slug"]: (row["sessions"], row["members"]) for row in rows}
