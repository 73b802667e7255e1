"""Every place that lists the ``chat:*`` events knows the same ones: the schema, ``chat.event_names``, the metrics."""

from __future__ import annotations

import json
from pathlib import Path

from chat import event_names
from monitoring import metrics

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schema" / "chat-events.schema.json").read_text())


def schema_events(direction: str) -> set[str]:
    return set(SCHEMA["properties"][direction]["properties"])


def test_the_client_events_are_the_schemas():
    assert event_names.CLIENT_EVENTS == schema_events("clientToServer") == schema_events("acks")


def test_the_server_events_are_the_schemas():
    assert event_names.SERVER_EVENTS == schema_events("serverToClient")


def test_the_metrics_label_every_event():
    """An event missing here would be counted as "other" on every dashboard."""
    assert event_names.CLIENT_EVENTS <= metrics.CLIENT_EVENTS
    assert event_names.SERVER_EVENTS <= metrics.SERVER_EVENTS
