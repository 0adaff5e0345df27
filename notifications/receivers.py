"""What notifications does when messaging stores or purges stream items (messaging.signals)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from messaging.api import Priority
from messaging.signals import StoredItem, items_stored, stream_purged
from notifications.models import ExpiryRun
from notifications.services.dispatch import PUSHED_KINDS
from notifications.services.queue import enqueue_dispatch_on_commit


def dispatch_p0_on_commit(sender: Any, items: list[StoredItem], **kwargs: Any) -> None:
    """P0 is pushed at once, not at the dispatcher's next beat."""
    if any(item.pending and item.priority == Priority.P0 and item.kind in PUSHED_KINDS for item in items):
        enqueue_dispatch_on_commit()


def record_expiry(sender: Any, ran_at: dt.datetime, pending: int, items: int, **kwargs: Any) -> None:
    ExpiryRun.objects.create(ran_at=ran_at, pending_expired=pending, items_deleted=items)


def connect() -> None:
    items_stored.connect(dispatch_p0_on_commit, dispatch_uid="notifications-dispatch-p0")
    stream_purged.connect(record_expiry, dispatch_uid="notifications-record-expiry")
