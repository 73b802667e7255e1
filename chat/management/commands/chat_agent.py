"""Create or update an agent: ``chat_agent WORKSPACE KEY --backend echo --config '{"delay_ms": 20}'``."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from chat.agents.backends import BACKENDS
from chat.agents.secrets import masked_config
from chat.agents.validation import validate_agent_config
from chat.errors import ChatError
from chat.models import Agent, Workspace, client_id_validator


class Command(BaseCommand):
    help = "Create or update the agent KEY of WORKSPACE; prints it with its config masked."

    def add_arguments(self, parser) -> None:
        parser.add_argument("workspace", help="Workspace slug.")
        parser.add_argument("key", help="The agent's id (agentId on the wire).")
        parser.add_argument("--backend", default="echo", help=f"One of: {', '.join(sorted(BACKENDS))}.")
        parser.add_argument("--config", default="{}", help="The backend's settings as a JSON object.")
        parser.add_argument("--name", help="Display name (default: the key).")
        parser.add_argument("--create-workspace", action="store_true", help="Create the workspace if missing.")
        parser.add_argument(
            "--any-backend", action="store_true", help="Accept a backend name this process does not know."
        )

    @transaction.atomic
    def handle(self, *args, workspace: str, key: str, backend: str, config: str, name: str | None, **options):
        try:
            client_id_validator(key)
        except Exception:
            raise CommandError("KEY must be 1-128 characters of A-Z, a-z, 0-9, _ and -.") from None
        if backend not in BACKENDS and not options["any_backend"]:
            raise CommandError(f"Unknown backend {backend!r}; choose one of {', '.join(sorted(BACKENDS))}.")
        try:
            parsed = json.loads(config)
        except json.JSONDecodeError as error:
            raise CommandError(f"--config is not JSON: {error.msg}.") from None
        if not isinstance(parsed, dict):
            raise CommandError("--config must be a JSON object.")
        if backend in BACKENDS:
            try:
                validate_agent_config(backend, parsed)
            except ChatError as error:
                raise CommandError(error.message) from None
        space = Workspace.objects.filter(slug=workspace).first()
        if space is None:
            if not options["create_workspace"]:
                raise CommandError(f"No workspace {workspace!r}; pass --create-workspace to make one.")
            space = Workspace.objects.create(slug=workspace, name=workspace)
        agent, created = Agent.objects.update_or_create(
            workspace=space, key=key, defaults={"backend": backend, "config": parsed, "name": name or key}
        )
        shown = {
            "workspace": space.slug,
            "key": agent.key,
            "name": agent.name,
            "backend": agent.backend,
            "config": masked_config(agent),
            "created": created,
        }
        self.stdout.write(json.dumps(shown))
