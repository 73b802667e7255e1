"""Access changes: unsharing a session, changing a member's role, removing a member, banning one.

Layer: chat actions.  Callers: the REST API and the admin.

Each makes the change through its service (which checks the actor's
authority) and, once it commits, reaches the user's live sockets in the
workspace on every worker: a ban disconnects them (after ``chat:banned``);
the other changes send them a notice (:func:`chat.notify.access_changed`)
on which each re-reads its access and leaves what it lost with
``chat:session-left`` (code ``access_revoked``) or follows its new role
(:mod:`chat.events.access`).  A mute needs no notice: the message writer
reads it with every message it stores.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from chat import notify
from chat.models import ChatSession, Membership, WorkspaceBan
from chat.services import announce, moderation
from chat.services import sessions as session_service
from chat.services.announce import after_commit


def access_changed(workspace_slug: str, user_id: int) -> None:
    """After commit, the user's live sockets in the workspace re-read their access (also for the admin's forms)."""
    after_commit(notify.access_changed, workspace_slug, user_id)


def unshare_session(membership: Membership, session: ChatSession, username: str) -> AbstractBaseUser | None:
    """Stop sharing ``session`` with ``username``; their sockets in it leave it.  The user, if it was shared."""
    user = session_service.unshare_session(membership, session, username)
    if user is not None:
        access_changed(membership.workspace.slug, user.pk)
    return user


def change_role(actor: Membership, target: Membership, role: str) -> Membership:
    """A demoted moderator's sockets lose the moderator view, and the sessions they were in only as one."""
    old = target.role
    target = moderation.change_role(actor, target, role)
    if target.role != old:
        access_changed(target.workspace.slug, target.user_id)
    return target


def remove_member(actor: Membership, target: Membership) -> None:
    """Remove the membership; the user's sockets leave every session of the workspace."""
    removal = moderation.remove_member(actor, target)
    access_changed(removal.workspace_slug, removal.user_id)


def ban(actor: Membership, target: Membership, reason: str = "") -> WorkspaceBan:
    """Ban and remove the member; their sockets in the workspace get ``chat:banned`` and are disconnected."""
    row, removal = moderation.ban(actor, target, reason)
    announce.user_removed(removal.workspace_slug, removal.user_id, removal.socket_ids, banned=True)
    return row
