"""The admin shows a message's reactions (as its members see them), and only for the moderator's workspace."""

# ruff: noqa: F811 -- tests take the fixtures imported from api_support as arguments

from __future__ import annotations

import pytest
from django.test import Client

from chat.services import reactions
from tests.integration.api_support import world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def test_message_page_lists_its_reactions_and_other_workspaces_stay_out(world):
    session = world.session(world.a, "acme-r", "alice")
    message = world.message(session, "acme-r-1", "react here", sender="alice")
    reactions.add(message, world.users["alice"], "👍")
    reactions.add(message, world.users["carol"], "👍")
    reactions.add(message, world.users["carol"], "🎉")
    foreign = world.message(world.session(world.b, "beta-r", "bob"), "beta-r-1", "bsecret", sender="bob")
    reactions.add(foreign, world.users["bob"], "👀")

    mod = world.users["mod"]
    mod.is_staff = True
    mod.save()
    client = Client()
    client.force_login(mod)
    html = client.get(f"/admin/chat/chatmessage/{message.pk}/change/").content.decode()
    assert "👍 2 (alice, carol), 🎉 1 (carol)" in html
    assert client.get(f"/admin/chat/chatmessage/{foreign.pk}/change/").status_code in (302, 404)
