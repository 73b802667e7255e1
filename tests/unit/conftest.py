"""Fixtures the unit tests may ask for; none is applied unless a test module asks."""

from __future__ import annotations

import pytest

from tests.unit.security_support import FakeClock, with_default_security_settings


@pytest.fixture
def default_security_settings(settings) -> None:
    """Security settings at their documented defaults, whatever the environment says."""
    settings.CHAT = with_default_security_settings(settings.CHAT)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
