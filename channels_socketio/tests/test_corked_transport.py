"""CorkedTransport: what one loop iteration writes leaves in one call, in order, and nothing is lost on close."""

from __future__ import annotations

import asyncio
from typing import Iterator

import pytest

from channels_socketio.transport.uvicorn_websocket import CorkedTransport


class RecordingTransport:
    """The transport's side that CorkedTransport uses, recording the calls it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.closing = False
        self.buffered = 0

    def writelines(self, chunks: list[bytes]) -> None:
        self.calls.append(("writelines", list(chunks)))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", None))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 1234)}.get(name, default)


@pytest.fixture
def setup() -> Iterator[tuple[CorkedTransport, RecordingTransport, asyncio.AbstractEventLoop]]:
    """A CorkedTransport over a recording one, on a loop of its own."""
    loop = asyncio.new_event_loop()
    real = RecordingTransport()
    yield CorkedTransport(real, loop), real, loop
    loop.close()


def _next_iteration(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0))


def test_writes_of_one_iteration_leave_together_in_order(setup) -> None:
    corked, real, loop = setup
    corked.write(b"a")
    corked.write(b"b")
    corked.writelines([b"c", b"d"])
    assert real.calls == []
    assert corked.get_write_buffer_size() == 4
    _next_iteration(loop)
    assert real.calls == [("writelines", [b"a", b"b", b"c", b"d"])]
    assert corked.get_write_buffer_size() == 0
    corked.write(b"e")
    _next_iteration(loop)
    assert real.calls[1:] == [("writelines", [b"e"])]


def test_buffer_size_counts_the_real_transports_too(setup) -> None:
    corked, real, loop = setup
    real.buffered = 100
    corked.write(b"xyz")
    assert corked.get_write_buffer_size() == 103


def test_close_sends_what_was_written_first(setup) -> None:
    corked, real, loop = setup
    corked.write(b"last frame")
    corked.write(b"close frame")
    corked.close()
    assert real.calls == [("writelines", [b"last frame", b"close frame"]), ("close", None)]
    _next_iteration(loop)  # the scheduled uncork finds nothing left
    assert len(real.calls) == 2


def test_abort_drops_what_was_written(setup) -> None:
    corked, real, loop = setup
    corked.write(b"never sent")
    corked.abort()
    _next_iteration(loop)
    assert real.calls == [("abort", None)]


def test_nothing_is_written_to_a_closing_transport(setup) -> None:
    corked, real, loop = setup
    corked.write(b"late")
    real.closing = True
    _next_iteration(loop)
    assert real.calls == []


def test_everything_else_is_the_real_transports(setup) -> None:
    corked, _, loop = setup
    assert corked.get_extra_info("peername") == ("127.0.0.1", 1234)
    assert corked.is_closing() is False
