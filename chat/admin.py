"""The Django admin for moderators: workspaces, members, bans, agents, sessions, messages, presence.

Layer: chat application (moderation UI).

Scoping: a staff user who is a moderator or admin of some workspaces sees
and acts only on those -- every changelist, search, filter choice, action,
object page and foreign-key choice is limited by :class:`WorkspaceScoped`.
A superuser sees everything.  Staff users who moderate nothing see no chat
model at all.  The moderator role *is* the permission here: no Django model
permissions need to be granted.

Actions with a live effect (close a session, hide/unhide a message, ban a
member, remove one) go through the same services and announcements as the
REST API, and every moderation action is recorded in the admin log.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import Truncator

from chat.actions import access
from chat.agents.secrets import MASK, masked_config, unmask_config
from chat.errors import ChatError
from chat.models import (
    Agent,
    ChatMessage,
    ChatSession,
    Membership,
    Presence,
    Role,
    Workspace,
    WorkspaceBan,
)
from chat.services import announce, moderation
from chat.services import sessions as session_service

# --- scoping ------------------------------------------------------------------------------------


def moderated_ids(request: HttpRequest) -> set[int]:
    """The workspaces the user moderates (cached on the request)."""
    cached = getattr(request, "_moderated_workspace_ids", None)
    if cached is None:
        cached = set(
            Membership.objects.filter(user_id=request.user.pk, role__in=(Role.MODERATOR, Role.ADMIN)).values_list(
                "workspace_id", flat=True
            )
        )
        request._moderated_workspace_ids = cached
    return cached


def admin_ids(request: HttpRequest) -> set[int]:
    return set(
        Membership.objects.filter(user_id=request.user.pk, role=Role.ADMIN).values_list("workspace_id", flat=True)
    )


def acting_membership(request: HttpRequest, workspace: Workspace) -> Membership:
    """Who the services see acting: the user's membership, or an admin's authority for a superuser."""
    found = Membership.objects.filter(user_id=request.user.pk, workspace=workspace).select_related("user").first()
    if request.user.is_superuser and (found is None or not found.moderates):
        return Membership(user=request.user, workspace=workspace, role=Role.ADMIN)
    if found is None or not found.moderates:
        raise moderation.NotModerator()
    found.workspace = workspace
    return found


class WorkspaceScoped(admin.ModelAdmin):
    """Lists, objects, choices and permissions limited to the workspaces the user moderates."""

    #: The lookup from this model to its workspace's id.
    workspace_lookup = "workspace_id"
    #: Foreign keys whose choices are scoped, and the lookup from the related model to its workspace.
    scoped_foreign_keys: dict[str, str] = {"workspace": "pk", "agent": "workspace_id", "session": "workspace_id"}

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.workspace_lookup}__in": moderated_ids(request)})

    def workspace_id_of(self, obj: Model) -> int | None:
        value: Any = obj
        *path, last = self.workspace_lookup.split("__")
        for part in path:
            value = getattr(value, part, None)
            if value is None:
                return None
        return getattr(value, last if last != "pk" else "pk", None)

    def in_scope(self, request: HttpRequest, obj: Model | None) -> bool:
        if request.user.is_superuser:
            return True
        if not (request.user.is_active and request.user.is_staff):
            return False
        ids = moderated_ids(request)
        if obj is None:
            return bool(ids)
        return self.workspace_id_of(obj) in ids

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.in_scope(request, None)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.in_scope(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.in_scope(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.in_scope(request, None)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.in_scope(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        lookup = self.scoped_foreign_keys.get(db_field.name)
        if lookup is not None and not request.user.is_superuser:
            related = db_field.remote_field.model._default_manager
            kwargs["queryset"] = related.filter(**{f"{lookup}__in": moderated_ids(request)})
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def report(self, request: HttpRequest, done: int, failed: list[str], verb: str) -> None:
        if done:
            self.message_user(request, f"{verb}: {done}.", messages.SUCCESS)
        for reason in failed[:10]:
            self.message_user(request, reason, messages.WARNING)


class ScopedRelatedFilter(admin.RelatedOnlyFieldListFilter):
    """Choices only among related objects reachable from the (scoped) changelist queryset."""


class ReadOnly:
    """Nobody adds or edits these here (superusers may delete)."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser


# --- workspaces and members ----------------------------------------------------------------------


@admin.register(Workspace)
class WorkspaceAdmin(WorkspaceScoped):
    workspace_lookup = "pk"
    list_display = ("slug", "name", "content_policy", "member_count", "created_at")
    list_filter = ("content_policy",)
    search_fields = ("slug", "name")
    date_hierarchy = "created_at"
    readonly_fields = ("created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(ordering="member_count", description="members")
    def member_count(self, workspace: Workspace) -> int:
        return workspace.member_count

    def get_readonly_fields(self, request: HttpRequest, obj: Workspace | None = None) -> tuple[str, ...]:
        return ("created_at",) if request.user.is_superuser or obj is None else ("slug", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Workspace | None = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Workspace | None = None) -> bool:
        if request.user.is_superuser:
            return True
        return obj is not None and self.in_scope(request, obj) and obj.pk in admin_ids(request)


class MembershipForm(forms.ModelForm):
    """New members are named by username (no list of every user on the site)."""

    username = forms.CharField(max_length=150, help_text="The username of an existing user.")

    class Meta:
        model = Membership
        fields = ("workspace", "role", "muted_until")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields.pop("username")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        username = data.get("username")
        if username is not None and not self.instance.pk:
            user = get_user_model().objects.filter(username=username, is_active=True).first()
            if user is None:
                self.add_error("username", "No active user has this username.")
                return data
            workspace = data.get("workspace")
            if workspace is not None:
                if moderation.is_banned(user.pk, workspace.pk):
                    self.add_error("username", "This user is banned from this workspace; lift the ban first.")
                elif Membership.objects.filter(user=user, workspace=workspace).exists():
                    self.add_error("username", "Already a member of this workspace.")
            self.instance.user = user
        return data


@admin.register(Membership)
class MembershipAdmin(WorkspaceScoped):
    form = MembershipForm
    list_display = ("user", "workspace", "role", "muted_until", "created_at")
    list_filter = (("workspace", ScopedRelatedFilter), "role", ("muted_until", admin.EmptyFieldListFilter))
    search_fields = ("user__username", "workspace__slug")
    list_select_related = ("user", "workspace")
    actions = ("mute_one_hour", "unmute", "ban")

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> tuple[str, ...]:
        return ("user", "workspace", "created_at") if obj is not None else ()

    def _allowed_roles(self, request: HttpRequest, workspace_id: int | None) -> list[str]:
        if request.user.is_superuser or (workspace_id is not None and workspace_id in admin_ids(request)):
            return list(Role.values)
        return [Role.MEMBER]

    def formfield_for_choice_field(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "role" and not request.user.is_superuser:
            admin_of = admin_ids(request)
            if not admin_of:
                kwargs["choices"] = [(Role.MEMBER, Role.MEMBER.label)]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Membership | None = None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        # Moderators manage plain members; admins (and superusers) anyone.
        return obj is None or obj.role == Role.MEMBER or Role.ADMIN in self._allowed_roles(request, obj.workspace_id)

    has_delete_permission = has_change_permission

    def save_model(self, request: HttpRequest, obj: Membership, form: forms.Form, change: bool) -> None:
        if obj.role not in self._allowed_roles(request, obj.workspace_id):
            obj.role = Role.MEMBER
            self.message_user(request, "Only workspace admins grant moderator and admin roles.", messages.WARNING)
        super().save_model(request, obj, form, change)
        if change and "role" in form.changed_data:
            access.access_changed(obj.workspace.slug, obj.user_id)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        self.delete_queryset(request, Membership.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for membership in queryset.select_related("user", "workspace"):
            membership.delete()
            access.access_changed(membership.workspace.slug, membership.user_id)

    def _each(self, request: HttpRequest, queryset: QuerySet, verb: str, act: Any) -> None:
        done, failed = 0, []
        for target in queryset.select_related("user", "workspace"):
            try:
                act(acting_membership(request, target.workspace), target)
                done += 1
            except ChatError as error:
                failed.append(f"{target}: {error.message}")
        self.report(request, done, failed, verb)

    @admin.action(description="Mute for one hour")
    def mute_one_hour(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "Muted", lambda actor, target: moderation.mute(actor, target, 3600))

    @admin.action(description="Lift the mute")
    def unmute(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "Unmuted", moderation.unmute)

    @admin.action(description="Ban from the workspace (disconnects them now)")
    def ban(self, request: HttpRequest, queryset: QuerySet) -> None:
        def act(actor: Membership, target: Membership) -> None:
            access.ban(actor, target, "banned in the admin")

        self._each(request, queryset, "Banned", act)


@admin.register(WorkspaceBan)
class WorkspaceBanAdmin(WorkspaceScoped):
    """Bans are made with the members' "Ban" action; deleting one lifts it (and restores the membership)."""

    list_display = ("user", "workspace", "role", "reason", "banned_by", "created_at")
    list_filter = (("workspace", ScopedRelatedFilter), "created_at")
    search_fields = ("user__username", "workspace__slug", "reason")
    list_select_related = ("user", "workspace", "banned_by")
    readonly_fields = ("user", "workspace", "role", "banned_by", "created_at")
    fields = ("user", "workspace", "role", "reason", "banned_by", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: WorkspaceBan) -> None:
        self.delete_queryset(request, WorkspaceBan.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for row in queryset.select_related("user", "workspace"):
            try:
                moderation.unban(acting_membership(request, row.workspace), row)
            except ChatError as error:
                self.message_user(request, f"{row}: {error.message}", messages.WARNING)


# --- agents -------------------------------------------------------------------------------------


class AgentForm(forms.ModelForm):
    """The config is shown masked; a masked value left as it is keeps the stored secret."""

    config = forms.JSONField(required=False, help_text=f'Secrets are shown as "{MASK}"; leave them so to keep them.')

    class Meta:
        model = Agent
        fields = ("workspace", "key", "name", "backend", "config")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["config"] = masked_config(self.instance.config or {})

    def clean_config(self) -> dict[str, Any]:
        value = self.cleaned_data.get("config")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("The config is a JSON object.")
        return unmask_config(value, self.instance.config or {})


@admin.register(Agent)
class AgentAdmin(WorkspaceScoped):
    form = AgentForm
    list_display = ("name", "key", "workspace", "backend", "shown_config", "created_at")
    list_filter = (("workspace", ScopedRelatedFilter), "backend")
    search_fields = ("name", "key", "workspace__slug")
    list_select_related = ("workspace",)

    @admin.display(description="config (masked)")
    def shown_config(self, agent: Agent) -> str:
        return Truncator(json.dumps(masked_config(agent), sort_keys=True)).chars(120)


# --- sessions and messages --------------------------------------------------------------------------

RECENT_MESSAGES = 20


class RecentMessagesInline(admin.TabularInline):
    model = ChatMessage
    fk_name = "session"
    verbose_name_plural = f"recent messages (the last {RECENT_MESSAGES})"
    fields = ("seq", "sender_type", "sender_name", "short_content", "hidden", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-seq",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        try:
            session_id = int(object_id)
        except (TypeError, ValueError):
            return queryset.none()
        recent = list(
            ChatMessage.objects.filter(session_id=session_id)
            .order_by("-seq")
            .values_list("pk", flat=True)[:RECENT_MESSAGES]
        )
        return queryset.filter(pk__in=recent)

    @admin.display(description="content")
    def short_content(self, message: ChatMessage) -> str:
        return Truncator(message.content).chars(120)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # the parent session's page is scoped already


@admin.register(ChatSession)
class ChatSessionAdmin(WorkspaceScoped):
    list_display = ("key", "workspace", "title", "agent", "status", "created_by", "last_seq", "created_at", "last_activity_at")
    list_filter = (
        ("workspace", ScopedRelatedFilter),
        "status",
        ("agent", ScopedRelatedFilter),
        "created_at",
        "last_activity_at",
    )
    search_fields = ("key", "title", "created_by__username")
    list_select_related = ("workspace", "agent", "created_by")
    date_hierarchy = "created_at"
    fields = ("key", "workspace", "title", "agent", "status", "created_by", "shared_with_names", "last_seq", "created_at", "last_activity_at")
    readonly_fields = ("key", "workspace", "status", "created_by", "shared_with_names", "last_seq", "created_at", "last_activity_at")
    inlines = (RecentMessagesInline,)
    actions = ("close_sessions",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # sessions are opened by clients (socket join or REST)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    @admin.display(description="shared with")
    def shared_with_names(self, session: ChatSession) -> str:
        return ", ".join(sorted(user.get_username() for user in session.shared_with.all())) or "-"

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if db_field.name == "agent" and object_id:
            # An agent of the session's own workspace only.
            workspace_id = ChatSession.objects.filter(pk=object_id).values_list("workspace_id", flat=True).first()
            field.queryset = field.queryset.filter(workspace_id=workspace_id)
        return field

    def save_model(self, request: HttpRequest, obj: ChatSession, form: forms.Form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and form.changed_data:
            announce.session_updated(obj)

    @admin.action(description="Close (sockets are told at once; nobody can send any more)")
    def close_sessions(self, request: HttpRequest, queryset: QuerySet) -> None:
        closed = 0
        for session in queryset.select_related("workspace"):
            if session_service.close_session(request.user, session):
                announce.session_closed(session, request.user.get_username())
                closed += 1
        self.report(request, closed, [], "Closed")


class HiddenFilter(admin.SimpleListFilter):
    title = "hidden"
    parameter_name = "hidden"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("1", "Hidden"), ("0", "Visible")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("0", "1"):
            return queryset.filter(hidden=self.value() == "1")
        return queryset


@admin.register(ChatMessage)
class ChatMessageAdmin(WorkspaceScoped):
    workspace_lookup = "session__workspace_id"
    list_display = ("seq", "session", "workspace", "sender_type", "sender_name", "short_content", "hidden", "created_at")
    list_filter = (
        ("session__workspace", ScopedRelatedFilter),
        HiddenFilter,
        "sender_type",
        "content_type",
        "created_at",
    )
    search_fields = ("content", "key", "sender_name", "session__key")
    list_select_related = ("session__workspace",)
    date_hierarchy = "created_at"
    readonly_fields = (
        "session",
        "key",
        "seq",
        "sender_type",
        "user",
        "agent",
        "sender_name",
        "content",
        "content_type",
        "metadata",
        "created_at",
        "hidden",
        "hidden_by",
        "hidden_at",
    )
    actions = ("hide", "unhide")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    @admin.display(description="workspace", ordering="session__workspace__slug")
    def workspace(self, message: ChatMessage) -> str:
        return message.session.workspace.slug

    @admin.display(description="content")
    def short_content(self, message: ChatMessage) -> str:
        return Truncator(message.content).chars(80)

    def _set_hidden(self, request: HttpRequest, queryset: QuerySet, hidden: bool) -> None:
        changed = 0
        for message in queryset.select_related("session__workspace"):
            if moderation.set_hidden(request.user, message, hidden):
                (announce.message_hidden if hidden else announce.message_unhidden)(message, message.session)
                changed += 1
        self.report(request, changed, [], "Hidden" if hidden else "Unhidden")

    @admin.action(description="Hide (removed from every connected client now)")
    def hide(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_hidden(request, queryset, True)

    @admin.action(description="Unhide")
    def unhide(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_hidden(request, queryset, False)


# --- presence -------------------------------------------------------------------------------------


@admin.register(Presence)
class PresenceAdmin(ReadOnly, WorkspaceScoped):
    """Who is connected now: presence rows whose worker refreshed them within the TTL."""

    workspace_lookup = "session__workspace_id"
    list_display = ("user_name", "session", "workspace", "status", "connected_at", "last_seen", "worker_id")
    list_filter = (("session__workspace", ScopedRelatedFilter), "status")
    search_fields = ("user_name", "session__key")
    list_select_related = ("session__workspace",)
    readonly_fields = ("session", "socket_id", "user", "user_name", "status", "connected_at", "last_seen", "worker_id")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        cutoff = timezone.now() - timedelta(seconds=settings.CHAT.presence_ttl_s)
        return super().get_queryset(request).filter(last_seen__gte=cutoff)

    @admin.display(description="workspace")
    def workspace(self, presence: Presence) -> str:
        return presence.session.workspace.slug

