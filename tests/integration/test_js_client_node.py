"""@chatserver/client (clients/js) in Node against a real server: two users and the echo agent.

The browser tests drive the same client through React; this shows it
framework-free, from both its ES module and its CommonJS build.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.browser.example_app import JS_ROOT, js_available
from tests.conftest import REPO_ROOT, arun_node, require_service
from tests.integration.chat_client import RELAXED_SECURITY, create_agent, issue_tokens, unique

CLIENT_DIR = JS_ROOT / "packages" / "client"
SCRIPT = REPO_ROOT / "tests" / "js" / "js_client_chat.mjs"


@pytest.fixture(scope="module")
def built_client() -> None:
    require_service("clients/js", *js_available())
    done = subprocess.run(["npm", "run", "build"], cwd=JS_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


async def test_two_users_and_the_echo_agent_through_the_client_in_node(built_client, server_factory, backend) -> None:
    server = server_factory(backend, conformance=False, **RELAXED_SECURITY)
    workspace, session = unique("ws"), unique("s")
    tokens = issue_tokens(server, [("alice", workspace, "member"), ("bob", workspace, "moderator")])
    create_agent(server, workspace, "echo", "Echo agent")
    out = await arun_node(
        SCRIPT,
        {"url": server.url, "workspace": workspace, "session": session, "tokens": tokens, "clientDir": str(CLIENT_DIR)},
        timeout=60,
    )
    expected = [
        (1, "hello from bob", "user"),
        (2, "Echo: hello from bob", "agent"),
        (3, "hello from node", "user"),
        (4, "Echo: hello from node", "agent"),
    ]
    for side in ("alice", "bob"):
        assert [(m["seq"], m["content"], m["sender"]) for m in out[side]] == expected, out[side]
    assert [m["mine"] for m in out["alice"]] == [False, False, True, False]
    assert [m["state"] for m in out["bob"]] == ["sent", "stored", "stored", "stored"]
    # The reply grew word by word before it was stored.
    assert "Echo: hello from" in out["streamed"] and out["streamed"][0] == "Echo:", out["streamed"]
    assert "bob" in out["typingSeen"]
    assert out["presenceAtAlice"] == ["alice", "bob"]
    assert out["tokensIssued"] == 1
