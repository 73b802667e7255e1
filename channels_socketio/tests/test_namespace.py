"""How many arguments a client may send to a handler: worked out once from its signature."""

from __future__ import annotations

import asyncio

import pytest

from channels_socketio.errors import InvalidPayload
from channels_socketio.protocol.namespace import Namespace

SOCKET = object()


def _namespace() -> Namespace:
    chat = Namespace("/")

    @chat.on("fixed")
    async def fixed(socket, a, b):
        return (socket, a, b)

    @chat.on("optional")
    async def optional(socket, a, b=2):
        return (socket, a, b)

    @chat.on("any")
    async def anything(socket, *args):
        return (socket, args)

    return chat


@pytest.mark.parametrize(
    ("event", "args", "expected"),
    [
        ("fixed", [1, 2], (SOCKET, 1, 2)),
        ("optional", [1], (SOCKET, 1, 2)),
        ("optional", [1, 3], (SOCKET, 1, 3)),
        ("any", [], (SOCKET, ())),
        ("any", [1, 2, 3], (SOCKET, (1, 2, 3))),
    ],
)
def test_a_call_gets_the_clients_arguments_after_the_socket(event, args, expected) -> None:
    call = _namespace().bind(event, SOCKET, args)
    assert asyncio.run(call()) == expected


@pytest.mark.parametrize(("event", "args"), [("fixed", [1]), ("fixed", [1, 2, 3]), ("optional", []), ("optional", [1, 2, 3])])
def test_a_wrong_count_is_the_clients_error(event, args) -> None:
    with pytest.raises(InvalidPayload, match=f"Wrong number of arguments for '{event}'"):
        _namespace().bind(event, SOCKET, args)


def test_an_unknown_event_has_no_call() -> None:
    assert _namespace().bind("nope", SOCKET, []) is None


def test_a_handler_clients_could_not_call_is_refused_at_registration() -> None:
    with pytest.raises(TypeError, match="keyword-only"):

        @Namespace("/").on("bad")
        async def bad(socket, *, required):
            return None
