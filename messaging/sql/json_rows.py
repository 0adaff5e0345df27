"""Rows sent to the database as one JSON array parameter, which PostgreSQL
(`json_array_elements`) and SQLite (`json_each`) unpack themselves.

Binding each value of many rows as a parameter of its own costs Python per value twice:
Django's field preparation, and psycopg's client-side parsing and quoting of a statement
with tens of thousands of placeholders. One JSON text costs neither.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import orjson
from django.db import connection, models


def json_rows(alias: str, *, numbered: bool = False) -> str:
    """The elements of a JSON array parameter as rows called `alias`."""
    if connection.vendor == "postgresql":
        ordinality = " WITH ORDINALITY" if numbered else ""
        return f"json_array_elements(%s::json){ordinality} AS {alias}(v{', n' if numbered else ''})"
    return f"json_each(%s) AS {alias}"


def json_index(alias: str) -> str:
    """The position (from 0) of a row of `json_rows(alias, numbered=True)` in its array."""
    return f"({alias}.n - 1)" if connection.vendor == "postgresql" else f"{alias}.key"


def json_field(alias: str, index: int, cast: str) -> str:
    """Element `index` of the JSON array row `alias`, as a column value.

    PostgreSQL takes it as text and casts it (`cast`; "" for text); SQLite's json_extract
    gives integers, text and NULL as they are, and JSON values (prepared as text) as text.
    """
    if connection.vendor == "postgresql":
        text = f"({alias}.v->>{index})"
        return f"{text}::{cast}" if cast else text
    return f"json_extract({alias}.value, '$[{index}]')"


def json_value(field: Any, value: Any) -> Any:
    """`value` as the database stores it in `field`, in a form JSON carries: JSON fields as
    their text, timestamps and uuids as text (PostgreSQL casts them back)."""
    if value is None:
        return None
    if isinstance(field, models.JSONField):
        return json_param(value)
    value = field.get_db_prep_save(value, connection)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def json_param(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        # A lone surrogate in a body stored before text was checked: JSON can escape it.
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"))
