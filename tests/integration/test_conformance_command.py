"""``make conformance`` serves what third-party Socket.IO suites expect, on the port asked for."""

from __future__ import annotations

import pytest

from tests.conftest import SIO_DRIVER, ServerProcess, _base_env, free_port, run_node
from tests.integration.clients import FINAL_TRANSPORT, MODES, node_script, node_view

pytestmark = pytest.mark.node


@pytest.fixture
def make_conformance(node, tmp_path):
    port = free_port()
    # A make of our own, not a sub-make of `make test`.
    env = {key: value for key, value in _base_env().items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    server = ServerProcess(
        ["make", "--no-print-directory", "conformance", f"PORT={port}"], env, port, tmp_path / "make.log"
    )
    try:
        yield server.start(timeout=120)  # the first run may install the virtualenv
    finally:
        server.stop()


def test_make_conformance_serves_every_transport(make_conformance):
    server = make_conformance
    assert f"http://127.0.0.1:{server.port}/socket.io/" in server.log_text(), "it says what it serves"
    for mode in MODES:
        steps = [
            {"do": "connect", "auth": {"mode": mode}},
            {"do": "emit", "event": "message", "args": [mode, {"n": 1}]},
            {"do": "wait", "event": "message-back"},
        ]
        out = node_view(run_node(SIO_DRIVER, node_script(server.url, mode, steps)))
        assert out["events"] == [
            {"ns": "/", "name": "auth", "args": [{"mode": mode}]},
            {"ns": "/", "name": "message-back", "args": [mode, {"n": 1}]},
        ], mode
        assert out["transport"] == FINAL_TRANSPORT[mode]
