"""The admin of attachments: what was uploaded where, by whom, and removing it (file and row)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from chat.admin.scoping import ReadOnly, ScopedRelatedFilter, WorkspaceScoped
from chat.models import Attachment
from chat.services import attachments


@admin.register(Attachment)
class AttachmentAdmin(ReadOnly, WorkspaceScoped):
    """Read-only, scoped like every chat model; moderators delete, which removes the stored file too."""

    list_display = ("name", "content_type", "size", "workspace", "session", "uploaded_by", "sent_in", "created_at")
    list_filter = (("workspace", ScopedRelatedFilter), "content_type")
    search_fields = ("name", "public_id", "session__key", "uploaded_by__username", "sha256")
    list_select_related = ("workspace", "session", "uploaded_by", "message")
    date_hierarchy = "created_at"
    readonly_fields = (
        "public_id", "name", "content_type", "size", "width", "height", "sha256", "workspace", "session",
        "uploaded_by", "message", "storage_name", "created_at",
    )

    @admin.display(description="message")
    def sent_in(self, attachment: Attachment) -> str:
        return f"#{attachment.message.seq}" if attachment.message_id else "not sent"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.in_scope(request, obj)

    def delete_model(self, request: HttpRequest, obj: Attachment) -> None:
        attachments.delete_attachments([obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        attachments.delete_attachments(list(queryset))
