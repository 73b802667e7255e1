"""The admin of sessions, messages and presence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import Truncator

from chat.admin.scoping import ReadOnly, ScopedRelatedFilter, WorkspaceScoped
from chat.models import ChatMessage, ChatSession, MessageVersion, Presence
from chat.services import announce, moderation
from chat.services import sessions as session_service

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


class ChangedFilter(admin.SimpleListFilter):
    """Edited or deleted messages (their earlier versions are on each message's page)."""

    title = "changed"
    parameter_name = "changed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("edited", "Edited"), ("deleted", "Deleted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "edited":
            return queryset.filter(edited_at__isnull=False)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


class VersionsInline(admin.TabularInline):
    """What every edit or deletion of the message replaced (the message's page is scoped already)."""

    model = MessageVersion
    fk_name = "message"
    verbose_name_plural = "earlier versions"
    fields = ("version", "content", "content_type", "reason", "changed_by", "replaced_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("version",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


@admin.register(ChatMessage)
class ChatMessageAdmin(WorkspaceScoped):
    workspace_lookup = "session__workspace_id"
    list_display = (
        "seq", "session", "workspace", "sender_type", "sender_name", "short_content", "version", "hidden", "deleted",
        "created_at",
    )
    list_filter = (
        ("session__workspace", ScopedRelatedFilter),
        HiddenFilter,
        ChangedFilter,
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
        "version",
        "edited_at",
        "deleted_at",
    )
    inlines = (VersionsInline,)
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

    @admin.display(description="deleted", boolean=True)
    def deleted(self, message: ChatMessage) -> bool:
        return message.deleted_at is not None

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
