"""Every ``chat:*`` event our test clients receive, checked against the shared schema.

``schema/chat-events.schema.json`` is the one description of the chat events
that the JavaScript client's types are generated from (``clients/js``).  So
that the server and the schema cannot drift apart, every python-socketio
client of the integration suite checks what it receives:

- each event whose name starts with ``chat:`` must be a known server event
  whose single argument validates against its payload schema;
- each acknowledgement of a known ``chat:`` client event must be
  ``{ok: true, ...}`` with that event's ack body, or ``{ok: false, ...}``
  with a ``ChatError``.

:func:`install` wraps ``socketio.AsyncClient`` (its event dispatch and its
``emit`` callbacks) for the whole session; ``tests/integration/conftest.py``
fails the test during which an invalid event arrived
(:func:`take_violations`).  Other events (the conformance mode's ``auth``,
``message-back``...) are not the chat's and are left alone.
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass
from typing import Any, Callable

from jsonschema import Draft202012Validator

from tests.conftest import REPO_ROOT

SCHEMA_PATH = REPO_ROOT / "schema" / "chat-events.schema.json"
CHAT_PREFIX = "chat:"
#: How much of an offending payload a failure message shows.
SHOWN_CHARS = 600


@functools.cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@functools.cache
def validator() -> Draft202012Validator:
    Draft202012Validator.check_schema(schema())
    return Draft202012Validator(schema())


@functools.cache
def error_validator() -> Draft202012Validator:
    """The ``ChatError`` shape alone: the body of a failed ack."""
    return Draft202012Validator({"$ref": "#/$defs/ChatError", "$defs": schema()["$defs"]})


def client_events() -> set[str]:
    return set(schema()["properties"]["clientToServer"]["properties"])


def problems(section: str, event: str, payload: Any) -> list[str]:
    """What is wrong with ``payload`` as ``event`` in one section of the catalogue (empty: valid)."""
    errors = validator().iter_errors({section: {event: payload}})
    return sorted(f"/{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors)


def event_problems(event: str, args: tuple[Any, ...]) -> list[str]:
    """What is wrong with a received server event (empty: valid, or not a chat event)."""
    if not event.startswith(CHAT_PREFIX):
        return []
    if len(args) != 1:
        return [f"a chat event carries exactly one argument, got {len(args)}"]
    return problems("serverToClient", event, args[0])


def ack_problems(event: str, args: tuple[Any, ...]) -> list[str]:
    """What is wrong with the acknowledgement of a client event (empty: valid, or not a chat event)."""
    if event not in client_events():
        return []
    if len(args) != 1 or not isinstance(args[0], dict):
        return [f"a chat ack is one JSON object, got {args!r:.200}"]
    ack = dict(args[0])
    ok = ack.pop("ok", None)
    if ok is True:
        return problems("acks", event, ack)
    if ok is False:
        errors = error_validator().iter_errors(ack)
        return sorted(f"/{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors)
    return ["`ok` must be true or false"]


# --- recording -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    kind: str  # "event" or "ack"
    event: str
    payload: Any
    problems: tuple[str, ...]

    def __str__(self) -> str:
        shown = json.dumps(self.payload, default=repr)
        if len(shown) > SHOWN_CHARS:
            shown = shown[:SHOWN_CHARS] + "…"
        listed = "\n    ".join(self.problems)
        return f"{self.kind} {self.event!r} does not match schema/chat-events.schema.json:\n    {listed}\n  payload: {shown}"


_violations: list[Violation] = []
_lock = threading.Lock()


def record(kind: str, event: str, args: tuple[Any, ...]) -> None:
    found = event_problems(event, args) if kind == "event" else ack_problems(event, args)
    if found:
        with _lock:
            _violations.append(Violation(kind, event, args[0] if len(args) == 1 else list(args), tuple(found)))


def take_violations() -> list[Violation]:
    """The violations recorded since the last call (and forget them)."""
    with _lock:
        taken = list(_violations)
        _violations.clear()
    return taken


# --- the python-socketio hook ------------------------------------------------------------------


def install() -> Callable[[], None]:
    """Check every event and ack python-socketio's ``AsyncClient`` receives; returns the undo."""
    import socketio

    client = socketio.AsyncClient
    handle_event, emit = client._handle_event, client.emit

    @functools.wraps(handle_event)
    async def checked_handle_event(self: Any, namespace: Any, id: Any, data: list[Any]) -> Any:
        if data and isinstance(data[0], str):
            record("event", data[0], tuple(data[1:]))
        return await handle_event(self, namespace, id, data)

    @functools.wraps(emit)
    async def checked_emit(self: Any, event: str, data: Any = None, namespace: Any = None, callback: Any = None):
        if callback is not None and event in client_events():
            original = callback

            def callback(*args: Any) -> Any:
                record("ack", event, args)
                return original(*args)

        return await emit(self, event, data, namespace=namespace, callback=callback)

    client._handle_event, client.emit = checked_handle_event, checked_emit

    def undo() -> None:
        client._handle_event, client.emit = handle_event, emit

    return undo
