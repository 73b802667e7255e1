"""Committed messages are announced at least once: a failed announcement is retried in the background."""

from __future__ import annotations

import asyncio

from chat.models import ChatMessage
from chat.services import writer as writer_module
from chat.services.messages import StoredMessage
from monitoring import metrics


def stored() -> StoredMessage:
    return StoredMessage(ChatMessage(pk=1, seq=1, key="m1"), created=True)


async def test_a_failed_announcement_is_retried_until_it_goes_through(monkeypatch):
    monkeypatch.setattr(writer_module, "ANNOUNCE_RETRIES_S", (0.01, 0.01, 0.01, 0.01))
    calls = []

    async def announce(message: StoredMessage) -> None:
        calls.append(message)
        if len(calls) < 3:
            raise ConnectionError("Redis is away")

    writer = writer_module.MessageWriter()
    await writer._announce(announce, stored())
    assert len(calls) == 1  # the writer goes on at once; the retry is in the background
    await asyncio.gather(*writer._retrying)
    assert len(calls) == 3 and not writer._retrying


async def test_an_announcement_that_keeps_failing_is_counted_as_dropped(monkeypatch):
    monkeypatch.setattr(writer_module, "ANNOUNCE_RETRIES_S", (0.01, 0.01))
    dropped = []
    monkeypatch.setattr(metrics, "messages_dropped", lambda where, count: dropped.append((where, count)))

    async def announce(message: StoredMessage) -> None:
        raise ConnectionError("Redis is away")

    writer = writer_module.MessageWriter()
    await writer._announce(announce, stored())
    await asyncio.gather(*writer._retrying)
    assert dropped == [("announce", 1)]
