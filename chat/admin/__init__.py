"""The Django admin for moderators: workspaces, members, bans, agents, sessions, messages, attachments,
feedback, presence, security.

Layer: chat application (moderation UI).

Scoping: a staff user who is a moderator or admin of some workspaces sees
and acts only on those -- every changelist, search, filter choice, action,
object page and foreign-key choice is limited by :class:`chat.admin.scoping.WorkspaceScoped`.
A superuser sees everything.  Staff users who moderate nothing see no chat
model at all.  The moderator role *is* the permission here: no Django model
permissions need to be granted.

Actions with a live effect (close a session, hide/unhide a message, ban a
member, remove one) go through the same services and announcements as the
REST API, and every moderation action is recorded in the admin log.

One module per subject; importing them registers their model admins.
"""

from chat.admin import agents, attachments, conversations, feedback, scoping, security, workspaces

__all__ = ["agents", "attachments", "conversations", "feedback", "scoping", "security", "workspaces"]
