"""Reads of the per-user stream. Replay reads pages by index, one query a page."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Min, QuerySet
from django.utils import timezone

from messaging import frames
from messaging.models import StreamCounter, StreamItem
from messaging.session import Page
from messaging.sql.pairs import pairs_in

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


@dataclass(frozen=True, kw_only=True)
class PageRequest:
    """One page a connection wants: pending_items_page or stream_items_page."""

    user_id: int
    pending_only: bool
    after_seq: int
    upto_seq: int
    limit: int


def stream_pages(*, requests: Sequence[PageRequest]) -> list[Page]:
    """The page of each request, read in one trip to the database thread: after a
    broadcast stored by another process, every connection of the process catches up at
    the same poll (messaging.batching).

    Requests for at most `limit` seqs (a catch-up of a few items) are read together, by
    their exact (user, seq) pairs, a few thousand pairs a query; longer ones (replays)
    one query a page.
    """
    pages: dict[int, Page] = {}
    short: dict[bool, list[tuple[int, PageRequest]]] = {False: [], True: []}
    for n, r in enumerate(requests):
        if r.upto_seq - r.after_seq <= r.limit:
            short[r.pending_only].append((n, r))
        else:
            read = pending_items_page if r.pending_only else stream_items_page
            pages[n] = read(user_id=r.user_id, after_seq=r.after_seq, upto_seq=r.upto_seq, limit=r.limit)
    for pending_only, numbered in short.items():
        pages.update(_short_pages(numbered, pending_only=pending_only))
    return [pages[n] for n in range(len(requests))]


# (user, seq) pairs a query: two parameters each, well under SQLite's 32,766.
PAIRS_PER_QUERY = 5000


def _short_pages(numbered: list[tuple[int, PageRequest]], *, pending_only: bool) -> dict[int, Page]:
    # Two connections of one user may want the same item.
    wanted: dict[tuple[int, int], list[int]] = defaultdict(list)
    for n, r in numbered:
        for seq in range(r.after_seq + 1, r.upto_seq + 1):
            wanted[r.user_id, seq].append(n)
    found: dict[int, list[frames.Frame]] = {n: [] for n, _ in numbered}
    pairs = sorted(wanted)
    for start in range(0, len(pairs), PAIRS_PER_QUERY):
        chunk = pairs[start : start + PAIRS_PER_QUERY]
        items = StreamItem.objects.filter(pairs_in(StreamItem, ("user", "seq"), chunk))
        if pending_only:
            items = items.filter(pending__expires_at__gt=timezone.now())
        for user_id, *row in items.order_by("user_id", "seq").values_list("user_id", *STREAM_ROW_FIELDS):
            for n in wanted[user_id, row[0]]:
                found[n].append(frames.stream_row_frame(tuple(row)))  # a frame of its own each
    return {n: Page(items=items, more=False) for n, items in found.items()}


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
