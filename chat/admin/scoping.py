"""Which workspaces a staff user's admin pages reach: the ones they moderate (a superuser: all).

Every chat model's admin derives from :class:`WorkspaceScoped`, which limits
each changelist, search, filter choice, action, object page and foreign-key
choice to those workspaces.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from chat.models import Membership, Role, Workspace
from chat.services import moderation


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
