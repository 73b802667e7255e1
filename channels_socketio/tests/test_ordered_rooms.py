"""Joining an ordered room: nothing falls between a joiner's history and its live stream, nothing comes twice."""

from __future__ import annotations

import asyncio
from typing import Any

from channels_socketio.protocol.rooms import RoomFanout, fanout_message
from channels_socketio.transport.worker_channel import WorkerChannel


class Member:
    def __init__(self, id: str) -> None:
        self.id = id
        self.got: list[str] = []

    def deliver_now(self, frames: list[str | bytes]) -> bool:
        self.got += frames
        return True

    async def deliver(self, frames: list[str | bytes]) -> None:
        self.got += frames

    async def apply_remote(self, op: str, room: str | None, data: Any = None) -> None:
        pass


class GatedBroker:
    """Another process exists; subscribing takes as long as the test says (a Redis round trip)."""

    crosses_processes = True

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.published: list[dict[str, Any]] = []

    async def start(self, deliver, on_gap) -> None:
        pass

    async def subscribe(self, topic: str) -> None:
        if topic.startswith("worker."):
            return
        await self.gate.wait()

    async def unsubscribe(self, topic: str) -> None:
        pass

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        self.published.append(message)

    async def stop(self) -> None:
        pass


def broadcast(seq: int) -> dict[str, Any]:
    return fanout_message("g", [f"m{seq}"], seq=seq)


class Store:
    """The application's history: what ``fill`` reads."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.reads: list[tuple[int, int | None]] = []

    async def fill(self, first: int, last: int | None) -> list[dict[str, Any]]:
        self.reads.append((first, last))
        return [broadcast(seq) for seq in self.seqs if seq >= first and (last is None or seq <= last)]


async def test_a_joiner_is_told_what_this_worker_already_delivered_and_gets_the_rest_live():
    store = Store()
    fanout = RoomFanout(WorkerChannel())
    early = Member("early")
    assert await fanout.join(early, "g", (1, store.fill)) == 0
    for seq in (1, 2):
        store.seqs.append(seq)
        await fanout.send(broadcast(seq))
    joiner = Member("joiner")
    # The joiner's application read "nothing stored yet" before 1 and 2 were stored and delivered here.
    last_not_live = await fanout.join(joiner, "g", (1, store.fill))
    assert last_not_live == 2, "1 and 2 are history for the joiner: they went out before it joined"
    store.seqs.append(3)
    await fanout.send(broadcast(3))
    assert joiner.got == ["m3"] and early.got == ["m1", "m2", "m3"]


async def test_a_broadcast_arriving_while_the_worker_subscribes_is_ordered_and_comes_once(monkeypatch):
    from channels_socketio.protocol import sequence

    monkeypatch.setattr(sequence, "GAP_WAIT_S", 0.02)
    store = Store()
    broker = GatedBroker()
    fanout = RoomFanout(WorkerChannel(broker))
    joiner = Member("joiner")
    joining = asyncio.create_task(fanout.join(joiner, "g", (1, store.fill)))
    await asyncio.sleep(0.01)  # the join waits for its subscription
    store.seqs += [1, 2, 3]
    await fanout.send(broadcast(1))  # stored and announced by this worker meanwhile
    await fanout.send(broadcast(3))  # 2 came from a worker that died before publishing it
    broker.gate.set()
    assert await joining == 0
    for _ in range(100):
        if len(joiner.got) == 3:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert joiner.got == ["m1", "m2", "m3"]


async def test_what_was_published_before_the_subscription_is_read_without_waiting_for_the_next_message():
    store = Store()
    broker = GatedBroker()
    broker.gate.set()
    fanout = RoomFanout(WorkerChannel(broker))
    joiner = Member("joiner")
    store.seqs.append(1)  # stored and published elsewhere between the joiner's read and its subscription
    assert await fanout.join(joiner, "g", (1, store.fill)) == 0
    for _ in range(100):
        if joiner.got:
            break
        await asyncio.sleep(0.01)
    assert joiner.got == ["m1"] and store.reads == [(1, None)]
