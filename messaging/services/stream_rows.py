"""Set-based inserts of stream and pending rows: one JSON parameter per statement.

`bulk_create` builds a model instance per row and binds every value of every row through
Django's field preparation and psycopg's client-side quoting. Storing a broadcast to
10,000 users took 1.2 s that way, 85 % of it in that per-row Python (a cProfile: 624,000
`prepare_value` calls, psycopg quoting 20,000 rows' arrays with regular expressions).
Here the rows travel as one JSON array that the database unpacks itself
(`json_array_elements` on PostgreSQL, `json_each` on SQLite), each entry's shared values
(kind, body, time) once per entry, not once per row.

Table and column names come from the models; every value is a parameter.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import orjson
from django.db import connection

from messaging.models import ItemStatus, PendingItem, StreamCounter, StreamItem

# Fields of a stream row: per row, and per entry (shared by the entry's rows).
ROW_FIELDS = ("user", "seq", "entry", "is_own")
ENTRY_FIELDS = ("kind", "message", "conversation_id", "payload", "priority", "created_at")
PENDING_FIELDS = ("user", "seq", "item", "created_at", "expires_at")


def add_to_counters(*, rows: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Add `count` to each (user_id, count)'s StreamCounter, creating missing ones, in the
    order given; returns (user_id, last_seq) of each.

    One upsert (INSERT ... ON CONFLICT DO UPDATE, PostgreSQL and SQLite 3.35+): the rows
    are locked in the order given and missing counters made in the same pass.
    """
    if not rows:
        return []
    table = _table(StreamCounter)
    user, last_seq = _column(StreamCounter, "user"), _column(StreamCounter, "last_seq")
    if connection.vendor == "postgresql":
        select = "(v->>0)::bigint, (v->>1)::bigint FROM json_array_elements(%s::json) AS r(v)"
    else:
        # "WHERE true": SQLite's grammar needs it before ON CONFLICT after a SELECT.
        select = "json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(%s) WHERE true"
    sql = (
        f"INSERT INTO {table} ({user}, {last_seq}) SELECT {select} "
        f"ON CONFLICT ({user}) DO UPDATE SET {last_seq} = {table}.{last_seq} + EXCLUDED.{last_seq} "
        f"RETURNING {user}, {last_seq}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_json(rows)])
        return cursor.fetchall()


def insert_stream_rows(
    *, rows: Sequence[tuple[int, int, int, bool]], entries: Sequence[tuple[Any, ...]]
) -> dict[tuple[int, int], int]:
    """Insert StreamItems: `rows` are (user_id, seq, entry index, is_own), `entries`
    (kind, message_id, conversation_id, payload, priority, created_at). Returns the new
    rows' ids by (user_id, seq)."""
    if not rows:
        return {}
    message = StreamItem._meta.get_field("message")
    created_at = StreamItem._meta.get_field("created_at")
    prepared = [
        (
            kind,
            None if message_id is None else _scalar(message.get_db_prep_save(message_id, connection)),
            conversation_id,
            payload,
            priority,
            _scalar(created_at.get_db_prep_save(at, connection)),
        )
        for kind, message_id, conversation_id, payload, priority, at in entries
    ]
    columns = [_column(StreamItem, name) for name in ("user", "seq", "is_own", *ENTRY_FIELDS, "status")]
    if connection.vendor == "postgresql":
        values = (
            "(r.v->>0)::bigint, (r.v->>1)::bigint, (r.v->>3)::boolean, e.v->>0, (e.v->>1)::uuid, "
            "(e.v->>2)::bigint, (e.v->>3)::jsonb, e.v->>4, (e.v->>5)::timestamptz, %s "
            "FROM json_array_elements(%s::json) AS r(v) "
            "JOIN json_array_elements(%s::json) WITH ORDINALITY AS e(v, n) ON e.n = (r.v->>2)::int + 1"
        )
    else:
        values = (
            "json_extract(r.value, '$[0]'), json_extract(r.value, '$[1]'), json_extract(r.value, '$[3]'), "
            "json_extract(e.value, '$[0]'), json_extract(e.value, '$[1]'), json_extract(e.value, '$[2]'), "
            "json_extract(e.value, '$[3]'), json_extract(e.value, '$[4]'), json_extract(e.value, '$[5]'), %s "
            "FROM json_each(%s) AS r JOIN json_each(%s) AS e ON e.key = json_extract(r.value, '$[2]')"
        )
    sql = (
        f"INSERT INTO {_table(StreamItem)} ({', '.join(columns)}) SELECT {values} "
        f"RETURNING {_column(StreamItem, 'id')}, {_column(StreamItem, 'user')}, {_column(StreamItem, 'seq')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [ItemStatus.SENT.value, _json(rows), _json(prepared)])
        return {(user_id, seq): item_id for item_id, user_id, seq in cursor.fetchall()}


def insert_pending_rows(*, rows: Sequence[tuple[int, int, int, dt.datetime, dt.datetime]]) -> None:
    """Insert PendingItems: (user_id, seq, item_id, created_at, expires_at) each."""
    if not rows:
        return
    times = PendingItem._meta.get_field("created_at")
    # A batch holds few distinct times (one per entry): prepare each once.
    prepared_times: dict[dt.datetime, Any] = {}
    for _, _, _, created_at, expires_at in rows:
        for at in (created_at, expires_at):
            if at not in prepared_times:
                prepared_times[at] = _scalar(times.get_db_prep_save(at, connection))
    values = [(u, s, i, prepared_times[c], prepared_times[e]) for u, s, i, c, e in rows]
    columns = ", ".join(_column(PendingItem, name) for name in PENDING_FIELDS)
    if connection.vendor == "postgresql":
        select = (
            "(v->>0)::bigint, (v->>1)::bigint, (v->>2)::bigint, (v->>3)::timestamptz, (v->>4)::timestamptz "
            "FROM json_array_elements(%s::json) AS r(v)"
        )
    else:
        select = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(5)) + " FROM json_each(%s)"
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {_table(PendingItem)} ({columns}) SELECT {select}", [_json(values)])


Table = type[StreamItem] | type[PendingItem] | type[StreamCounter]


def _table(model: Table) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _column(model: Table, name: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(name).column)  # type: ignore[union-attr,arg-type]  # concrete fields


def _scalar(value: Any) -> Any:
    """A prepared database value as JSON can carry it (PostgreSQL gets timestamps and
    uuids as text, which the statement casts back)."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        # A lone surrogate in a body stored before text was checked: JSON can escape it.
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"))
