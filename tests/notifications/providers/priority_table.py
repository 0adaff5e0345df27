"""The priority table of docs/push-providers.md ("How each priority is shown"), read as data.

Provider tests send one push per priority to their local stand-in and compare what it
received, row by row, with this table: the page readers trust and the code cannot drift.
A row's field says where its value is in a request: "header `Urgency`" a header,
"document `silent`" a key of the (decrypted) Web Push document, "`aps.sound`" a dotted
path into the JSON body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[3] / "docs" / "push-providers.md"
HEADING = "## How each priority is shown"
CHANNELS = ("Web Push", "APNs", "FCM", "SMS")
PRIORITIES = ("P0", "P1", "P2", "P3")
ABSENT = "—"


@dataclass(frozen=True)
class Row:
    channel: str
    field: str  # as written, backticks included
    values: dict[str, str]  # by priority, backticks removed


@cache
def _rows() -> tuple[Row, ...]:
    lines = DOC.read_text().split(HEADING, 1)[1].splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, _separator, *body = table
    assert header == ["channel", "field", *PRIORITIES], header
    rows = tuple(
        Row(
            channel=channel,
            field=field,
            values=dict(zip(PRIORITIES, (v.strip("`") for v in values), strict=True)),
        )
        for channel, field, *values in body
    )
    assert {row.channel for row in rows} == set(CHANNELS), "a channel of the table is misspelt or missing"
    return rows


def documented(channel: str, priority: str) -> dict[str, str]:
    """Every row of one channel: field → the value the table gives for this priority."""
    return {row.field: row.values[priority] for row in _rows() if row.channel == channel}


def observed(fields: list[str], *, headers: dict[str, str], body: dict[str, Any]) -> dict[str, str]:
    """What a received request shows for each field, spelled as the table spells values."""
    return {field: _spelled(_value(field, headers=headers, body=body)) for field in fields}


_MISSING = object()


def _value(field: str, *, headers: dict[str, str], body: dict[str, Any]) -> Any:
    kind, _, name = field.partition(" ")
    if kind == "header":
        return headers.get(name.strip("`").lower(), _MISSING)
    if kind == "document":
        return body.get(name.strip("`"), _MISSING)
    node: Any = body
    for key in field.strip("`").split("."):
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _spelled(value: Any) -> str:
    if value is _MISSING:
        return ABSENT
    return value if isinstance(value, str) else json.dumps(value)
