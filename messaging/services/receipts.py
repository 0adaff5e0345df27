"""Receipts: `delivered` and `read` frames to senders, and reads shared by a user's devices."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from messaging import delivery, frames
from messaging.errors import BadRequest
from messaging.models import ItemStatus, PendingItem, StreamItem


def receipt_frames(
    rows: Sequence[tuple[int, str, int]], *, status: str, at: dt.datetime
) -> list[tuple[int, frames.Frame]]:
    """rows: (reader_id, msg_id, sender_id). One receipt frame per reader and sender."""
    by_pair: dict[tuple[int, int], list[str]] = defaultdict(list)
    for reader_id, msg_id, sender_id in rows:
        by_pair[reader_id, sender_id].append(msg_id)
    return [
        (sender_id, frames.receipt(msg_ids=msg_ids, status=status, user_id=reader_id, at=at))
        for (reader_id, sender_id), msg_ids in by_pair.items()
    ]


def publish_receipts_on_commit(rows: Sequence[tuple[int, str, int]], *, status: str, at: dt.datetime) -> None:
    delivery.publish_frames_on_commit(receipt_frames(rows, status=status, at=at))


# A `msg_id` as messages carry it: a UUID in its hyphenated form, either case. (uuid.UUID
# also reads braces, "urn:uuid:" and bare hex, none of which a message ever carries.)
MSG_ID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_MSG_ID = re.compile(MSG_ID_PATTERN.replace("$", r"\Z"))


def clean_msg_ids(msg_ids: Sequence[Any]) -> list[uuid.UUID]:
    if not all(isinstance(msg_id, str) and _MSG_ID.match(msg_id) for msg_id in msg_ids):
        raise BadRequest("msg_ids must be message ids as sent in `msg_id`", field="msg_ids")
    return [uuid.UUID(msg_id) for msg_id in msg_ids]


def items_mark_read(
    *, user_id: int, msg_ids: Sequence[str] = (), notification_ids: Sequence[Any] = ()
) -> int:
    """Mark messages and notifications read by this user; reading implies delivery, so
    they stop pending. Senders of the messages get a `read` receipt, and so do the user's
    own connections (every device clears the same unread counts).

    Unknown ids and items already read are skipped. Returns how many became read.
    """
    message_uuids = clean_msg_ids(msg_ids)
    now = timezone.now()
    with transaction.atomic():
        unread = StreamItem.objects.filter(user_id=user_id, is_own=False).exclude(status=ItemStatus.READ)
        messages = list(
            unread.filter(message_id__in=message_uuids).values_list(
                "pk", "seq", "message_id", "message__sender_id"
            )
        )
        notifications = (
            list(
                unread.filter(
                    kind=StreamItem.Kind.NOTIFICATION, payload__data__id__in=list(notification_ids)
                ).values_list("pk", "seq", "payload__data__id")
            )
            if notification_ids
            else []
        )
        if not messages and not notifications:
            return 0
        StreamItem.objects.filter(pk__in=[row[0] for row in messages + notifications]).update(
            status=ItemStatus.READ, read_at=now, delivered_at=Coalesce("delivered_at", now)
        )
        PendingItem.objects.filter(
            user_id=user_id, seq__in=[row[1] for row in messages + notifications]
        ).delete()
        read_msg_ids = [str(msg_id) for _, _, msg_id, _ in messages]
        to_senders = receipt_frames(
            [(user_id, msg_id, row[3]) for msg_id, row in zip(read_msg_ids, messages, strict=True)],
            status=ItemStatus.READ,
            at=now,
        )
        to_own = _own_read_frames(
            user_id=user_id, msg_ids=read_msg_ids, notification_ids=[row[2] for row in notifications], at=now
        )
        delivery.publish_frames_on_commit(to_senders + to_own)
    return len(messages) + len(notifications)


def _own_read_frames(
    *, user_id: int, msg_ids: list[str], notification_ids: list[Any], at: dt.datetime
) -> list[tuple[int, frames.Frame]]:
    """For the reader's other connections, so every device clears the same unread counts."""
    own = []
    if msg_ids:
        own.append((user_id, frames.receipt(msg_ids=msg_ids, status=ItemStatus.READ, user_id=user_id, at=at)))
    if notification_ids:
        own.append(
            (user_id, frames.notification_receipt(notification_ids=notification_ids, user_id=user_id, at=at))
        )
    return own


def messages_mark_read(*, user_id: int, msg_ids: Sequence[str]) -> int:
    """items_mark_read for messages only (the REST `POST /api/messages/read/`)."""
    return items_mark_read(user_id=user_id, msg_ids=msg_ids)
