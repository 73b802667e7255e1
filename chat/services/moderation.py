"""Moderation: who may moderate, muting, banning, hiding messages, and the audit trail.

Layer: chat application (domain services).

Like every service, these functions validate, write in a transaction and
return what happened; announcing it to sockets is the caller's job
(:mod:`chat.services.announce`, after commit).  Each moderation action is
recorded in Django's admin log (``LogEntry``) with who, what and when,
whether it came from the REST API or the admin.

Rules of authority inside a workspace:

- moderators and admins moderate: hide messages, close sessions, mute, ban;
- a moderator acts only on plain members; moderators and admins are managed
  by admins;
- nobody mutes, bans or removes themselves.

Hooks for the socket side (``chat.events``): :func:`check_can_send` before
storing a socket message, :func:`check_not_banned` before joining.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from chat.errors import ChatError, InvalidPayload, NotAMember, PermissionDenied
from chat.models import ChatMessage, ContentPolicy, Membership, Presence, Role, Workspace, WorkspaceBan
from chat.services import access
from chat.shapes import to_ms

#: The longest mute a moderator can set in one go (a year); longer is a ban.
MUTE_MAX_SECONDS = 365 * 24 * 3600


# --- errors (HTTP status used until the code is in chat.errors.WIRE_ERRORS) ------------------


class Muted(ChatError):
    code = "muted"
    default_message = "You are muted in this workspace."


class Banned(ChatError):
    code = "banned"
    default_message = "This user is banned from this workspace."


class MemberNotFound(ChatError):
    code = "member_not_found"
    default_message = "No member of this workspace has that username."


class UserNotFound(ChatError):
    code = "user_not_found"
    default_message = "No active user has that username."


class MemberExists(ChatError):
    code = "member_exists"
    default_message = "That user is already a member of this workspace."


class NotModerator(PermissionDenied):
    default_message = "Only the workspace's moderators and admins can do this."


# --- who may do what -------------------------------------------------------------------------


def moderator_membership(user: AbstractBaseUser, workspace_slug: str) -> Membership:
    """The caller's membership if they moderate the workspace.

    Not a member (or no such workspace): :class:`NotAMember` (404 on REST,
    nothing revealed).  A member who does not moderate: :class:`NotModerator`.
    """
    membership = (
        Membership.objects.select_related("workspace", "user").filter(user=user, workspace__slug=workspace_slug).first()
    )
    if membership is None:
        raise NotAMember()
    if not membership.moderates:
        raise NotModerator()
    return membership


def check_can_manage(actor: Membership, target_role: str, *, new_role: str | None = None) -> None:
    """A moderator manages plain members only; an admin manages anyone."""
    if not actor.moderates:
        raise NotModerator()
    if actor.role == Role.ADMIN:
        return
    if target_role != Role.MEMBER or (new_role is not None and new_role != Role.MEMBER):
        raise PermissionDenied("Only workspace admins can manage moderators and admins.")


def _not_self(actor: Membership, target_user_id: int, what: str) -> None:
    if actor.user_id == target_user_id:
        raise PermissionDenied(f"You cannot {what} yourself.")


def moderated_workspace_ids(user: AbstractBaseUser) -> models.QuerySet:
    """Ids of the workspaces the user moderates (a subquery; the admin scopes everything by it)."""
    return Membership.objects.filter(user=user, role__in=(Role.MODERATOR, Role.ADMIN)).values("workspace_id")


# --- the socket-side hooks -------------------------------------------------------------------


def check_can_send(membership: Membership, now: datetime | None = None) -> None:
    """Raise :class:`Muted` while the member is muted (call before storing any of their messages)."""
    now = now or timezone.now()
    if membership.muted_until is not None and membership.muted_until > now:
        raise Muted(mutedUntil=to_ms(membership.muted_until), workspaceId=membership.workspace.slug)


def check_user_can_send(user_id: int, workspace_id: int) -> None:
    """:func:`check_can_send` by ids, for the socket path (one indexed read, so a mute applies at once)."""
    muted_until = (
        Membership.objects.filter(user_id=user_id, workspace_id=workspace_id).values_list("muted_until", flat=True).first()
    )
    if muted_until is not None and muted_until > timezone.now():
        slug = Workspace.objects.filter(pk=workspace_id).values_list("slug", flat=True).first()
        raise Muted(mutedUntil=to_ms(muted_until), workspaceId=slug)


def muted_members(members: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which ``(user_id, workspace_id)`` pairs are muted now (one query for all of them)."""
    if not members:
        return set()
    muted = Membership.objects.filter(
        user_id__in={user_id for user_id, _ in members},
        workspace_id__in={workspace_id for _, workspace_id in members},
        muted_until__gt=timezone.now(),
    )
    return set(muted.values_list("user_id", "workspace_id")) & members


def is_banned(user_id: int, workspace_id: int) -> bool:
    return WorkspaceBan.objects.filter(user_id=user_id, workspace_id=workspace_id).exists()


def check_not_banned(user: AbstractBaseUser, workspace_slug: str) -> None:
    """Raise :class:`Banned` if the user is banned from the workspace (call before joining it)."""
    if WorkspaceBan.objects.filter(user=user, workspace__slug=workspace_slug).exists():
        raise Banned("You are banned from this workspace.")


# --- the audit trail ------------------------------------------------------------------------


def audit(actor: AbstractBaseUser, obj: models.Model, message: str) -> None:
    """Record a moderation action in the admin log: who (``user``), what (object, message), when."""
    LogEntry.objects.create(
        user_id=actor.pk,
        content_type_id=ContentType.objects.get_for_model(obj, for_concrete_model=False).pk,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=CHANGE,
        change_message=message,
    )


# --- the workspace ---------------------------------------------------------------------------


def set_content_policy(actor: Membership, policy: str) -> Workspace:
    """Workspace admins choose what a hostile-looking message does (``chat.models.ContentPolicy``); audited."""
    if policy not in ContentPolicy.values:
        raise InvalidPayload("contentPolicy must be 'standard' or 'strict'.")
    if actor.role != Role.ADMIN:
        raise PermissionDenied("Only workspace admins can change the content policy.")
    workspace = actor.workspace
    if workspace.content_policy != policy:
        old = workspace.content_policy
        workspace.content_policy = policy
        workspace.save(update_fields=["content_policy"])
        audit(actor.user, workspace, f"Changed the content policy of {workspace.slug} from {old} to {policy}.")
    access.remember_content_policy(workspace.pk, policy)  # this worker at once; the others within its TTL
    return workspace


#: The longest edit window a workspace can have (a week).
EDIT_WINDOW_MAX_S = 7 * 24 * 3600


def set_edit_window(actor: Membership, seconds: int) -> Workspace:
    """Workspace admins choose how long authors may edit or delete their messages (0: never); audited."""
    if not 0 <= seconds <= EDIT_WINDOW_MAX_S:
        raise InvalidPayload(f"editWindowSeconds must be 0 to {EDIT_WINDOW_MAX_S}.")
    if actor.role != Role.ADMIN:
        raise PermissionDenied("Only workspace admins can change the edit window.")
    workspace = actor.workspace
    if workspace.edit_window_s != seconds:
        old = workspace.edit_window_s
        workspace.edit_window_s = seconds
        workspace.save(update_fields=["edit_window_s"])
        audit(actor.user, workspace, f"Changed the edit window of {workspace.slug} from {old} s to {seconds} s.")
    return workspace


# --- members ---------------------------------------------------------------------------------


def member(workspace: Workspace, username: str) -> Membership:
    found = (
        Membership.objects.select_related("user", "workspace")
        .filter(workspace=workspace, user__username=username)
        .first()
    )
    if found is None:
        raise MemberNotFound()
    return found


def add_member(actor: Membership, username: str, role: str = Role.MEMBER) -> Membership:
    check_can_manage(actor, Role.MEMBER, new_role=role)
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise UserNotFound()
    if is_banned(user.pk, actor.workspace_id):
        raise Banned("This user is banned from this workspace; lift the ban first.")
    try:
        with transaction.atomic():
            membership = Membership.objects.create(user=user, workspace=actor.workspace, role=role)
    except IntegrityError:
        raise MemberExists() from None
    audit(actor.user, membership, f"Added {username} to {actor.workspace.slug} as {role}.")
    return membership


def change_role(actor: Membership, target: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise InvalidPayload("role must be 'member', 'moderator' or 'admin'.")
    check_can_manage(actor, target.role, new_role=role)
    if target.role != role:
        _not_self(actor, target.user_id, "change the role of")
        old = target.role
        target.role = role
        target.save(update_fields=["role"])
        audit(actor.user, target, f"Changed the role of {target.user.get_username()} from {old} to {role}.")
    return target


@dataclass(frozen=True)
class Removal:
    workspace_slug: str
    user_id: int
    #: The sockets the user has in the workspace's sessions: to disconnect after commit.
    socket_ids: list[str]


def _socket_ids(workspace_id: int, user_id: int) -> list[str]:
    return list(
        Presence.objects.filter(session__workspace_id=workspace_id, user_id=user_id)
        .values_list("socket_id", flat=True)
        .distinct()
    )


def remove_member(actor: Membership, target: Membership) -> Removal:
    check_can_manage(actor, target.role)
    _not_self(actor, target.user_id, "remove")
    with transaction.atomic():
        sockets = _socket_ids(target.workspace_id, target.user_id)
        audit(actor.user, target, f"Removed {target.user.get_username()} from {target.workspace.slug}.")
        target.delete()
    return Removal(actor.workspace.slug, target.user_id, sockets)


# --- mute --------------------------------------------------------------------------------------


def mute(actor: Membership, target: Membership, seconds: int, reason: str = "") -> Membership:
    check_can_manage(actor, target.role)
    _not_self(actor, target.user_id, "mute")
    if not 1 <= seconds <= MUTE_MAX_SECONDS:
        raise InvalidPayload(f"A mute lasts 1 to {MUTE_MAX_SECONDS} seconds.", field="durationSeconds")
    target.muted_until = timezone.now() + timedelta(seconds=seconds)
    target.save(update_fields=["muted_until"])
    note = f" ({reason})" if reason else ""
    audit(
        actor.user,
        target,
        f"Muted {target.user.get_username()} in {target.workspace.slug} until {target.muted_until:%Y-%m-%d %H:%M:%S}Z{note}.",
    )
    return target


def unmute(actor: Membership, target: Membership) -> Membership:
    check_can_manage(actor, target.role)
    if target.muted_until is not None:
        target.muted_until = None
        target.save(update_fields=["muted_until"])
        audit(actor.user, target, f"Unmuted {target.user.get_username()} in {target.workspace.slug}.")
    return target


# --- ban ---------------------------------------------------------------------------------------


def ban(actor: Membership, target: Membership, reason: str = "") -> tuple[WorkspaceBan, Removal]:
    """Remove the membership, remember the ban, and say which sockets to disconnect."""
    check_can_manage(actor, target.role)
    _not_self(actor, target.user_id, "ban")
    with transaction.atomic():
        sockets = _socket_ids(target.workspace_id, target.user_id)
        row, _ = WorkspaceBan.objects.get_or_create(
            workspace_id=target.workspace_id,
            user_id=target.user_id,
            defaults={"role": target.role, "reason": reason[:500], "banned_by": actor.user},
        )
        target.delete()
        note = f" ({reason})" if reason else ""
        audit(actor.user, row, f"Banned {row.user.get_username()} from {actor.workspace.slug}{note}.")
    return row, Removal(actor.workspace.slug, target.user_id, sockets)


def find_ban(workspace: Workspace, username: str) -> WorkspaceBan:
    row = (
        WorkspaceBan.objects.select_related("user", "workspace", "banned_by")
        .filter(workspace=workspace, user__username=username)
        .first()
    )
    if row is None:
        raise MemberNotFound("No user of that username is banned from this workspace.")
    return row


def unban(actor: Membership, row: WorkspaceBan) -> Membership:
    """Lift the ban and give the user back the membership (and role) they had."""
    check_can_manage(actor, row.role)
    with transaction.atomic():
        audit(actor.user, row, f"Lifted the ban of {row.user.get_username()} from {actor.workspace.slug}.")
        membership, _ = Membership.objects.get_or_create(
            user_id=row.user_id, workspace_id=row.workspace_id, defaults={"role": row.role}
        )
        row.delete()
    return membership


# --- messages ----------------------------------------------------------------------------------


def set_hidden(actor: AbstractBaseUser, message: ChatMessage, hidden: bool) -> bool:
    """Hide or unhide; True when it changed (and so must be announced)."""
    with transaction.atomic():
        locked = ChatMessage.objects.select_for_update().get(pk=message.pk)
        if locked.hidden == hidden:
            message.hidden, message.hidden_by_id, message.hidden_at = locked.hidden, locked.hidden_by_id, locked.hidden_at
            return False
        fields: dict[str, Any] = (
            {"hidden": True, "hidden_by": actor, "hidden_at": timezone.now()}
            if hidden
            else {"hidden": False, "hidden_by": None, "hidden_at": None}
        )
        for name, value in fields.items():
            setattr(message, name, value)
        message.save(update_fields=list(fields))
        session = message.session
        verb = "Hid" if hidden else "Unhid"
        audit(actor, message, f"{verb} message {message.key} (#{message.seq}) in {session.workspace.slug}/{session.key}.")
    return True
