"""The shared event schema and the check the integration suite runs every received event through."""

from __future__ import annotations

import pytest

from tests.integration import event_schema

MESSAGE = {
    "id": "m-1",
    "sessionId": "s-1",
    "workspaceId": "demo",
    "seq": 1,
    "senderType": "user",
    "userId": "ann",
    "userName": "ann",
    "content": "<b>hi</b>",
    "contentType": "text",
    "metadata": {},
    "timestamp": 1_700_000_000_000,
}


def test_the_schema_is_valid_json_schema_2020_12() -> None:
    event_schema.validator()  # check_schema raises on an invalid schema


def test_a_valid_event_passes() -> None:
    assert event_schema.event_problems("chat:message-received", (MESSAGE,)) == []
    assert event_schema.event_problems("chat:message-received", ({**MESSAGE, "html": "<p>hi</p>"},)) == []


@pytest.mark.parametrize(
    ("event", "args", "expected"),
    [
        ("chat:message-received", ({**MESSAGE, "seq": 0},), "less than the minimum"),
        ("chat:message-received", ({k: v for k, v in MESSAGE.items() if k != "seq"},), "'seq' is a required property"),
        ("chat:message-received", ({**MESSAGE, "surprise": 1},), "'surprise' was unexpected"),
        ("chat:message-received", ({**MESSAGE, "senderType": "robot"},), "is not one of"),
        ("chat:message-received", (MESSAGE, MESSAGE), "exactly one argument"),
        ("chat:no-such-event", ({},), "'chat:no-such-event' was unexpected"),
        ("chat:send-message-error", ({"error": "x", "code": "made_up"},), "is not one of"),
    ],
)
def test_an_invalid_event_is_reported(event: str, args: tuple, expected: str) -> None:
    found = event_schema.event_problems(event, args)
    assert any(expected in problem for problem in found), found


def test_other_events_are_not_the_chats() -> None:
    assert event_schema.event_problems("message-back", (1, 2)) == []


def test_acks_of_client_events() -> None:
    sent = {"messageId": "m-1", "sessionId": "s-1", "seq": 3, "timestamp": 1, "duplicate": False}
    assert event_schema.ack_problems("chat:send-message", ({"ok": True, **sent},)) == []
    refused = {"ok": False, "error": "Slow down.", "code": "rate_limited", "retryAfter": 1200, "messageId": "m-1"}
    assert event_schema.ack_problems("chat:send-message", (refused,)) == []
    assert event_schema.ack_problems("chat:send-message", ({"ok": True, **sent, "seq": "3"},))
    assert event_schema.ack_problems("chat:send-message", ({**sent},)) == ["`ok` must be true or false"]
    assert event_schema.ack_problems("chat:send-message", ({"ok": False, "code": "rate_limited"},))
    assert event_schema.ack_problems("not-a-chat-event", ("anything",)) == []


def test_violations_are_recorded_until_taken() -> None:
    event_schema.take_violations()
    event_schema.record("event", "chat:message-received", ({**MESSAGE, "seq": "1"},))
    event_schema.record("event", "chat:message-received", (MESSAGE,))
    taken = event_schema.take_violations()
    assert [(v.kind, v.event) for v in taken] == [("event", "chat:message-received")]
    assert "is not of type 'integer'" in str(taken[0])
    assert event_schema.take_violations() == []
