"""`(a, b) IN (...)`: match exact pairs of column values in one comparison."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Model
from django.db.models.expressions import RawSQL

from messaging.sql.json_rows import json_field, json_param, json_rows, json_value


def pairs_in(model: type[Model], names: tuple[str, str], pairs: Sequence[tuple[Any, Any]]) -> RawSQL:
    """A filter matching rows whose two fields `names` equal one of `pairs`.

    One row-value comparison that PostgreSQL and SQLite (3.15+) read by index. The
    equivalent OR of one Q per pair took over half of the server's database thread, mostly
    in Django's query building, in a py-spy profile of the acks of a 10,000-user broadcast;
    `a IN (...) AND b IN (...)` matches the cross product, which the database must filter.
    The pairs travel as one JSON parameter (messaging.sql.json_rows): as `VALUES` with two
    placeholders a pair, psycopg's parsing of the statement was the next hot spot.
    """
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    fields: list[Any] = [model._meta.get_field(name) for name in names]  # concrete fields
    first, second = (quote(field.column) for field in fields)
    # Text compares with varchar as it is; a cast to varchar(n) would cut longer values.
    casts = [_cast(field.cast_db_type(connection)) for field in fields]
    values = [[json_value(field, value) for field, value in zip(fields, pair, strict=True)] for pair in pairs]
    select = f"{json_field('p', 0, casts[0])}, {json_field('p', 1, casts[1])}"
    # Names come from the model and the values are one parameter.
    return RawSQL(  # noqa: S611
        f"({table}.{first}, {table}.{second}) IN (SELECT {select} FROM {json_rows('p')})",  # noqa: S608
        [json_param(values)],
        output_field=BooleanField(),
    )


def _cast(db_type: str) -> str:
    return "" if db_type.startswith(("varchar", "char")) else db_type
