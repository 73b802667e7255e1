"""Who may do what: workspace membership and session access."""

from __future__ import annotations

import enum
import time

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q

from chat.errors import AgentNotFound, NotAMember, PermissionDenied
from chat.models import Agent, ChatSession, ContentPolicy, Membership, Presence, Role, Workspace, WorkspaceBan
from chat.services.batches import DatabaseBatches


def membership_for(user: AbstractBaseUser, workspace_slug: str) -> Membership:
    """The user's membership, or :class:`NotAMember` (also for a workspace that does not exist)."""
    membership = (
        Membership.objects.select_related("workspace").filter(user=user, workspace__slug=workspace_slug).first()
    )
    if membership is None:
        raise NotAMember()
    return membership


def can_access(membership: Membership, session: ChatSession) -> bool:
    """Creators, users it was shared with, and the workspace's moderators and admins."""
    if session.workspace_id != membership.workspace_id:
        return False
    if membership.moderates or session.created_by_id == membership.user_id:
        return True
    return session.shared_with.filter(pk=membership.user_id).exists()


def open_session(membership: Membership, session_key: str, agent_key: str | None = None) -> tuple[ChatSession, bool]:
    """Get the session for joining, creating it (owned by the joiner) if it does not exist.

    Only the workspace named by the membership is searched, so a session of
    the same id elsewhere is neither found nor revealed.
    """
    workspace = membership.workspace
    session = ChatSession.objects.filter(workspace=workspace, key=session_key).select_related("agent").first()
    if session is not None:
        if not can_access(membership, session):
            raise PermissionDenied()
        return session, False
    agent = None
    if agent_key is not None:
        agent = Agent.objects.filter(workspace=workspace, key=agent_key).first()
        if agent is None:
            raise AgentNotFound()
    try:
        with transaction.atomic():
            session = ChatSession.objects.create(
                workspace=workspace, key=session_key, agent=agent, created_by_id=membership.user_id
            )
    except IntegrityError:
        # Another worker created it a moment ago: join theirs like any existing session.
        return open_session(membership, session_key, None)
    return session, True


#: How long a worker trusts a workspace's content policy it read (a change reaches every worker within this).
#: Screening a hostile-looking message then needs no database read: a refusal does not wait on the
#: database thread, which the security event writer may be holding.
CONTENT_POLICY_TTL_S = 5.0
_policies: dict[int, tuple[str, float]] = {}


def cached_content_policy(workspace_id: int) -> str | None:
    """The workspace's content policy if this worker read it less than :data:`CONTENT_POLICY_TTL_S` ago."""
    found = _policies.get(workspace_id)
    if found is None or found[1] < time.monotonic():
        return None
    return found[0]


def remember_content_policy(workspace_id: int, policy: str) -> None:
    if len(_policies) >= 10_000:
        _policies.clear()
    _policies[workspace_id] = (policy, time.monotonic() + CONTENT_POLICY_TTL_S)


def content_policy(workspace_id: int) -> str:
    """The workspace's :class:`~chat.models.ContentPolicy`, read from the database (and remembered)."""
    policy = Workspace.objects.filter(pk=workspace_id).values_list("content_policy", flat=True).first()
    policy = policy or ContentPolicy.STANDARD
    remember_content_policy(workspace_id, policy)
    return policy


# --- access now, for sockets that joined earlier ---------------------------------------------


class Standing(str, enum.Enum):
    """What a user may do in a session they joined, read now (:func:`standing_in`)."""

    BANNED = "banned"
    REVOKED = "revoked"
    MEMBER = "member"
    MODERATOR = "moderator"


def standing_in(user_id: int, session_ids: list[int]) -> dict[int, Standing]:
    """The user's standing in each session, read fresh: banned from its workspace, no longer allowed in it
    (removed, unshared, demoted out of it), or still in as a member or as a moderator."""
    return standings([(user_id, session_ids)])[0]


def standings(requests: list[tuple[int, list[int]]]) -> list[dict[int, Standing]]:
    """:func:`standing_in` of many ``(user_id, session_ids)`` at once, in four queries for all of them.

    A busy worker re-reads the standing of every joined socket now and then
    (``CHAT_ACCESS_RECHECK_S``); one by one, 2,000 sockets kept the database
    thread queued for seconds.
    """
    user_ids = {user_id for user_id, _ in requests}
    session_ids = {session_id for _, ids in requests for session_id in ids}
    rows = ChatSession.objects.filter(pk__in=session_ids).values_list("pk", "workspace_id", "created_by_id")
    sessions = {pk: (workspace_id, creator_id) for pk, workspace_id, creator_id in rows}
    workspaces = {workspace_id for workspace_id, _ in sessions.values()}
    memberships = Membership.objects.filter(user_id__in=user_ids, workspace_id__in=workspaces)
    roles = {(user, workspace): role for user, workspace, role in memberships.values_list("user_id", "workspace_id", "role")}
    bans = WorkspaceBan.objects.filter(user_id__in=user_ids, workspace_id__in=workspaces)
    banned = set(bans.values_list("user_id", "workspace_id"))
    shares = ChatSession.shared_with.through.objects.filter(user_id__in=user_ids, chatsession_id__in=session_ids)
    shared = set(shares.values_list("user_id", "chatsession_id"))
    answers = []
    for user_id, ids in requests:
        standing = {session_id: Standing.REVOKED for session_id in ids}
        for session_id in ids:
            if session_id not in sessions:
                continue
            workspace_id, creator_id = sessions[session_id]
            role = roles.get((user_id, workspace_id))
            if (user_id, workspace_id) in banned:
                standing[session_id] = Standing.BANNED
            elif role in (Role.MODERATOR, Role.ADMIN):
                standing[session_id] = Standing.MODERATOR
            elif role is not None and (creator_id == user_id or (user_id, session_id) in shared):
                standing[session_id] = Standing.MEMBER
        answers.append(standing)
    return answers


#: This worker's reads of its sockets' standing (joins, re-reads), many per four queries under load.
standing_reads: DatabaseBatches[tuple[int, list[int]], dict[int, Standing]] = DatabaseBatches(
    "standing-reads", standings
)


def revoked_sockets(worker_id: str) -> list[tuple[str, str]]:
    """``(socket id, workspace slug)`` of the worker's sockets in sessions their user may no longer be in.

    One query, for the worker's periodic sweep: it catches an access change
    whose notice was lost, on a socket that sends nothing.  (A ban removes
    the membership, so banned users are found too.)
    """
    member = Membership.objects.filter(user_id=OuterRef("user_id"), workspace_id=OuterRef("session__workspace_id"))
    shared = ChatSession.shared_with.through.objects.filter(
        chatsession_id=OuterRef("session_id"), user_id=OuterRef("user_id")
    )
    allowed = Q(Exists(member.filter(role__in=(Role.MODERATOR, Role.ADMIN)))) | (
        Q(Exists(member)) & (Q(session__created_by_id=F("user_id")) | Q(Exists(shared)))
    )
    rows = Presence.objects.filter(worker_id=worker_id).exclude(allowed)
    return sorted(set(rows.values_list("socket_id", "session__workspace__slug")))
