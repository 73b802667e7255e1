"""Print a working API token for a user: credentials for scripts and load tests in one line."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from chat.models import Membership, Role, Workspace
from security.models import ApiToken


class Command(BaseCommand):
    help = "Print a new API token for USERNAME (with --create: make the user, workspace and membership)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--workspace", help="Workspace slug the user must belong to.")
        parser.add_argument("--role", choices=Role.values, default=Role.MEMBER)
        parser.add_argument("--create", action="store_true", help="Create what does not exist yet.")
        parser.add_argument("--name", default="cli", help="A label for the token.")

    @transaction.atomic
    def handle(self, *args, username: str, workspace: str | None, role: str, create: bool, name: str, **options):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            if not create:
                raise CommandError(f"No user {username!r}; pass --create to make one.")
            user = User.objects.create_user(username=username)
        if workspace:
            space = Workspace.objects.filter(slug=workspace).first()
            if space is None:
                if not create:
                    raise CommandError(f"No workspace {workspace!r}; pass --create to make one.")
                space = Workspace.objects.create(slug=workspace, name=workspace)
            membership = Membership.objects.filter(user=user, workspace=space).first()
            if membership is None:
                if not create:
                    raise CommandError(f"{username!r} is not a member of {workspace!r}; pass --create.")
                Membership.objects.create(user=user, workspace=space, role=role)
            elif create and membership.role != role:
                membership.role = role
                membership.save(update_fields=["role"])
        _, secret = ApiToken.issue(user, name=name)
        self.stdout.write(secret)
