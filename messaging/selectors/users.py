"""Reads of users: who is active, the people directory, what each local connection must hear."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from messaging.models import StreamCounter, User

DIRECTORY_LIMIT = 50


def active_user_ids(*, user_ids: Collection[int]) -> set[int]:
    return set(User.objects.filter(pk__in=user_ids, is_active=True).values_list("pk", flat=True))


def user_directory(*, query: str = "", limit: int = DIRECTORY_LIMIT) -> QuerySet[User]:
    """Active users whose username or name contains `query`, by username."""
    users = User.objects.filter(is_active=True)
    if query:
        users = users.filter(
            Q(username__icontains=query)
            | Q(display_name__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
        )
    return users.order_by("username")[:limit]


@dataclass(frozen=True, kw_only=True)
class StreamHead:
    last_seq: int
    is_active: bool


def stream_heads_beyond(*, known: Mapping[int, int]) -> dict[int, StreamHead]:
    """The heads the poll must act on, given each user's seq every local connection of it
    has had (`known`): users whose stream went past it, and users deactivated or deleted.
    One query for the whole server process (messaging.stream_poll); users with nothing new
    return no row, so an idle poll of 20,000 connections costs no Python per connection.

    The pairs travel as parameters of their own (arrays on PostgreSQL, JSON on SQLite):
    with one parameter per id, Django's handling of 3,000 ids was 8 % of a server's CPU in
    a reconnect-storm profile, and the poll runs every second.
    """
    if not known:
        return {}
    quote = connection.ops.quote_name
    users, counters = quote(User._meta.db_table), quote(StreamCounter._meta.db_table)
    counter_user = quote(StreamCounter._meta.get_field("user").column)
    pk, active = quote(User._meta.pk.column), quote(User._meta.get_field("is_active").column)
    params: list[Any]
    if connection.vendor == "postgresql":
        pairs = "unnest(%s::bigint[], %s::bigint[]) AS k(uid, known)"
        params = [list(known), list(known.values())]
    else:
        pairs = (
            "(SELECT json_extract(value, '$[0]') AS uid, json_extract(value, '$[1]') AS known "
            "FROM json_each(%s)) AS k"
        )
        params = [json.dumps(list(known.items()))]
    sql = (
        f"SELECT k.uid, COALESCE(c.last_seq, 0), u.{active} FROM {pairs} "  # noqa: S608  model names
        f"LEFT JOIN {users} u ON u.{pk} = k.uid LEFT JOIN {counters} c ON c.{counter_user} = k.uid "
        f"WHERE u.{pk} IS NULL OR NOT u.{active} OR COALESCE(c.last_seq, 0) > k.known"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # A deleted user (no row in users) is as good as deactivated for its open sockets.
        return {
            uid: StreamHead(last_seq=seq, is_active=bool(active)) for uid, seq, active in cursor.fetchall()
        }
