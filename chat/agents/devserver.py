"""Run daphne with the agent hooks in place and, optionally, extra backends (tests, benchmarks).

``python -m chat.agents.devserver [--backend module:Class ...] -- <daphne arguments>``

The chat application calls the agents from two places: ``chat.events``
registers :mod:`chat.events.agents` (``chat:cancel-agent``) and
``chat:send-message`` calls :func:`chat.agents.runner.on_user_message`
after storing and broadcasting a user message.  Until both are wired in,
:func:`install_hooks` adds them from outside, with the same effect; once
they are, it does nothing.  ``--backend`` registers a backend class in this
process only (the benchmark's clock backend), so an agent row naming it
works here and nowhere else.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from typing import Any

CANCEL_EVENT = "chat:cancel-agent"
SEND_EVENT = "chat:send-message"


def message_hook_wired() -> bool:
    from chat.events import messages

    return "on_user_message" in inspect.getsource(messages)


def install_hooks() -> None:
    """Make ``chat.events.chat_namespace()`` include the agent hooks (idempotent)."""
    import chat.events as events

    if getattr(events.chat_namespace, "agent_hooks", False):
        return
    original = events.chat_namespace

    def chat_namespace():
        namespace = original()
        if CANCEL_EVENT not in namespace.events:
            from chat.events import agents

            agents.register(namespace)
        if not message_hook_wired():
            _wrap_send_message(namespace)
        return namespace

    chat_namespace.agent_hooks = True  # type: ignore[attr-defined]
    events.chat_namespace = chat_namespace


def _wrap_send_message(namespace: Any) -> None:
    from channels.db import database_sync_to_async

    from chat.agents import runner
    from chat.events.context import find_joined
    from chat.models import ChatMessage

    send = namespace.handler_for(SEND_EVENT)

    def message_pk(session_id: int, key: str) -> int | None:
        return ChatMessage.objects.filter(session_id=session_id, key=key).values_list("pk", flat=True).first()

    async def send_message_then_agent(socket: Any, *args: Any) -> Any:
        result = await send(socket, *args)
        if isinstance(result, dict) and result.get("ok"):
            entry = find_joined(socket, args[0]["message"])
            pk = await database_sync_to_async(message_pk)(entry.session_id, result["messageId"])
            if pk is not None:
                await runner.on_user_message(entry.session_id, pk)
        return result

    namespace.on(SEND_EVENT)(send_message_then_agent)


def register_backend(spec: str) -> None:
    from chat.agents.backends import BACKENDS

    module_name, _, class_name = spec.partition(":")
    backend = getattr(importlib.import_module(module_name), class_name)
    BACKENDS[backend.name] = backend


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, daphne_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else ([], argv)
    parser = argparse.ArgumentParser(prog="python -m chat.agents.devserver")
    parser.add_argument("--backend", action="append", default=[], help="module:Class of an extra backend")
    options = parser.parse_args(ours)
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    install_hooks()
    for spec in options.backend:
        register_backend(spec)
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(daphne_args)


if __name__ == "__main__":
    main()
