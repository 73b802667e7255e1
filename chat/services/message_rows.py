"""The statements that store a batch of chat messages, in plain SQL.

They run for every message a worker stores, and the ORM spent about three
times their cost building them (profiled with ``bench/run.py --profile``).
Each builder returns a :class:`Statement` and runs nothing, so the same SQL
serves Django's connection (:func:`run`, inside the caller's transaction)
and the writer's own pipelined PostgreSQL connection
(:mod:`chat.services.pg_batches`).  On PostgreSQL the text of each statement
is the same for every batch (a batch's rows travel as one JSON document,
ids as arrays), so it is built once per process; the SQLite forms need
3.35 or later, for ``RETURNING``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Iterable, NamedTuple

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils.timezone import make_aware

from chat.models import ChatMessage, ChatSession, Membership, SessionStatus


class KeyAlreadyStored(Exception):
    """A message of the batch had been stored before: redo the batch looking up known keys first.

    Raised inside the transaction so that it rolls back: the ``seq`` numbers
    given out before the conflict would otherwise leave a gap.
    """


@dataclass(frozen=True)
class Statement:
    sql: str
    params: list[object] | dict[str, object]


class SessionRow(NamedTuple):
    """What storing needs of a locked session."""

    id: int
    workspace_id: int
    status: str
    last_seq: int
    agent_id: int | None


def _table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def _on_postgresql() -> bool:
    return connection.vendor == "postgresql"


def _in(column: str, values: list[object]) -> tuple[str, list[object]]:
    """``column`` is one of ``values``: one array parameter on PostgreSQL, a list elsewhere."""
    if _on_postgresql():
        return f"{column} = ANY(%s::bigint[])", [values]
    return f"{column} IN ({_placeholders(len(values))})", list(values)


def lock_sessions(session_ids: list[int]) -> Statement:
    """The sessions' rows, locked in id order, so that two batches cannot deadlock."""
    where, params = _in("id", sorted(session_ids))
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return Statement(
        f"SELECT id, workspace_id, status, last_seq, agent_id FROM {_table(ChatSession)}"
        f" WHERE {where} ORDER BY id{lock}",
        params,
    )


def muted_members(user_ids: Iterable[int], session_ids: list[int], now: datetime) -> Statement:
    """(user id, workspace id, muted until) of the senders muted where these sessions are: usually none."""
    users, users_params = _in("m.user_id", sorted(set(user_ids)))
    sessions, sessions_params = _in("s.id", sorted(session_ids))
    muted_until = Membership._meta.get_field("muted_until")
    return Statement(
        f"SELECT m.user_id, m.workspace_id, m.muted_until FROM {_table(Membership)} m"
        f" JOIN {_table(ChatSession)} s ON s.workspace_id = m.workspace_id"
        f" WHERE {users} AND {sessions} AND m.muted_until > %s",
        [*users_params, *sessions_params, muted_until.get_db_prep_value(now, connection)],
    )


def read_muted(rows: list[tuple]) -> list[tuple[int, int, datetime]]:
    """:func:`muted_members`' rows with aware datetimes (SQLite's raw rows hold UTC text)."""
    field = Membership._meta.get_field("muted_until")
    return [
        (user, workspace, until if isinstance(until, datetime) else make_aware(field.to_python(until), dt_timezone.utc))
        for user, workspace, until in rows
    ]


#: The columns an INSERT writes: every concrete field but the primary key.
_FIELDS = [field for field in ChatMessage._meta.concrete_fields if not field.primary_key]
#: The attribute names a new row is built from, in the model's positional order.
_ATTNAMES = [field.attname for field in ChatMessage._meta.concrete_fields]


def new_row(now: datetime, **values: object) -> ChatMessage:
    """A message row to insert, created ``now``; unnamed fields take their defaults.

    Built positionally, as Django builds rows it loads: the keyword form
    cost as much as the INSERT itself under load.
    """
    values["created_at"] = now
    return ChatMessage(
        *(
            values[attname] if attname in values else field.get_default()
            for attname, field in zip(_ATTNAMES, ChatMessage._meta.concrete_fields)
        )
    )


def insert_messages(rows: list[ChatMessage]) -> Statement:
    """Insert messages that should be new, returning ``(id, session_id, key)`` of each row inserted.

    A key that was taken is skipped: :func:`set_ids` compares the counts.
    On PostgreSQL the rows travel as one JSON document, which the server
    unpacks (``jsonb_array_elements``): encoding JSON is one C call here,
    where binding each value of each column was the costliest part of storing.
    As ``jsonb`` the document is parsed once; as ``json`` each value read
    (``r->>n``) parsed its row again, a third of the statement's time.
    """
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql":
        document = json.dumps([[_json_value(getattr(row, field.attname)) for field in _FIELDS] for row in rows])
        return Statement(_insert_from_json_sql(db.vendor), [document])
    columns = ", ".join(db.ops.quote_name(field.column) for field in _FIELDS)
    row_marks = f"({_placeholders(len(_FIELDS))})"
    return Statement(
        f"INSERT INTO {_table(ChatMessage)} ({columns}) VALUES {', '.join([row_marks] * len(rows))}"
        " ON CONFLICT DO NOTHING RETURNING id, session_id, key",
        [field.get_db_prep_save(getattr(row, field.attname), db) for row in rows for field in _FIELDS],
    )


def store_numbered(rows: list[ChatMessage], now: datetime) -> Statement:
    """PostgreSQL: lock, number, check and insert a batch, and advance its sessions, in one statement.

    The whole of :func:`chat.services.messages.number_messages` in SQL, so
    that the writer's connection stores a batch in one round trip instead of
    two (under load a round trip waits for a whole turn of the busy event
    loop).  ``rows`` come unnumbered; the result has one row per input row,
    in order: ``(position, id, seq, session found, status, agent id, muted
    until)``, with an id when the row was stored.  A key stored before makes
    the statement fail (and with it the transaction).
    """
    db = connections[DEFAULT_DB_ALIAS]
    document = json.dumps(
        [[position] + [_json_value(getattr(row, field.attname)) for field in _NUMBERED] for position, row in enumerate(rows)]
    )
    return Statement(_store_numbered_sql(db.vendor), {"rows": document, "now": now, "open": SessionStatus.OPEN.value})


#: The columns a batch carries into :func:`store_numbered`: the database fills in the others.
_NUMBERED = [field for field in _FIELDS if field.attname not in ("seq", "created_at")]


@functools.cache
def _store_numbered_sql(vendor: str) -> str:
    db = connections[DEFAULT_DB_ALIAS]
    quote = db.ops.quote_name
    sessions, memberships = _table(ChatSession), _table(Membership)
    batch_columns = ", ".join(
        f"{value} AS {quote(field.column)}" for value, field in zip(_from_json(_NUMBERED, first=1), _NUMBERED)
    )
    columns = ", ".join(quote(field.column) for field in _FIELDS)
    values = ", ".join(
        "a.seq" if field.attname == "seq" else "%(now)s" if field.attname == "created_at" else f"a.{quote(field.column)}"
        for field in _FIELDS
    )
    return f"""
WITH batch AS (
    SELECT (r->>0)::int AS position, {batch_columns} FROM jsonb_array_elements(%(rows)s::jsonb) AS r
), locked AS (
    SELECT id, workspace_id, status, last_seq, agent_id FROM {sessions}
    WHERE id IN (SELECT session_id FROM batch) ORDER BY id FOR UPDATE
), muted AS (
    SELECT user_id, workspace_id, muted_until FROM {memberships}
    WHERE workspace_id IN (SELECT workspace_id FROM locked) AND user_id IN (SELECT user_id FROM batch)
      AND muted_until > %(now)s
), accepted AS (
    SELECT b.*, l.last_seq + row_number() OVER (PARTITION BY b.session_id ORDER BY b.position) AS seq
    FROM batch b JOIN locked l ON l.id = b.session_id
    WHERE l.status = %(open)s
      AND NOT EXISTS (SELECT FROM muted m WHERE m.user_id = b.user_id AND m.workspace_id = l.workspace_id)
), inserted AS (
    INSERT INTO {_table(ChatMessage)} ({columns}) SELECT {values} FROM accepted a RETURNING id, session_id, key
), advanced AS (
    UPDATE {sessions} s SET last_seq = a.last_seq, last_activity_at = %(now)s
    FROM (SELECT session_id, max(seq) AS last_seq FROM accepted GROUP BY session_id) a WHERE s.id = a.session_id
)
SELECT b.position, i.id, a.seq, l.id IS NOT NULL, l.status, l.agent_id, m.muted_until
FROM batch b
LEFT JOIN locked l ON l.id = b.session_id
LEFT JOIN accepted a ON a.position = b.position
LEFT JOIN inserted i ON i.session_id = b.session_id AND i.key = b.key
LEFT JOIN muted m ON m.user_id = b.user_id AND m.workspace_id = l.workspace_id
ORDER BY b.position"""


def _json_value(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def _from_json(fields: list, first: int) -> list[str]:
    """The values of ``fields`` in a JSON array row ``r``, from element ``first`` on, as their columns' types."""
    db = connections[DEFAULT_DB_ALIAS]
    return [
        f"(r->{n})" if field.get_internal_type() == "JSONField" else f"(r->>{n})::{field.db_type(db)}"
        for n, field in enumerate(fields, start=first)
    ]


@functools.cache
def _insert_from_json_sql(vendor: str) -> str:
    columns = ", ".join(connections[DEFAULT_DB_ALIAS].ops.quote_name(field.column) for field in _FIELDS)
    return (
        f"INSERT INTO {_table(ChatMessage)} ({columns}) SELECT {', '.join(_from_json(_FIELDS, first=0))}"
        " FROM jsonb_array_elements(%s::jsonb) AS r ON CONFLICT DO NOTHING RETURNING id, session_id, key"
    )


def set_ids(rows: list[ChatMessage], inserted: list[tuple]) -> None:
    """Give each row its ``pk`` from :func:`insert_messages`' result; raise if any was not inserted."""
    ids = {(session_id, key): pk for pk, session_id, key in inserted}
    if len(ids) != len(rows):
        raise KeyAlreadyStored()
    for row in rows:
        row.id = ids[(row.session_id, row.key)]
        row._state.adding = False
        row._state.db = DEFAULT_DB_ALIAS


def advance_sessions(last_seqs: dict[int, int], now: datetime) -> Statement:
    """Set each session's ``last_seq`` and activity time, in one statement for the whole batch."""
    activity = ChatSession._meta.get_field("last_activity_at").get_db_prep_value(now, connection)
    if _on_postgresql():
        return Statement(
            f"UPDATE {_table(ChatSession)} AS s SET last_seq = v.seq, last_activity_at = %s"
            " FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, seq) WHERE s.id = v.id",
            [activity, list(last_seqs), list(last_seqs.values())],
        )
    cases = " ".join(["WHEN %s THEN %s"] * len(last_seqs))
    return Statement(
        f"UPDATE {_table(ChatSession)} SET last_seq = CASE id {cases} END, last_activity_at = %s"
        f" WHERE id IN ({_placeholders(len(last_seqs))})",
        [*(value for pair in last_seqs.items() for value in pair), activity, *last_seqs],
    )


def run(statement: Statement) -> list[tuple]:
    """Run a statement on Django's connection; its rows, if it returns any."""
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
        return cursor.fetchall() if cursor.description else []
