"""Sessions as integrators and moderators manage them: list, create, update, close, share.

Layer: chat application (domain services).

Everything is reached through the caller's :class:`~chat.models.Membership`,
so only the membership's workspace is ever searched: another workspace's
session of the same id is simply not found.  Within a workspace a session
is visible to its creator, to users it was shared with, and to moderators
and admins (the same rule as joining it, :func:`chat.services.access.can_access`);
one the caller may not see is *not found*, never *forbidden*.

Announcing changes is the caller's job (:mod:`chat.services.announce`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from chat.errors import AgentNotFound, ChatError, PermissionDenied, SessionNotFound
from chat.ids import is_client_id
from chat.models import Agent, ChatMessage, ChatSession, Membership, SenderType, SessionStatus
from chat.services.moderation import MemberNotFound, audit


class SessionExists(ChatError):
    code = "session_exists"
    default_message = "A session with this id already exists in this workspace."


class MessageNotFound(ChatError):
    code = "message_not_found"
    default_message = "No such message in this session."


def visible_sessions(membership: Membership) -> models.QuerySet[ChatSession]:
    sessions = ChatSession.objects.filter(workspace_id=membership.workspace_id)
    if not membership.moderates:
        shared = ChatSession.shared_with.through.objects.filter(user_id=membership.user_id).values("chatsession_id")
        sessions = sessions.filter(models.Q(created_by_id=membership.user_id) | models.Q(pk__in=shared))
    return sessions.select_related("workspace", "agent", "created_by")


@dataclass(frozen=True)
class SessionFilters:
    status: str | None = None
    agent: str | None = None
    created_since: datetime | None = None
    #: A username: sessions they created, were shared with, or wrote in.
    participant: str | None = None


def list_sessions(membership: Membership, filters: SessionFilters = SessionFilters()) -> models.QuerySet[ChatSession]:
    sessions = visible_sessions(membership)
    if filters.status:
        sessions = sessions.filter(status=filters.status)
    if filters.agent:
        sessions = sessions.filter(agent__key=filters.agent)
    if filters.created_since:
        sessions = sessions.filter(created_at__gte=filters.created_since)
    if filters.participant:
        name = filters.participant
        shared = ChatSession.shared_with.through.objects.filter(user__username=name).values("chatsession_id")
        wrote = ChatMessage.objects.filter(
            session__workspace_id=membership.workspace_id, sender_type=SenderType.USER, user__username=name
        ).values("session_id")
        sessions = sessions.filter(
            models.Q(created_by__username=name) | models.Q(pk__in=shared) | models.Q(pk__in=wrote)
        )
    return sessions


def get_session(membership: Membership, key: str) -> ChatSession:
    session = visible_sessions(membership).filter(key=key).first()
    if session is None:
        # Echo the id only when it is one a client could have chosen.
        raise SessionNotFound(sessionId=key) if is_client_id(key) else SessionNotFound()
    return session




def _agent(membership: Membership, agent_key: str) -> Agent:
    agent = Agent.objects.filter(workspace_id=membership.workspace_id, key=agent_key).first()
    if agent is None:
        raise AgentNotFound(agentId=agent_key)
    return agent


def create_session(membership: Membership, key: str, *, title: str = "", agent_key: str | None = None) -> ChatSession:
    agent = _agent(membership, agent_key) if agent_key else None
    try:
        with transaction.atomic():
            session = ChatSession.objects.create(
                workspace_id=membership.workspace_id,
                key=key,
                title=title,
                agent=agent,
                created_by_id=membership.user_id,
            )
    except IntegrityError:
        raise SessionExists(sessionId=key) from None
    session.workspace = membership.workspace
    return session


def check_can_manage(membership: Membership, session: ChatSession) -> None:
    """Its creator and the workspace's moderators update, close and share a session; sharees only use it."""
    if not (membership.moderates or session.created_by_id == membership.user_id):
        raise PermissionDenied("Only the session's creator and the workspace's moderators can change it.")


_UNSET = object()


def update_session(
    membership: Membership, session: ChatSession, *, title: object = _UNSET, agent_key: object = _UNSET
) -> bool:
    """Change title and/or agent (``agent_key=None`` removes it); True when something changed."""
    check_can_manage(membership, session)
    fields = []
    if title is not _UNSET and title != session.title:
        session.title = str(title)
        fields.append("title")
    if agent_key is not _UNSET:
        agent = _agent(membership, str(agent_key)) if agent_key is not None else None
        if (agent.pk if agent else None) != session.agent_id:
            session.agent = agent
            fields.append("agent")
    if fields:
        session.save(update_fields=fields)
    return bool(fields)


def close_session(actor: AbstractBaseUser, session: ChatSession) -> bool:
    """Close it (idempotent): it stays readable, but ``store_message`` refuses new messages.

    The status changes under the same row lock ``store_message`` takes, so no
    message is stored after the close commits.  The caller checks authority
    (:func:`check_can_manage`, or the admin's scoping).
    """
    with transaction.atomic():
        locked = ChatSession.objects.select_for_update().get(pk=session.pk)
        if locked.status == SessionStatus.CLOSED:
            session.status = SessionStatus.CLOSED
            return False
        ChatSession.objects.filter(pk=session.pk).update(status=SessionStatus.CLOSED, last_activity_at=timezone.now())
        session.status = SessionStatus.CLOSED
        audit(actor, session, f"Closed session {session.key} in {session.workspace.slug}.")
    return True


def share_session(membership: Membership, session: ChatSession, username: str) -> AbstractBaseUser:
    """Share with another member of the workspace (idempotent)."""
    check_can_manage(membership, session)
    user = (
        get_user_model()
        .objects.filter(username=username, memberships__workspace_id=membership.workspace_id)
        .first()
    )
    if user is None:
        raise MemberNotFound()
    session.shared_with.add(user)
    return user


def unshare_session(membership: Membership, session: ChatSession, username: str) -> AbstractBaseUser | None:
    """Stop sharing with ``username``; the user, or ``None`` if it was not shared with them."""
    check_can_manage(membership, session)
    user = session.shared_with.filter(username=username).first()
    if user is not None:
        session.shared_with.remove(user)
    return user


def get_message(session: ChatSession, key: str, *, include_hidden: bool) -> ChatMessage:
    messages = ChatMessage.objects.filter(session=session, key=key).select_related("hidden_by")
    if not include_hidden:
        messages = messages.filter(hidden=False)
    message = messages.first()
    if message is None:
        raise MessageNotFound()
    message.session = session
    return message
