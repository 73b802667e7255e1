"""``chat.services.batches.DatabaseBatches``: requests arriving together share a batch, and answer one by one.

The first request of a quiet moment goes at once; those that arrive while a
batch is in the database, or within ``MIN_INTERVAL_S`` of its start, go
together in the next; each is answered with its own result or its own error;
a batch that fails as a whole fails each of its requests with ``internal``,
and the next batch runs as usual.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from chat.errors import ChatError, InvalidPayload
from chat.services import batches as batches_module
from chat.services.batches import DatabaseBatches

# The batches run on channels' database thread, which tidies that thread's connection first:
# an earlier test may have left one open there.
pytestmark = pytest.mark.django_db


class Recorder:
    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on

    def run(self, requests: list[int]) -> list[int | ChatError]:
        self.batches.append(list(requests))
        self.threads.add(threading.current_thread().name)
        if self.fail_on in requests:
            raise RuntimeError("the database went away")
        return [InvalidPayload("odd") if request % 2 else request * 10 for request in requests]


async def answers(batches: DatabaseBatches, requests: list[int]) -> list[object]:
    async def one(request: int) -> object:
        try:
            return await batches.submit(request)
        except ChatError as error:
            return error.code

    return await asyncio.gather(*(one(request) for request in requests))


async def test_requests_arriving_together_share_one_batch_and_get_their_own_answers():
    recorder = Recorder()
    batches = DatabaseBatches("test", recorder.run)
    assert await answers(batches, [2]) == [20]  # alone: at once, a batch of its own
    assert await answers(batches, [4, 5, 6, 7]) == [40, "invalid_payload", 60, "invalid_payload"]
    assert recorder.batches == [[2], [4, 5, 6, 7]]
    assert threading.current_thread().name not in recorder.threads  # run on the database thread, not the loop


async def test_a_batch_waits_for_the_interval_since_the_previous_one(monkeypatch):
    monkeypatch.setattr(batches_module, "MIN_INTERVAL_S", 0.2)
    recorder = Recorder()
    batches = DatabaseBatches("test", recorder.run)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await answers(batches, [2])
    assert loop.time() - started < 0.2  # the first goes at once
    first = asyncio.ensure_future(answers(batches, [4]))
    await asyncio.sleep(0.05)
    second = asyncio.ensure_future(answers(batches, [6, 8]))
    assert await first == [40] and await second == [60, 80]
    assert loop.time() - started >= 0.2
    assert recorder.batches == [[2], [4, 6, 8]]  # what came within the interval went together


async def test_a_failed_batch_fails_its_requests_and_the_next_batch_runs(caplog):
    recorder = Recorder(fail_on=13)
    batches = DatabaseBatches("test", recorder.run)
    assert await answers(batches, [12, 13]) == ["internal", "internal"]
    assert await answers(batches, [14]) == [140]
    assert [record.getMessage() for record in caplog.records].count("a batch of test failed") == 1


async def test_batches_hold_at_most_max_batch_requests():
    size = batches_module.MAX_BATCH + 1
    recorder = Recorder()
    batches = DatabaseBatches("test", recorder.run)
    assert await answers(batches, [2 * n for n in range(size)]) == [20 * n for n in range(size)]
    assert [len(batch) for batch in recorder.batches] == [batches_module.MAX_BATCH, 1]
