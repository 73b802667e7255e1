"""security.events without a database: bounding, scope extraction, and the writer with a fake bulk insert.

The recorders here run their writes with ``sync_to_async`` instead of
``database_sync_to_async``: the latter touches Django's connections, which
pytest-django forbids in tests that did not ask for a database.

The database-backed behaviour (real rows, a failing database that recovers)
is in tests/integration/test_security_services.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import pytest
from asgiref.sync import sync_to_async
from django.db import IntegrityError, OperationalError

from security import events
from security.events import EventRecorder, bound_detail, client_ip, user_agent
from security.models import SecurityEventType


class FakeDatabase:
    """Stands in for ``write_rows``: fails ``fail`` times with ``error``, then stores rows."""

    def __init__(self, fail: int = 0, error: type[Exception] = OperationalError) -> None:
        self.fail = fail
        self.error = error
        self.calls = 0
        self.rows: list = []

    def __call__(self, rows: list) -> None:
        self.calls += 1
        if self.fail > 0:
            self.fail -= 1
            raise self.error("database is down")
        self.rows.extend(rows)


@pytest.fixture
def database(monkeypatch) -> FakeDatabase:
    fake = FakeDatabase()
    monkeypatch.setattr(events, "write_rows", fake)
    return fake


@pytest.fixture
async def recorder():
    rec = EventRecorder(backoff_initial_s=0.01, backoff_max_s=0.05, to_async=sync_to_async)
    yield rec
    await rec.close(timeout=1)


SCOPE = {
    "type": "websocket",
    "client": ["203.0.113.9", 51234],
    "headers": [(b"host", b"chat.example"), (b"user-agent", b"Mozilla/5.0 (X11)\x00\x1b[31m" + b"x" * 500)],
}


# --- bounding -----------------------------------------------------------------------------------


def test_bound_detail_keeps_small_plain_details() -> None:
    detail = {"reason": "script_injection", "operation": "send", "count": 3, "ok": False, "ratio": 0.5, "none": None}
    assert bound_detail(detail) == detail
    assert bound_detail(None) == {} and bound_detail({}) == {}


def test_bound_detail_redacts_secrets_and_bodies() -> None:
    detail = {
        "token": "chat_abcdefghijklmnop",
        "apiToken": "x",
        "Authorization": "Bearer abc",
        "password": "hunter2",
        "content": "the message body",
        "message": "the message body",
        "body": "b",
        "nested": {
            "refresh_token": "t",
            "note": "leaked chat_abcdefghijklmnopqrstu here",
            "auth": "Basic dXNlcjpwYXNz",
        },
        "header": "Bearer eyJhbGciOi",
    }
    bounded = bound_detail(detail)
    assert bounded == {
        "token": "[redacted]",
        "apiToken": "[redacted]",
        "Authorization": "[redacted]",
        "password": "[redacted]",
        "content": "[redacted]",
        "message": "[redacted]",
        "body": "[redacted]",
        "nested": {"refresh_token": "[redacted]", "note": "leaked [redacted] here", "auth": "[redacted]"},
        "header": "[redacted]",
    }


def test_bound_detail_limits_depth_strings_items_and_size() -> None:
    deep = {"a": {"b": {"c": {"d": {"e": 1}}}}}
    assert bound_detail(deep) == {"a": {"b": {"c": {"d": "…"}}}}
    long = bound_detail({"s": "x" * 1000})
    assert len(long["s"]) == 200 and long["s"].endswith("…")
    many = bound_detail({"list": list(range(50)), **{f"k{n}": n for n in range(30)}})
    assert many["list"] == list(range(20)) + ["… 30 more"]
    assert len(many) == 21 and many["…"] == "11 more"
    huge = bound_detail({f"k{n}": "y" * 200 for n in range(20)})
    assert len(json.dumps(huge, ensure_ascii=False).encode()) <= 2048
    nested_lists = bound_detail({"m": [[[str(n) * 50 for n in range(20)] for _ in range(20)] for _ in range(20)]})
    assert len(json.dumps(nested_lists, ensure_ascii=False).encode()) <= 2048


def test_bound_detail_makes_anything_json() -> None:
    class Weird:
        def __repr__(self) -> str:
            return "<Weird>"

    bounded = bound_detail({"obj": Weird(), "set": {1}, "tuple": (1, 2), "nan": float("nan"), 3: "int key"})
    assert bounded == {"obj": "<Weird>", "set": [1], "tuple": [1, 2], "nan": None, "3": "int key"}
    json.dumps(bounded)
    assert bound_detail(["not", "a", "mapping"]) == {"value": ["not", "a", "mapping"]}


# --- the scope ------------------------------------------------------------------------------------


def test_client_ip() -> None:
    assert client_ip(SCOPE) == "203.0.113.9"
    assert client_ip({"client": ("::1", 1)}) == "::1"
    assert client_ip({"client": ["[2001:db8::1]", 1]}) == "2001:db8::1"
    assert client_ip({"client": None}) is None
    assert client_ip({"client": ["/run/daphne.sock", None]}) is None
    assert client_ip({}) is None and client_ip(None) is None


def test_user_agent_is_cleaned_and_truncated() -> None:
    agent = user_agent(SCOPE)
    assert agent.startswith("Mozilla/5.0 (X11)[31m") and len(agent) == 300
    assert "\x00" not in agent and "\x1b" not in agent
    assert user_agent({"headers": []}) == "" and user_agent(None) == ""


# --- recording ------------------------------------------------------------------------------------


async def test_record_then_flush_writes_one_row_per_event(recorder: EventRecorder, database: FakeDatabase) -> None:
    recorder.record(
        SecurityEventType.MESSAGE_BLOCKED,
        user=5,
        workspace=None,
        session_key="s1",
        scope=SCOPE,
        detail={"reason": "script_injection", "content": "<script>"},
    )
    recorder.record("rate_limit_exceeded", detail={"operation": "send", "retryAfter": 1200})
    assert await recorder.flush(timeout=2)
    first, second = database.rows
    assert (first.type, first.user_id, first.session_key, first.ip) == ("message_blocked", 5, "s1", "203.0.113.9")
    assert first.detail == {"reason": "script_injection", "content": "[redacted]"}
    assert second.type == "rate_limit_exceeded" and second.ip is None and second.user_agent == ""
    assert recorder.written == 2 and recorder.pending == 0


async def test_unknown_type_is_kept_as_suspicious_activity(recorder: EventRecorder, database: FakeDatabase) -> None:
    recorder.record("made_up", detail={"x": 1})
    await recorder.flush(timeout=2)
    (row,) = database.rows
    assert row.type == "suspicious_activity" and row.detail == {"x": 1, "requestedType": "made_up"}


async def test_record_never_raises(recorder: EventRecorder, database: FakeDatabase) -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("boom")

    recorder.record("message_blocked", detail={"x": Hostile()})  # dropped, logged, not raised
    recorder.record("message_blocked", scope={"client": object(), "headers": "garbage"})
    await recorder.flush(timeout=2)


async def test_model_instances_are_accepted_by_pk(recorder: EventRecorder, database: FakeDatabase) -> None:
    class User:
        pk = 9

    class Anonymous:
        pk = None

    recorder.record("authentication_failed", user=User(), workspace=User())
    recorder.record("authentication_failed", user=Anonymous())
    await recorder.flush(timeout=2)
    assert [(row.user_id, row.workspace_id) for row in database.rows] == [(9, 9), (None, None)]


async def test_database_outage_is_retried_and_never_blocks_the_caller(recorder: EventRecorder, monkeypatch) -> None:
    database = FakeDatabase(fail=3)
    monkeypatch.setattr(events, "write_rows", database)
    for n in range(50):
        calls = database.calls
        # Synchronous and write-free: it only queues, whatever the database is doing.
        assert recorder.record("rate_limit_exceeded", detail={"n": n}) is None
        assert database.calls == calls
        await asyncio.sleep(0)
    assert await recorder.flush(timeout=5)
    assert database.calls >= 4
    assert [row.detail["n"] for row in database.rows] == list(range(50))  # nothing lost, in order


async def test_flush_times_out_while_the_database_stays_down(recorder: EventRecorder, monkeypatch) -> None:
    database = FakeDatabase(fail=10**9)
    monkeypatch.setattr(events, "write_rows", database)
    recorder.record("suspicious_activity")
    assert not await recorder.flush(timeout=0.2)
    assert recorder.pending == 1  # kept for later
    database.fail = 0
    assert await recorder.flush(timeout=2)
    assert len(database.rows) == 1


async def test_full_queue_drops_new_events_counts_them_and_logs_once(monkeypatch, caplog) -> None:
    database = FakeDatabase(fail=10**9)
    monkeypatch.setattr(events, "write_rows", database)
    recorder = EventRecorder(max_buffer=5, backoff_initial_s=0.01, backoff_max_s=0.02, to_async=sync_to_async)
    with caplog.at_level(logging.ERROR, logger="security.events"):
        for n in range(12):
            recorder.record("rate_limit_exceeded", detail={"n": n})
        assert recorder.pending == 5 and recorder.dropped == 7
        assert sum("queue full" in r.message for r in caplog.records) == 1
        database.fail = 0
        assert await recorder.flush(timeout=2)
        assert [row.detail["n"] for row in database.rows] == [0, 1, 2, 3, 4]  # the oldest are kept
        assert sum("7 events were dropped" in r.message for r in caplog.records) == 1
    await recorder.close(timeout=1)


async def test_a_rejected_row_is_stored_without_its_links(recorder: EventRecorder, monkeypatch) -> None:
    stored: list = []

    def write_rows(rows: list) -> None:
        if len(rows) > 1 or any(row.user_id == 404 for row in rows):
            raise IntegrityError("FOREIGN KEY constraint failed")
        stored.extend(rows)

    monkeypatch.setattr(events, "write_rows", write_rows)
    recorder.record("authentication_failed", user=1)
    recorder.record("authentication_failed", user=404)  # deleted meanwhile
    assert await recorder.flush(timeout=2)
    assert [row.user_id for row in stored] == [1, None]


async def test_each_type_is_logged_at_most_once_per_interval(
    recorder: EventRecorder, database: FakeDatabase, caplog
) -> None:
    with caplog.at_level(logging.WARNING, logger="security.events"):
        for _ in range(100):
            recorder.record("message_blocked", scope=SCOPE)
            recorder.record("rate_limit_exceeded")
    messages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("security event ")]
    assert len(messages) == 2
    assert "203.0.113.9" in messages[0]
    await recorder.flush(timeout=2)


async def test_record_from_a_thread_without_a_loop(recorder: EventRecorder, database: FakeDatabase) -> None:
    recorder.record("suspicious_activity", detail={"from": "loop"})  # starts the writer on this loop
    await recorder.flush(timeout=2)
    thread = threading.Thread(
        target=recorder.record, args=("suspicious_activity",), kwargs={"detail": {"from": "thread"}}
    )
    thread.start()
    thread.join()
    for _ in range(100):
        if len(database.rows) == 2:
            break
        await asyncio.sleep(0.01)
    assert [row.detail["from"] for row in database.rows] == ["loop", "thread"]


async def test_module_level_record_and_flush(database: FakeDatabase, monkeypatch) -> None:
    fresh = EventRecorder(backoff_initial_s=0.01, to_async=sync_to_async)
    monkeypatch.setattr(events, "recorder", fresh)
    events.record("connection_limit_exceeded", user=3, detail={"limit": 5})
    assert await events.flush(timeout=2)
    assert database.rows[0].type == "connection_limit_exceeded"
    await fresh.close(timeout=1)


def test_record_without_any_loop_writes_synchronously(database: FakeDatabase) -> None:
    recorder = EventRecorder(to_async=sync_to_async)  # e.g. in a management command
    recorder.record("authentication_failed", detail={"n": 1})
    assert [row.detail for row in database.rows] == [{"n": 1}]
    assert recorder.pending == 0 and recorder.written == 1


def test_synchronous_write_keeps_events_when_the_database_is_down(monkeypatch) -> None:
    database = FakeDatabase(fail=1)
    monkeypatch.setattr(events, "write_rows", database)
    recorder = EventRecorder(to_async=sync_to_async)
    recorder.record("authentication_failed", detail={"n": 1})  # fails: kept
    assert recorder.pending == 1
    recorder.record("authentication_failed", detail={"n": 2})  # writes both
    assert [row.detail["n"] for row in database.rows] == [1, 2] and recorder.pending == 0


async def test_an_outage_during_row_by_row_writing_never_duplicates(recorder: EventRecorder, monkeypatch) -> None:
    stored: list = []
    calls = {"n": 0}

    def write_rows(rows: list) -> None:
        calls["n"] += 1
        if len(rows) > 1:
            raise IntegrityError("FOREIGN KEY constraint failed")  # the batch: go row by row
        if rows[0].detail["n"] == 2 and calls["n"] < 5:
            raise OperationalError("database is down")  # ...and the database goes away at row 2
        stored.append(rows[0])

    monkeypatch.setattr(events, "write_rows", write_rows)
    for n in range(4):
        recorder.record("suspicious_activity", detail={"n": n})
    assert await recorder.flush(timeout=5)
    assert sorted(row.detail["n"] for row in stored) == [0, 1, 2, 3]
