"""The Parlant-compatible API as a Django app of its own (models: the event log, token grants)."""

from __future__ import annotations

import logging

from django.apps import AppConfig


class ParlantConfig(AppConfig):
    name = "chat.parlant"
    label = "parlant"
    verbose_name = "Parlant-compatible API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The widget carries its token in the URL path: keep it out of the ASGI server's access log.
        from chat.parlant.auth import RedactPathTokens

        logging.getLogger("uvicorn.access").addFilter(RedactPathTokens())
