"""History pagination against a model, and ``afterSeq`` recovery end to end.

- In process (pytest-django's test database): ``chat.services.messages.history``
  is compared with a plain list model for random message counts, hidden
  messages, limits, offsets and ``afterSeq`` values (hypothesis), including
  the invalid ones; and paging through a whole session either way yields
  every visible message exactly once.
- Against real servers: a client disconnected while others kept sending
  reconnects, rejoins, pages with ``afterSeq`` while ``hasMore``, and ends
  with every message exactly once, in order.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.chat_client import (
    RELAXED_SECURITY,
    TRANSPORTS,
    ChatClient,
    client_pool,
    issue_tokens,
    stored_messages,
    unique,
)

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
_counter = itertools.count()


# --- the model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    limit: int | None
    offset: int | None  # None: not given (the default, 0)
    after_seq: int | None
    include_hidden: bool


def model(visible: list[int], q: Query) -> tuple[list[int], bool, int] | str:
    """What the protocol promises: ``(seqs, hasMore, effective limit)``, or "invalid"."""
    offset = 0 if q.offset is None else q.offset
    if (q.limit is not None and q.limit < 1) or offset < 0 or (q.after_seq is not None and q.after_seq < 0):
        return "invalid"
    limit = DEFAULT_LIMIT if q.limit is None else min(q.limit, MAX_LIMIT)
    if q.after_seq is not None:
        after = [seq for seq in visible if seq > q.after_seq]
        return after[:limit], len(after) > limit, limit
    newest_first = visible[::-1]
    return newest_first[offset : offset + limit][::-1], len(newest_first) > offset + limit, limit


# --- in process ------------------------------------------------------------------------------------


def make_session(count: int, hidden: set[int]):
    """A fresh workspace and session with ``count`` messages, ``hidden`` seqs hidden."""
    from django.contrib.auth import get_user_model

    from chat.models import ChatMessage, ChatSession, Workspace
    from chat.services.messages import NewMessage, Sender, store_messages

    n = next(_counter)
    user = get_user_model().objects.create(username=f"model-{n}")
    workspace = Workspace.objects.create(slug=f"model-{n}", name="model")
    session = ChatSession.objects.create(workspace=workspace, key=f"s{n}", created_by=user)
    sender = Sender.for_user(user)
    if count:
        results = store_messages([NewMessage(session.pk, sender, f"m{i}", f"content {i}") for i in range(1, count + 1)])
        assert [r.message.seq for r in results] == list(range(1, count + 1)), results
    if hidden:
        ChatMessage.objects.filter(session=session, seq__in=hidden).update(hidden=True)
    return session


limits = st.one_of(st.none(), st.integers(-2, 3), st.integers(1, 70), st.integers(190, 260))
positions = st.integers(-2, 70)
queries = st.builds(
    Query,
    limit=limits,
    offset=st.one_of(st.none(), positions),
    after_seq=st.one_of(st.none(), positions),
    include_hidden=st.booleans(),
)


@st.composite
def scenarios(draw):
    count = draw(st.integers(0, 60))
    hidden = draw(st.sets(st.integers(1, count), max_size=count)) if count else set()
    return count, hidden, draw(st.lists(queries, min_size=1, max_size=8))


@pytest.mark.django_db
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(scenario=scenarios())
def test_history_matches_the_model(scenario):
    from chat.errors import InvalidPayload
    from chat.services.messages import history

    count, hidden, checks = scenario
    session = make_session(count, hidden)
    for q in checks:
        visible = [seq for seq in range(1, count + 1) if q.include_hidden or seq not in hidden]
        expected = model(visible, q)
        kwargs = {"limit": q.limit, "after_seq": q.after_seq, "include_hidden": q.include_hidden}
        if q.offset is not None:
            kwargs["offset"] = q.offset
        if expected == "invalid":
            with pytest.raises(InvalidPayload):
                history(session.pk, **kwargs)
            continue
        page = history(session.pk, **kwargs)
        seqs, has_more, limit = expected
        assert [m.seq for m in page.messages] == seqs, (q, visible)
        assert page.has_more is has_more, (q, visible)
        assert page.limit == limit
        assert page.offset == (0 if q.offset is None else q.offset)
        assert page.after_seq == q.after_seq
        assert all(m.key == f"m{m.seq}" and m.content == f"content {m.seq}" for m in page.messages)
        assert all(m.session_id == session.pk for m in page.messages)


@pytest.mark.django_db
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    count=st.integers(0, 60),
    data=st.data(),
    limit=st.integers(1, 25),
    include_hidden=st.booleans(),
)
def test_paging_through_a_session_yields_every_visible_message_once(count, data, limit, include_hidden):
    from chat.services.messages import history

    hidden = data.draw(st.sets(st.integers(1, count), max_size=count)) if count else set()
    session = make_session(count, hidden)
    visible = [seq for seq in range(1, count + 1) if include_hidden or seq not in hidden]

    # Backwards by offset, newest page first.
    pages, offset = [], 0
    while True:
        page = history(session.pk, limit=limit, offset=offset, include_hidden=include_hidden)
        pages.append([m.seq for m in page.messages])
        offset += limit
        if not page.has_more:
            break
        assert len(pages) <= count + 1
    assert [seq for p in reversed(pages) for seq in p] == visible
    assert all(len(p) == limit for p in pages[:-1])

    # Forwards by afterSeq, as a reconnecting client does.
    start = data.draw(st.integers(0, count))
    seen, after = [], start
    while True:
        page = history(session.pk, limit=limit, after_seq=after, include_hidden=include_hidden)
        seqs = [m.seq for m in page.messages]
        seen += seqs
        if not page.has_more:
            break
        assert seqs, "hasMore with an empty page"
        after = seqs[-1]
    assert seen == [seq for seq in visible if seq > start]


# --- end to end: afterSeq recovery ------------------------------------------------------------------


@pytest.fixture(scope="module")
def recovery_server(module_server_factory, module_backend):
    server = module_server_factory(module_backend, conformance=False, **RELAXED_SECURITY)
    ws, suffix = unique("ws"), unique("u")
    users = {name: f"{name}-{suffix}" for name in ("ann", "ben", "cat")}
    tokens = issue_tokens(server, [(user, ws, "moderator") for user in users.values()])
    return server, ws, {name: tokens[user] for name, user in users.items()}


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_after_seq_recovery_after_a_disconnect(recovery_server, transports):
    server, ws, tokens = recovery_server
    s = unique("s")
    async with client_pool() as new:
        ann = await new("ann").connect(server.url, tokens["ann"], transports)
        ben = await new("ben").connect(server.url, tokens["ben"], ["websocket"])
        cat = await new("cat").connect(server.url, tokens["cat"], transports)
        for client in (ann, ben, cat):
            await client.join(ws, s)
        for i in range(5):
            await ann.send(s, f"ann {i}")
            await ben.send(s, f"ben {i}")
        await cat.wait_for("chat:message-received", lambda m: m["seq"] == 10)
        live_before = cat.events("chat:message-received")
        assert [m["seq"] for m in live_before] == list(range(1, 11))
        last_seen = live_before[-1]["seq"]

        # The others keep sending while cat is away, and while it recovers.
        sending_done = asyncio.Event()

        async def keep_sending(client: ChatClient, name: str) -> None:
            for i in range(20):
                ack = await client.send(s, f"{name} later {i}")
                assert ack["ok"] is True, ack
                await asyncio.sleep(0.01)

        senders = asyncio.gather(keep_sending(ann, "ann"), keep_sending(ben, "ben"))
        senders.add_done_callback(lambda _: sending_done.set())
        await ann.wait_for("chat:message-sent", count=10 + 5)  # some sent before cat leaves
        await cat.disconnect()
        await ann.wait_for("chat:message-sent", count=10 + 12)  # more while it is away

        back = await new("cat again").connect(server.url, tokens["cat"], transports)
        joined = await back.join(ws, s)
        at_join = joined["lastSeq"]
        assert at_join >= 10 + 12 + 5
        pages = []
        after = last_seen
        while True:
            since = back.mark()
            ack = await back.call("chat:request-history", {"sessionId": s, "afterSeq": after, "limit": 7})
            assert ack["ok"] is True, ack
            page = await back.wait_for("chat:history-response", since=since)
            assert page["afterSeq"] == after and page["limit"] == 7
            seqs = [m["seq"] for m in page["messages"]]
            assert seqs == list(range(after + 1, after + 1 + len(seqs))), seqs  # contiguous, in order
            pages.append(page)
            if not page["hasMore"]:
                break
            assert len(seqs) == 7
            after = seqs[-1]
        recovered = [m for page in pages for m in page["messages"]]
        assert recovered and recovered[-1]["seq"] >= at_join  # at least everything up to the join

        await senders
        assert sending_done.is_set()
        total = 10 + 40
        # Whatever came after the last page arrives live; the live stream is in order.
        live_after = back.events("chat:message-received")
        assert [m["seq"] for m in live_after] == sorted(m["seq"] for m in live_after)
        if recovered[-1]["seq"] < total:
            await back.wait_for("chat:message-received", lambda m: m["seq"] == total, timeout=5)
        live_after = back.events("chat:message-received")

        merged = {}
        for message in [*live_before, *recovered, *live_after]:
            if message["seq"] in merged:
                assert merged[message["seq"]] == message  # the same message whichever way it came
            merged[message["seq"]] = message
        assert sorted(merged) == list(range(1, total + 1))
        assert [(seq, merged[seq]["id"], merged[seq]["content"]) for seq in sorted(merged)] == stored_messages(
            server, ws, s
        )
        # Nothing it recovered had been seen live, and the recovery has no gap up to the live stream.
        assert not {m["seq"] for m in recovered} & {m["seq"] for m in live_before}
        if live_after:
            assert live_after[0]["seq"] <= recovered[-1]["seq"] + 1
