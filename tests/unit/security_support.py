"""What the security unit tests share: a clock moved by hand, and settings at their documented defaults."""

from __future__ import annotations

from types import SimpleNamespace

from chatsite.config import Config

#: The security settings (``chatsite/config.py``); set to their defaults before each test, whatever
#: the environment says.
SECURITY_SETTINGS = {
    "message_rate_limit", "join_rate_limit", "typing_rate_limit", "presence_rate_limit", "history_rate_limit",
    "penalty_strikes", "penalty_strike_window_s", "penalty_quiet_s", "penalty_max_level",
    "connection_limit", "connection_ttl_s", "spam_max_char_run", "spam_max_links", "spam_max_repeats",
    "spam_repeat_window_s", "security_event_buffer",
}  # fmt: skip


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def with_default_security_settings(chat: object) -> SimpleNamespace:
    defaults = Config()
    return SimpleNamespace(**{**vars(chat), **{name: getattr(defaults, name) for name in SECURITY_SETTINGS}})


def override_chat(settings, **values) -> None:
    """Replace ``settings.CHAT`` (restored after the test) with one that has ``values``."""
    settings.CHAT = SimpleNamespace(**{**vars(settings.CHAT), **values})
