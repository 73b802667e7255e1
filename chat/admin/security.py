"""The admin of security's models: the event log (read-only) and API tokens (create, revoke; secret shown once).

It lives in the chat app because its scoping is the chat's
(:mod:`chat.admin.scoping`): a moderator sees the security events of
the workspaces they moderate, and only their own API tokens; a superuser
sees everything.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.utils import timezone

from chat.admin.scoping import ScopedRelatedFilter, WorkspaceScoped, moderated_ids
from security.models import ApiToken, SecurityEvent


@admin.register(SecurityEvent)
class SecurityEventAdmin(WorkspaceScoped):
    list_display = ("created_at", "type", "workspace", "user", "session_key", "ip")
    list_filter = ("type", ("workspace", ScopedRelatedFilter), "created_at")
    search_fields = ("user__username", "session_key", "ip")
    list_select_related = ("workspace", "user")
    date_hierarchy = "created_at"
    readonly_fields = ("type", "user", "workspace", "session_key", "ip", "user_agent", "detail", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """The list header counts the events of each type among those listed (filters applied)."""
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        changelist = context.get("cl") if context else None
        if changelist is not None:
            counts = (
                changelist.queryset.order_by().values("type").annotate(count=Count("pk")).order_by("-count", "type")
            )
            context["type_counts"] = [(row["type"], row["count"]) for row in counts]
            context["subtitle"] = " · ".join(f"{kind}: {count}" for kind, count in context["type_counts"]) or "none"
        return response


class ApiTokenForm(forms.ModelForm):
    username = forms.CharField(
        max_length=150, required=False, help_text="Superusers: whose token (default: yours). Others: always yours."
    )

    class Meta:
        model = ApiToken
        fields = ("name", "expires_at")


_SECRET_PAGE = engines["django"].from_string(
    """{% extends "admin/base_site.html" %}
{% block content %}
<p>The new API token for <strong>{{ token.user }}</strong> ({{ token.name|default:"unnamed" }}):</p>
<p><code id="api-token-secret" style="font-size:1.2em">{{ secret }}</code></p>
<p><strong>Copy it now: it is not stored and will never be shown again.</strong></p>
<p><a href="{{ back }}">Back to the API tokens</a></p>
{% endblock %}"""
)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ("hint", "name", "user", "state", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("created_at",)
    search_fields = ("name", "hint", "user__username")
    list_select_related = ("user",)
    readonly_fields = ("hint", "user", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    # Only superusers see every token; a moderator manages their own.
    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(user_id=request.user.pk)

    def _allowed(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        if request.user.is_superuser:
            return True
        if not (request.user.is_active and request.user.is_staff and moderated_ids(request)):
            return False
        return obj is None or obj.user_id == request.user.pk

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, obj)

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        if obj is None:
            return ["username", "name", "expires_at"] if request.user.is_superuser else ["name", "expires_at"]
        return ["hint", "user", "name", "created_at", "expires_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        return self.readonly_fields if obj is not None else ()

    @admin.display(description="state")
    def state(self, token: ApiToken) -> str:
        if token.revoked_at:
            return "revoked"
        return "usable" if token.usable else "expired"

    def save_model(self, request: HttpRequest, obj: ApiToken, form: forms.Form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        user = request.user
        username = form.cleaned_data.get("username")
        if request.user.is_superuser and username:
            user = get_user_model().objects.get(username=username)  # checked by the form
        token, secret = ApiToken.issue(user, name=form.cleaned_data.get("name", ""), expires_at=obj.expires_at)
        obj.pk, obj.user, obj.hint, obj.digest, obj.created_at = token.pk, token.user, token.hint, token.digest, token.created_at
        request._new_api_token_secret = secret

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> type:
        form = super().get_form(request, obj, change=change, **kwargs)

        class Checked(form):  # type: ignore[misc, valid-type]
            def clean_username(self) -> str:
                name = self.cleaned_data.get("username", "")
                if name and not get_user_model().objects.filter(username=name).exists():
                    raise forms.ValidationError("No user has this username.")
                return name

        return Checked

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None) -> HttpResponse:
        """The secret is shown on this one page, never stored, and never shown again."""
        secret = getattr(request, "_new_api_token_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": "API token created",
            "token": obj,
            "secret": secret,
            "back": "../",
            "opts": self.opts,
        }
        response = HttpResponse(_SECRET_PAGE.render(context, request))
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke (stops working at once)")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        now = timezone.now()
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token.revoked_at = now
            token.save(update_fields=["revoked_at"])
            self.log_change(request, token, "Revoked the API token.")
            revoked += 1
        self.message_user(request, f"Revoked: {revoked}.", messages.SUCCESS)
