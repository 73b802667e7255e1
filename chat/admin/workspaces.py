"""The admin of workspaces, their members and their bans."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from chat.actions import access
from chat.admin.scoping import ScopedRelatedFilter, WorkspaceScoped, acting_membership, admin_ids
from chat.errors import ChatError
from chat.models import Membership, Role, Workspace, WorkspaceBan
from chat.services import moderation


@admin.register(Workspace)
class WorkspaceAdmin(WorkspaceScoped):
    workspace_lookup = "pk"
    list_display = ("slug", "name", "content_policy", "edit_window_s", "member_count", "created_at")
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
