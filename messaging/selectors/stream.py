"""Reads of the per-user stream. Replay reads pages by index, one query a page."""

from __future__ import annotations

from django.db.models import Min, QuerySet
from django.utils import timezone

from messaging import frames
from messaging.models import StreamCounter, StreamItem
from messaging.session import Page

STREAM_ROW_FIELDS = ("seq", "kind", "payload", *(f"message__{name}" for name in frames.MESSAGE_FIELDS))


def stream_last_seq(*, user_id: int) -> int:
    return StreamCounter.objects.filter(user_id=user_id).values_list("last_seq", flat=True).first() or 0


def stream_last_seqs(*, user_ids: list[int]) -> dict[int, int]:
    """stream_last_seq of many users in one query."""
    found = dict(StreamCounter.objects.filter(user_id__in=user_ids).values_list("user_id", "last_seq"))
    return {user_id: found.get(user_id, 0) for user_id in user_ids}


def _page(queryset: QuerySet[StreamItem], limit: int) -> Page:
    rows = list(queryset.order_by("seq").values_list(*STREAM_ROW_FIELDS)[: limit + 1])
    return Page(items=[frames.stream_row_frame(row) for row in rows[:limit]], more=len(rows) > limit)


def pending_items_page(*, user_id: int, after_seq: int, upto_seq: int, limit: int) -> Page:
    """Unexpired pending items with after_seq < seq <= upto_seq, oldest first."""
    items = StreamItem.objects.filter(
        user_id=user_id, seq__gt=after_seq, seq__lte=upto_seq, pending__expires_at__gt=timezone.now()
    )
    return _page(items, limit)


def stream_items_page(*, user_id: int, after_seq: int, upto_seq: int, limit: int) -> Page:
    """Every kept item with after_seq < seq <= upto_seq, pending or not."""
    items = StreamItem.objects.filter(user_id=user_id, seq__gt=after_seq, seq__lte=upto_seq)
    return _page(items, limit)


def stream_is_truncated(*, user_id: int, after_seq: int, upto_seq: int) -> bool:
    """True when some item in (after_seq, upto_seq] was purged: the client reloads history."""
    if upto_seq <= after_seq:
        return False
    first_kept = StreamItem.objects.filter(user_id=user_id, seq__gt=after_seq).aggregate(first=Min("seq"))[
        "first"
    ]
    return first_kept is None or first_kept > after_seq + 1


def item_frames(*, item_ids: list[int]) -> dict[int, frames.Frame]:
    """The wire frame of each of these stream items, by item id, as the replay sends them."""
    rows = StreamItem.objects.filter(pk__in=item_ids).values_list("pk", *STREAM_ROW_FIELDS)
    return {row[0]: frames.stream_row_frame(row[1:]) for row in rows}
