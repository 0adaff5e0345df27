"""`(a, b) IN (VALUES ...)`: match exact pairs of column values in one comparison."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Model
from django.db.models.expressions import RawSQL


def pairs_in(model: type[Model], names: tuple[str, str], pairs: Sequence[tuple[Any, Any]]) -> RawSQL:
    """A filter matching rows whose two fields `names` equal one of `pairs`.

    One row-value comparison that PostgreSQL and SQLite (3.15+) read by index. The
    equivalent OR of one Q per pair took over half of the server's database thread, mostly
    in Django's query building, in a py-spy profile of the acks of a 10,000-user broadcast;
    `a IN (...) AND b IN (...)` matches the cross product, which the database must filter.
    """
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    fields: list[Any] = [model._meta.get_field(name) for name in names]  # concrete fields
    first, second = (quote(field.column) for field in fields)
    rows = ", ".join(["(%s, %s)"] * len(pairs))
    params = [
        field.get_db_prep_value(value, connection)
        for pair in pairs
        for field, value in zip(fields, pair, strict=True)
    ]
    # Names come from the model and every value is a parameter.
    return RawSQL(  # noqa: S611
        f"({table}.{first}, {table}.{second}) IN (VALUES {rows})", params, output_field=BooleanField()
    )
