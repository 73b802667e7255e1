"""Fixtures for the in-process REST API and admin tests (``test_api_*.py``, ``test_admin*.py``).

These run Django in the test process (pytest-django's test database), with
real API tokens over ``Authorization: Bearer``.  What views announce to
sockets is captured by :class:`RecordingEmitter` in place of the channel
layer; use :func:`committed` so ``on_commit`` announcements actually run
(the test transaction never commits).  The live effects on real sockets are
tested against real servers in ``test_api_live.py``.

The world: workspaces ``acme`` (A) and ``beta`` (B); in A ``alice`` and
``carol`` (members), ``mod`` (moderator), ``boss`` (admin); in B ``bob``
(member) and ``bmod`` (moderator); ``nobody`` belongs nowhere.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.test import APIClient

from chat import notify
from chat.models import Agent, ChatSession, Membership, Role, Workspace
from chat.services import access, screening
from chat.services.messages import Sender, store_message
from chat.services.writer import writer
from security.models import ApiToken

API = "/api/v1"


class RecordingEmitter:
    """Stands in for :data:`chat.notify.emitter`: records what would reach sockets."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, ...]] = []

    async def emit(
        self, event: str, *args: Any, room: str = "", namespace: str = "/", exclude: Any = (), seq: Any = None
    ) -> None:
        self.calls.append(("emit", room, event, *args))

    async def emit_to_socket(self, socket_id: str, event: str, *args: Any, namespace: str = "/") -> None:
        self.calls.append(("emit_to_socket", socket_id, event, *args))

    async def disconnect_room(self, room: str, *, namespace: str = "/") -> None:
        self.calls.append(("disconnect_room", room))

    async def notice_room(self, room: str, data: Any, *, namespace: str = "/") -> None:
        self.calls.append(("notice_room", room, data))

    def events(self, name: str | None = None) -> list[tuple[str, dict]]:
        """``(room, payload)`` of every emit (of event ``name``)."""
        return [(call[1], call[3]) for call in self.calls if call[0] == "emit" and (name is None or call[2] == name)]


@dataclass
class World:
    a: Workspace
    b: Workspace
    users: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, name: str | None) -> APIClient:
        client = APIClient()
        if name is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.tokens[name]}")
        return client

    def session(self, workspace: Workspace, key: str, owner: str, **extra: Any) -> ChatSession:
        return ChatSession.objects.create(workspace=workspace, key=key, created_by=self.users[owner], **extra)

    def message(self, session: ChatSession, key: str, content: str, sender: str = "alice", **extra: Any):
        return store_message(session.pk, Sender.for_user(self.users[sender]), key, content, **extra).message


MEMBERS = {
    "alice": ("a", Role.MEMBER),
    "carol": ("a", Role.MEMBER),
    "mod": ("a", Role.MODERATOR),
    "boss": ("a", Role.ADMIN),
    "bob": ("b", Role.MEMBER),
    "bmod": ("b", Role.MODERATOR),
    "nobody": (None, None),
}


@pytest.fixture
def world(db: None) -> World:
    cache.clear()  # the rate limiter's counters: user ids repeat between tests
    access._policies.clear()  # workspaces' content policies a worker remembers: ids repeat between tests too
    screening.limiter.cache_clear()  # a fresh limiter and repeat tracker: their counts are per process
    screening.repeats.cache_clear()
    writer.forget()  # the messages the writer remembers by session id and key: both repeat between tests
    world = World(Workspace.objects.create(slug="acme", name="Acme"), Workspace.objects.create(slug="beta", name="Beta"))
    for name, (space, role) in MEMBERS.items():
        user = get_user_model().objects.create_user(username=name)  # no password: hashing is slow
        world.users[name] = user
        world.tokens[name] = ApiToken.issue(user, name="test")[1]
        if space is not None:
            Membership.objects.create(user=user, workspace=getattr(world, space), role=role)
    Agent.objects.create(workspace=world.a, key="helper", name="Helper")
    Agent.objects.create(workspace=world.b, key="bhelper", name="B helper")
    return world


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> RecordingEmitter:
    recorder = RecordingEmitter()
    monkeypatch.setattr(notify, "emitter", recorder)
    return recorder


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Any:
    """``with committed(): ...`` runs what the block scheduled with ``on_commit``, as a real commit would."""

    @contextlib.contextmanager
    def run() -> Iterator[list]:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            yield callbacks

    return run


def error_of(response: Any, status: int, code: str) -> dict:
    """Assert the API's error shape, status and code; return the body."""
    body = response.json()
    assert response.status_code == status, (response.status_code, body)
    assert body.get("code") == code, body
    assert isinstance(body.get("error"), str) and body["error"], body
    return body


def pages(client: APIClient, url: str, **params: Any) -> list[list[dict]]:
    """Follow ``next`` links from ``url``; the results of every page."""
    found = []
    response = client.get(url, params)
    while True:
        assert response.status_code == 200, response.json()
        body = response.json()
        found.append(body["results"])
        if not body["next"]:
            return found
        response = client.get(body["next"])
