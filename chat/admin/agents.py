"""The admin of agents: their config is shown with its secrets masked."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.utils.text import Truncator

from chat.admin.scoping import ScopedRelatedFilter, WorkspaceScoped
from chat.agents.secrets import MASK, masked_config, unmask_config
from chat.models import Agent


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
