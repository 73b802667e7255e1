"""The admin of members' ratings of agent replies: read-only, scoped to the workspaces the user moderates."""

from __future__ import annotations

from django.contrib import admin
from django.utils.text import Truncator

from chat.admin.scoping import ReadOnly, WorkspaceScoped
from chat.models import MessageFeedback


@admin.register(MessageFeedback)
class MessageFeedbackAdmin(ReadOnly, WorkspaceScoped):
    workspace_lookup = "message__session__workspace_id"
    list_display = ("rating", "agent", "reply", "version", "user", "short_comment", "updated_at")
    list_filter = ("rating", "message__agent__key", "updated_at")
    search_fields = ("comment", "user__username", "message__key", "message__session__key")
    list_select_related = ("user", "message__agent", "message__session__workspace")
    readonly_fields = ("message", "user", "rating", "comment", "version", "created_at", "updated_at")
    date_hierarchy = "updated_at"

    @admin.display(description="agent")
    def agent(self, row: MessageFeedback) -> str:
        return row.message.agent.key if row.message.agent else ""

    @admin.display(description="reply")
    def reply(self, row: MessageFeedback) -> str:
        return f"{row.message.session.workspace.slug} / {row.message.session.key} / {row.message.key}"

    @admin.display(description="comment")
    def short_comment(self, row: MessageFeedback) -> str:
        return Truncator(row.comment).chars(80)
