"""Ordered rooms: numbered broadcasts reach members in order, gaps filled from the application's store."""

from __future__ import annotations

import asyncio
from typing import Any

from channels_socketio.protocol import sequence
from channels_socketio.protocol.sequence import Sequencer


def message(seq: int) -> dict[str, Any]:
    return {"type": "sio.fanout", "group": "g", "op": "emit", "frames": [f"m{seq}"], "seq": seq}


class Room:
    """A sequencer with a recording delivery and a store that holds ``stored`` messages."""

    def __init__(self, next_seq: int = 1, stored: range | list[int] = ()) -> None:
        self.delivered: list[int] = []
        self.fills: list[tuple[int, int | None]] = []
        self.stored = set(stored)
        self.sequencer = Sequencer(next_seq, self.fill, self.deliver)

    async def deliver(self, msg: dict[str, Any]) -> None:
        self.delivered.append(msg["seq"])

    async def fill(self, first: int, last: int | None) -> list[dict[str, Any]]:
        self.fills.append((first, last))
        top = max(self.stored, default=0) if last is None else last
        return [message(seq) for seq in range(first, top + 1) if seq in self.stored]


async def test_in_order_messages_are_delivered_at_once():
    room = Room()
    for seq in (1, 2, 3):
        await room.sequencer.accept(message(seq))
    assert room.delivered == [1, 2, 3] and room.fills == []


async def test_an_early_message_waits_for_its_predecessor():
    room = Room()
    await room.sequencer.accept(message(2))
    await room.sequencer.accept(message(3))
    assert room.delivered == []
    await room.sequencer.accept(message(1))
    assert room.delivered == [1, 2, 3] and room.fills == []


async def test_repeats_and_old_messages_are_dropped():
    room = Room(next_seq=5)
    for seq in (3, 4, 5, 5, 6, 4):
        await room.sequencer.accept(message(seq))
    assert room.delivered == [5, 6]


async def test_a_gap_is_filled_from_the_store_after_the_wait(monkeypatch):
    monkeypatch.setattr(sequence, "GAP_WAIT_S", 0.02)
    room = Room(stored=[1, 2, 3, 4])
    await room.sequencer.accept(message(3))
    await room.sequencer.accept(message(4))
    await asyncio.sleep(0.1)
    assert room.fills == [(1, 2)]
    assert room.delivered == [1, 2, 3, 4]
    await room.sequencer.accept(message(2))  # the lost publisher's message, late
    assert room.delivered == [1, 2, 3, 4]


async def test_what_the_store_does_not_give_is_skipped(monkeypatch):
    """A message hidden since it was stored is not shown, and does not stall the room."""
    monkeypatch.setattr(sequence, "GAP_WAIT_S", 0.02)
    room = Room(stored=[1, 3])
    await room.sequencer.accept(message(3))
    await asyncio.sleep(0.1)
    assert room.delivered == [1, 3]
    await room.sequencer.accept(message(4))
    assert room.delivered == [1, 3, 4]


async def test_too_many_held_messages_fill_the_gap_at_once(monkeypatch):
    monkeypatch.setattr(sequence, "GAP_WAIT_S", 60)
    monkeypatch.setattr(sequence, "MAX_HELD", 5)
    room = Room(stored=range(1, 10))
    for seq in range(2, 9):
        await room.sequencer.accept(message(seq))
    await asyncio.sleep(0.05)
    assert room.delivered == list(range(1, 9))


async def test_catching_up_reads_everything_after_the_last_delivered():
    room = Room(stored=range(1, 6))
    await room.sequencer.accept(message(1))
    room.sequencer.catch_up()
    await asyncio.sleep(0.05)
    assert room.fills == [(2, None)]
    assert room.delivered == [1, 2, 3, 4, 5]


async def test_a_failing_store_skips_the_gap_rather_than_stalling(monkeypatch):
    monkeypatch.setattr(sequence, "GAP_WAIT_S", 0.02)
    room = Room()

    async def broken(first: int, last: int | None) -> list[dict[str, Any]]:
        raise OSError("database down")

    room.sequencer._fill = broken
    await room.sequencer.accept(message(3))
    await asyncio.sleep(0.1)
    assert room.delivered == [3]


async def test_concurrent_arrivals_are_delivered_once_each_in_order():
    delivered: list[int] = []

    async def slow_deliver(msg: dict[str, Any]) -> None:
        await asyncio.sleep(0.001)
        delivered.append(msg["seq"])

    async def no_fill(first: int, last: int | None) -> list[dict[str, Any]]:
        return []

    sequencer = Sequencer(1, no_fill, slow_deliver)
    order = [5, 1, 3, 2, 4, 8, 6, 7, 1, 3]
    await asyncio.gather(*(sequencer.accept(message(seq)) for seq in order))
    await asyncio.sleep(0.05)
    assert delivered == list(range(1, 9))


async def test_a_gap_is_filled_even_when_the_early_message_came_from_a_finished_sync_call(monkeypatch):
    """A REST view announces after commit through ``async_to_sync``; its thread is gone when the gap is filled.

    The wait and the fill must not run in that call's context (its
    ``CurrentThreadExecutor`` has quit), or a store read through
    ``sync_to_async`` fails and the member never gets the missing message.
    """
    from asgiref.sync import async_to_sync, sync_to_async

    monkeypatch.setattr(sequence, "GAP_WAIT_S", 0.02)
    delivered: list[int] = []

    async def deliver(msg: dict[str, Any]) -> None:
        delivered.append(msg["seq"])

    def read_store(first: int, last: int | None) -> list[dict[str, Any]]:
        return [message(seq) for seq in range(first, (last or first) + 1)]

    sequencer = Sequencer(1, sync_to_async(read_store), deliver)
    await sync_to_async(lambda: async_to_sync(sequencer.accept)(message(2)))()
    for _ in range(100):
        if delivered == [1, 2]:
            break
        await asyncio.sleep(0.01)
    assert delivered == [1, 2]


async def test_a_message_in_flight_while_a_gap_is_read_is_waited_for_not_skipped(monkeypatch):
    """The store answers for the gap it was asked about; a later gap that opened meanwhile is not skipped.

    Under load a fill takes a while: 1 and 2 come in while it runs, 3 is
    delivered, 5 arrives before 4.  4 is on its way, not missing: the
    room waits for it (or fills it in turn), it must not jump to 5.
    """
    monkeypatch.setattr(sequence, "GAP_WAIT_S", 0.02)
    room = Room(stored=range(1, 6))
    reading = asyncio.Event()
    answer = asyncio.Event()
    store = room.fill

    async def slow_fill(first: int, last: int | None) -> list[dict[str, Any]]:
        reading.set()
        await answer.wait()
        return await store(first, last)

    room.sequencer._fill = slow_fill
    await room.sequencer.accept(message(3))
    await asyncio.wait_for(reading.wait(), 1)  # reading 1..2 from the store
    for seq in (1, 2, 5):
        await room.sequencer.accept(message(seq))
    assert room.delivered == [1, 2, 3]
    answer.set()
    await asyncio.sleep(0.01)
    await room.sequencer.accept(message(4))
    await asyncio.sleep(0.1)
    assert room.delivered == [1, 2, 3, 4, 5]
