"""One place where the security modules read their settings, each with its default.

``chatsite.config`` owns the environment; the security settings may not be
there yet (or be removed in a test), so every read goes through
:func:`setting`, which falls back to the documented default.
"""

from __future__ import annotations

from typing import TypeVar

from django.conf import settings

T = TypeVar("T")


def setting(name: str, default: T) -> T:
    """``settings.CHAT.<name>``, or ``default`` when the attribute (or ``CHAT`` itself) is missing."""
    chat = getattr(settings, "CHAT", None)
    value = getattr(chat, name, None)
    return default if value is None else value
