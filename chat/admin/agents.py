"""The admin of agents: their config is shown with its secrets masked."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.utils.text import Truncator

from chat.admin.scoping import ScopedRelatedFilter, WorkspaceScoped
from chat.agents.secrets import MASK, masked_config
from chat.agents.validation import edited_config, validate_agent_config
from chat.errors import ChatError
from chat.models import Agent


class AgentForm(forms.ModelForm):
    """The config is shown masked; a masked value left as it is keeps the stored secret while the URL stays.

    What may be saved is :func:`chat.agents.validation.validate_agent_config`'s to say.
    """

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
            value = {}
        if not isinstance(value, dict):
            raise forms.ValidationError("The config is a JSON object.")
        config = edited_config(value, self.instance.config or {})
        try:
            return validate_agent_config(self.cleaned_data.get("backend", ""), config)
        except ChatError as error:
            raise forms.ValidationError(error.message) from None


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
