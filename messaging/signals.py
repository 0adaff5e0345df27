"""Signals other apps listen to, so messaging never imports them (DESIGN.md, "Layout").

`items_stored` is sent inside the transaction that stored the items, after their rows are
written: a receiver that writes (say, a push outbox entry) commits or rolls back with them,
and one that wants to act after commit uses transaction.on_commit. `stream_purged` says
how many pending items expired in one run of the purge.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.dispatch import Signal


@dataclass(frozen=True, kw_only=True)
class StoredItem:
    """One item just appended to a user's stream."""

    user_id: int
    seq: int
    item_id: int
    kind: str
    priority: str
    pending: bool  # False for the sender's own copy of a message
    conversation_id: int | None


# sender: the StreamItem model; kwargs: items (list[StoredItem]).
items_stored = Signal()

# Sent inside the purge's transaction. sender: the PendingItem model; kwargs: ran_at,
# pending (expired pending entries deleted), items (old stream items deleted).
stream_purged = Signal()
