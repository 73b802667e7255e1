"""The statements that store a batch of chat messages, in plain SQL.

They run for every message a worker stores, and the ORM spent about three
times their cost building them (profiled with ``bench/run.py --profile``).
The SQL is portable between PostgreSQL and SQLite (3.35 or later, for
``RETURNING``), and runs inside the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from django.db import connection

from chat.models import ChatMessage, ChatSession, Membership


class KeyAlreadyStored(Exception):
    """A message of the batch had been stored before: redo the batch looking up known keys first.

    Raised inside the transaction so that it rolls back: the ``seq`` numbers
    given out before the conflict would otherwise leave a gap.
    """


def _table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def muted_pairs(user_ids: Iterable[int], workspace_ids: Iterable[int], now: datetime) -> set[tuple[int, int]]:
    """(user id, workspace id) of the members muted at ``now``: usually an empty answer."""
    users, workspaces = list(user_ids), list(workspace_ids)
    if not users or not workspaces:
        return set()
    muted_until = Membership._meta.get_field("muted_until")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT user_id, workspace_id FROM {_table(Membership)}"
            f" WHERE user_id IN ({_placeholders(len(users))}) AND workspace_id IN ({_placeholders(len(workspaces))})"
            " AND muted_until > %s",
            [*users, *workspaces, muted_until.get_db_prep_value(now, connection)],
        )
        return {(user, workspace) for user, workspace in cursor.fetchall()}


#: The columns an INSERT writes: every concrete field but the primary key.
_FIELDS = [field for field in ChatMessage._meta.concrete_fields if not field.primary_key]
#: Those whose Python value needs the field's conversion (the rest go as they are).
_CONVERTED = frozenset(field for field in _FIELDS if field.get_internal_type() in ("JSONField", "DateTimeField"))


def insert_new(rows: list[ChatMessage]) -> None:
    """Insert messages that should be new, setting their ``pk`` and ``created_at``.

    Raises :class:`KeyAlreadyStored` when a ``(session, key)`` was taken,
    instead of looking every key up beforehand: resends are rare, and most
    are answered from the writer's memory before they get here.
    """
    if not rows:
        return
    columns = ", ".join(connection.ops.quote_name(field.column) for field in _FIELDS)
    values = [
        [
            field.get_db_prep_save(field.pre_save(row, True), connection)
            if field in _CONVERTED
            else getattr(row, field.attname)
            for field in _FIELDS
        ]
        for row in rows
    ]
    if connection.vendor == "postgresql":
        # One array per column: the statement's text is the same for every
        # batch, so psycopg parses it once instead of once per batch size.
        arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in _FIELDS)
        sql = f"INSERT INTO {_table(ChatMessage)} ({columns}) SELECT * FROM unnest({arrays})"
        params: list[object] = [list(column) for column in zip(*values)]
    else:
        row_marks = f"({_placeholders(len(_FIELDS))})"
        sql = f"INSERT INTO {_table(ChatMessage)} ({columns}) VALUES {', '.join([row_marks] * len(rows))}"
        params = [value for row_values in values for value in row_values]
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} ON CONFLICT DO NOTHING RETURNING id, session_id, key", params)
        inserted = {(session_id, key): pk for pk, session_id, key in cursor.fetchall()}
    if len(inserted) != len(rows):
        raise KeyAlreadyStored()
    for row in rows:
        row.pk = inserted[(row.session_id, row.key)]


def advance_sessions(last_seqs: dict[int, int], now: datetime) -> None:
    """Set each session's ``last_seq`` and activity time, in one statement for the whole batch."""
    if not last_seqs:
        return
    cases = " ".join(["WHEN %s THEN %s"] * len(last_seqs))
    activity = ChatSession._meta.get_field("last_activity_at")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(ChatSession)} SET last_seq = CASE id {cases} END, last_activity_at = %s"
            f" WHERE id IN ({_placeholders(len(last_seqs))})",
            [
                *(value for pair in last_seqs.items() for value in pair),
                activity.get_db_prep_value(now, connection),
                *last_seqs,
            ],
        )
