"""Reads of users: who is active, the people directory, what each local connection must hear."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

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


def stream_heads(*, user_ids: Collection[int]) -> dict[int, StreamHead]:
    """Each user's last seq and whether it may still be connected: one query for the
    whole server process, whatever the number of users (messaging.stream_poll)."""
    last_seq = StreamCounter.objects.filter(user_id=OuterRef("pk")).values("last_seq")[:1]
    rows = (
        User.objects.filter(pk__in=user_ids)
        .annotate(last_seq=Coalesce(Subquery(last_seq), 0))
        .values_list("pk", "last_seq", "is_active")
    )
    found = {pk: StreamHead(last_seq=seq, is_active=active) for pk, seq, active in rows}
    # A deleted user is gone: as good as deactivated for its open sockets.
    return {uid: found.get(uid, StreamHead(last_seq=0, is_active=False)) for uid in user_ids}
