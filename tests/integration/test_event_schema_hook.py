"""The schema check is installed on every python-socketio client of the integration suite."""

from __future__ import annotations

import socketio

from tests.integration import event_schema


async def test_an_invalid_chat_event_received_by_any_client_is_recorded() -> None:
    client = socketio.AsyncClient(reconnection=False)
    event_schema.take_violations()
    await client._handle_event("/", None, ["chat:message-sent", {"messageId": "m-1", "seq": "one"}])
    await client._handle_event("/", None, ["chat:not-in-the-schema", {}])
    await client._handle_event("/", None, ["message-back", "not a chat event"])
    found = event_schema.take_violations()  # taken here, so this test itself passes
    assert [(v.kind, v.event) for v in found] == [("event", "chat:message-sent"), ("event", "chat:not-in-the-schema")]
    assert any("'sessionId' is a required property" in problem for problem in found[0].problems)
