"""The per-user stream: seq assignment, appending items, acks, expiry."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging import delivery, signals, wire
from messaging.models import ItemStatus, PendingItem, Priority, StreamItem
from messaging.services.receipts import publish_receipts_on_commit
from messaging.sql.inserts import add_to_counters, insert_pending_rows, insert_stream_rows
from messaging.sql.pairs import pairs_in


def stream_reserve_seqs(*, counts: Mapping[int, int]) -> dict[int, int]:
    """Reserve the next `counts[user]` seqs of each user's stream, in one statement whatever
    their number. Returns the first reserved seq of each user.

    Precondition: the caller is inside a transaction. Each counter stays row-locked until
    it ends, so seqs are gap free and a later seq never commits before an earlier one.
    The upsert takes the rows in user id order and creates missing counters in the same
    pass, so sends to overlapping users cannot deadlock. (Locking the existing counters
    first and inserting the missing ones after deadlocked on PostgreSQL when three
    transactions met at a counter's first use.)
    """
    ids = sorted(counts)
    if not ids:
        return {}
    last_seqs = add_to_counters(rows=[(user_id, counts[user_id]) for user_id in ids])
    return {user_id: last - counts[user_id] + 1 for user_id, last in last_seqs}


def stream_assign_seqs(*, user_ids: Sequence[int]) -> dict[int, int]:
    """The next seq of each user's stream (see stream_reserve_seqs)."""
    return stream_reserve_seqs(counts=dict.fromkeys(user_ids, 1))


@dataclass(frozen=True, kw_only=True)
class NewItem:
    """One item to append: who gets it, and whether it waits in the offline store."""

    user_id: int
    pending: bool
    is_own: bool = False


@dataclass(frozen=True, kw_only=True)
class StreamEntry:
    """One thing to put in several streams: a message, a notification, a conversation event.

    `body` is the frame without `type` and `seq`: {"data": ...} for messages and
    notifications, {"event": ..., "data": ...} for conversation events. Messages are
    read back from their Message row; every other kind keeps its body in the item.
    """

    recipients: Sequence[NewItem]  # each user at most once
    kind: str
    body: dict[str, Any]
    created_at: dt.datetime
    message_id: Any = None
    conversation_id: int | None = None
    priority: str = Priority.P1


def stream_append(*, entry: StreamEntry) -> dict[int, signals.StoredItem]:
    """Store one item in each recipient's stream and publish it after commit."""
    return stream_append_many(entries=[entry])[0]


def stream_append_many(*, entries: Sequence[StreamEntry]) -> list[dict[int, signals.StoredItem]]:
    """Store every entry in its recipients' streams, in entry order, and publish after commit.

    Three statements whatever the number of entries and recipients (seqs, items, pending
    items): a broadcast to 10,000 users, or a hundred messages sent at once. Sends
    signals.items_stored inside the transaction. Returns, per entry, its items by user id.
    """
    counts = Counter(r.user_id for entry in entries for r in entry.recipients)
    # No savepoint when nested (as in messages_send): a failure here fails the whole send,
    # so a rollback point would only cost two round trips.
    with transaction.atomic(savepoint=False):
        stored = _insert_items(entries, next_seq=stream_reserve_seqs(counts=counts))
        item_frames = wire.ItemFrames()  # a broadcast's body is encoded once, not per user
        delivery.publish_items_on_commit(
            (item.user_id, item.seq, item_frames.frame(entry.kind, item.seq, entry.body))
            for entry, items in zip(entries, stored, strict=True)
            for item in items
        )
        signals.items_stored.send(sender=StreamItem, items=[item for items in stored for item in items])
    return [{item.user_id: item for item in items} for items in stored]


def _insert_items(
    entries: Sequence[StreamEntry], *, next_seq: dict[int, int]
) -> list[list[signals.StoredItem]]:
    """The stream items of each entry, and the pending items of those recipients who wait
    for theirs, inserted from `next_seq` (each user's first reserved seq) on."""
    seqs: list[list[int]] = []  # per entry, its recipients' seqs
    for entry in entries:
        seqs.append([next_seq[r.user_id] for r in entry.recipients])
        for r in entry.recipients:
            next_seq[r.user_id] += 1
    item_ids = insert_stream_rows(
        rows=[
            (r.user_id, seq, index, r.is_own)
            for index, entry in enumerate(entries)
            for r, seq in zip(entry.recipients, seqs[index], strict=True)
        ],
        entries=[
            (
                entry.kind,
                entry.message_id,
                entry.conversation_id,
                None if entry.message_id else entry.body,
                entry.priority,
                entry.created_at,
            )
            for entry in entries
        ],
    )
    stored = [
        [
            signals.StoredItem(
                user_id=r.user_id,
                seq=seq,
                item_id=item_ids[r.user_id, seq],
                kind=entry.kind,
                priority=entry.priority,
                pending=r.pending,
                conversation_id=entry.conversation_id,
            )
            for r, seq in zip(entry.recipients, entry_seqs, strict=True)
        ]
        for entry, entry_seqs in zip(entries, seqs, strict=True)
    ]
    ttl = dt.timedelta(days=settings.IMS_OFFLINE_TTL_DAYS)
    insert_pending_rows(
        rows=[
            (item.user_id, item.seq, item.item_id, entry.created_at, entry.created_at + ttl)
            for entry, items in zip(entries, stored, strict=True)
            for item in items
            if item.pending
        ]
    )
    return stored


# (user_id, seq) pairs per statement: two parameters each, well under SQLite's 32,766.
ACK_CHUNK = 5000


def items_ack(*, user_id: int, seqs: Sequence[int]) -> int:
    """Mark these items of the user's stream delivered and drop them from the offline store.

    Acking an unknown or already acked seq is a no-op, so clients may repeat acks.
    Returns how many items became delivered.
    """
    return items_ack_many(acks=[(user_id, seqs)])


def items_ack_many(*, acks: Sequence[tuple[int, Sequence[int]]]) -> int:
    """items_ack for many (user_id, seqs) at once: one transaction, four statements.

    The consumers of one process hand in their acks together (messaging.batching).
    """
    by_user: dict[int, set[int]] = defaultdict(set)
    for user_id, seqs in acks:
        by_user[user_id].update(seqs)
    if not by_user:
        return 0
    pairs = [(user_id, seq) for user_id in sorted(by_user) for seq in sorted(by_user[user_id])]
    now = timezone.now()
    with transaction.atomic():
        rows: list[tuple[int, int, Any, Any]] = []
        for start in range(0, len(pairs), ACK_CHUNK):
            chunk = pairs[start : start + ACK_CHUNK]
            PendingItem.objects.filter(pairs_in(PendingItem, ("user", "seq"), chunk)).delete()
            acked = pairs_in(StreamItem, ("user", "seq"), chunk)
            # In stream order: each receipt lists its messages as the reader got them.
            fresh = StreamItem.objects.filter(acked, status=ItemStatus.SENT, is_own=False).order_by(
                "user_id", "seq"
            )
            rows += fresh.values_list("pk", "user_id", "message_id", "message__sender_id")
        if not rows:
            return 0
        StreamItem.objects.filter(pk__in=[row[0] for row in rows]).update(
            status=ItemStatus.DELIVERED, delivered_at=now
        )
        publish_receipts_on_commit(
            [(reader, str(msg_id), sender) for _, reader, msg_id, sender in rows if msg_id],
            status=ItemStatus.DELIVERED,
            at=now,
        )
    return len(rows)


def stream_purge_expired(*, now: dt.datetime | None = None) -> tuple[int, int]:
    """Drop pending entries past IMS_OFFLINE_TTL_DAYS and stream items past retention.

    Messages themselves stay in conversation history. Returns (pending, items) deleted.
    """
    now = now or timezone.now()
    retention = dt.timedelta(days=settings.IMS_STREAM_RETENTION_DAYS)
    with transaction.atomic():
        pending, _ = PendingItem.objects.filter(expires_at__lte=now).delete()
        # delete()'s total also counts the pending entries cascaded from these items.
        _, by_model = StreamItem.objects.filter(created_at__lte=now - retention).delete()
        items = by_model.get(StreamItem._meta.label, 0)
        signals.stream_purged.send(sender=PendingItem, ran_at=now, pending=pending, items=items)
    return pending, items
