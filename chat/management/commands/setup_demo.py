"""Create the demo workspace, users and agent that ``make run`` shows a newcomer (idempotent)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from chat.models import Agent, Membership, Role, Workspace

DEMO_USERS = (("demo", "demo", Role.ADMIN), ("guest", "guest", Role.MEMBER))


class Command(BaseCommand):
    help = "Create the demo workspace, users (demo/demo, guest/guest) and the echo agent."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        User = get_user_model()
        workspace, _ = Workspace.objects.get_or_create(slug="demo", defaults={"name": "Demo workspace"})
        for username, password, role in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.is_staff = role == Role.ADMIN
                user.save()
            Membership.objects.get_or_create(user=user, workspace=workspace, defaults={"role": role})
        Agent.objects.get_or_create(
            workspace=workspace,
            key="echo",
            defaults={"name": "Echo agent", "backend": "echo", "config": {"delay_ms": 60}},
        )
        self.stdout.write("Demo data ready: workspace 'demo', users demo/demo (admin) and guest/guest, agent 'echo'.")
