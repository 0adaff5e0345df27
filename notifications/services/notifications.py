"""Sending notifications into users' streams, and marking them read."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from typing import Any, Literal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging.api import (
    MAX_ID,
    NewItem,
    Priority,
    StreamEntry,
    append_to_streams,
    iso,
    mark_read,
    require_clean_strings,
    require_ids,
)
from messaging.api import require_text as require_clean_text
from messaging.errors import BadRequest, NotFound
from messaging.models import User
from notifications.models import Category, Notification

ALL: Literal["all"] = "all"
MAX_TITLE_LENGTH = 200
MAX_SENDER_SERVICE_LENGTH = 100
# `extra` travels in every frame and push of the notification; Web Push carries 4 KiB.
MAX_EXTRA_BYTES = 4096
# Metadata for the client, not a document. orjson, which encodes every event for the
# channel layer, refuses more than 254 levels: 300 levels once broke the Redis publish of
# a whole batch of events, and their items then came only through the poll.
MAX_EXTRA_DEPTH = 32


def notification_data(notification: Notification) -> dict[str, Any]:
    """The `data` of a `notification` frame (PROTOCOL.md)."""
    return {
        "id": notification.pk,
        "title": notification.title,
        "content": notification.content,
        "extra": notification.extra,
        "priority": notification.priority,
        "category": notification.category,
        "created_at": iso(notification.created_at),
    }


def _require_text(value: Any, *, field: str, max_length: int, allow_blank: bool = False) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"`{field}` must be a string", field=field)
    if not allow_blank and not value.strip():
        raise BadRequest(f"`{field}` must not be blank", field=field)
    if len(value) > max_length:
        raise BadRequest(f"`{field}` is longer than {max_length} characters", field=field)
    return require_clean_text(value, field=field)


def _clean_extra(extra: Any) -> dict[str, Any]:
    if extra is None:
        return {}
    if not isinstance(extra, dict):
        raise BadRequest("`extra` must be an object", field="extra")
    _require_plain_json(extra)
    require_clean_strings(extra, field="extra")
    if len(json.dumps(extra, ensure_ascii=False).encode()) > MAX_EXTRA_BYTES:
        raise BadRequest(f"`extra` is larger than {MAX_EXTRA_BYTES} bytes as JSON", field="extra")
    return extra


def _require_plain_json(extra: dict[str, Any]) -> None:
    """Objects, lists, strings, booleans, null and finite numbers within ±MAX_ID, at most
    MAX_EXTRA_DEPTH deep: what every encoder on the way (orjson for the channel layer,
    PostgreSQL's jsonb, a JavaScript client) reads. Walked without recursion."""
    stack: list[tuple[Any, int]] = [(extra, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_EXTRA_DEPTH:
                raise BadRequest(f"`extra` nests deeper than {MAX_EXTRA_DEPTH} levels", field="extra")
            if isinstance(value, dict) and not all(isinstance(key, str) for key in value):
                raise BadRequest("`extra` keys must be strings", field="extra")
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if not (math.isfinite(value) and -MAX_ID <= value <= MAX_ID):
                raise BadRequest(f"numbers in `extra` must be finite, within ±{MAX_ID}", field="extra")
        elif not (value is None or isinstance(value, str | bool)):
            raise BadRequest("`extra` must hold only JSON values", field="extra")


def _recipient_ids(recipients: Sequence[int] | Literal["all"]) -> list[int]:
    """Active users to notify, each once; an unknown or inactive id refuses the whole send."""
    active = User.objects.filter(is_active=True)
    if recipients == ALL:
        return list(active.order_by("pk").values_list("pk", flat=True))
    if isinstance(recipients, str) or not recipients:
        raise BadRequest("give `user_ids` (a non-empty list) or `all`", field="user_ids")
    require_ids(recipients, field="user_ids")
    wanted = sorted(set(recipients))
    found = set(active.filter(pk__in=wanted).values_list("pk", flat=True))
    missing = [user_id for user_id in wanted if user_id not in found]
    if missing:
        raise NotFound(f"no active users with ids {missing[:20]}", field="user_ids")
    return wanted


def notification_send(
    *,
    recipients: Sequence[int] | Literal["all"],
    title: str,
    content: str,
    priority: str,
    category: str,
    extra: dict[str, Any] | None = None,
    sender_user_id: int | None = None,
    sender_service: str = "",
    now: dt.datetime | None = None,
) -> Notification:
    """Store a notification and put it in each recipient's stream, pending, in the caller's
    transaction; it is published once that commits. A broadcast is a handful of statements
    whatever the number of users. Bad input raises BadRequest and stores nothing."""
    title = _require_text(title, field="title", max_length=MAX_TITLE_LENGTH)
    content = _require_text(
        content, field="content", max_length=settings.IMS_MAX_TEXT_LENGTH, allow_blank=True
    )
    sender_service = _require_text(
        sender_service, field="sender", max_length=MAX_SENDER_SERVICE_LENGTH, allow_blank=True
    )
    if priority not in Priority.values:
        raise BadRequest(f"`priority` must be one of {', '.join(Priority.values)}", field="priority")
    if category not in Category.values:
        raise BadRequest(f"`category` must be one of {', '.join(Category.values)}", field="category")
    extra = _clean_extra(extra)
    now = now or timezone.now()
    with transaction.atomic():
        user_ids = _recipient_ids(recipients)
        notification = Notification.objects.create(
            title=title,
            content=content,
            extra=extra,
            priority=priority,
            category=category,
            sender_user_id=sender_user_id,
            sender_service=sender_service,
            recipient_count=len(user_ids),
            created_at=now,
        )
        if user_ids:
            append_to_streams(
                entries=[
                    StreamEntry(
                        recipients=[NewItem(user_id=user_id, pending=True) for user_id in user_ids],
                        kind="notification",
                        body={"data": notification_data(notification)},
                        created_at=now,
                        priority=priority,
                    )
                ]
            )
    return notification


def notifications_mark_read(*, user_id: int, notification_ids: Sequence[int]) -> int:
    """Mark the user's copies read (they stop pending, its other devices learn of it).
    Unknown ids and notifications already read are skipped. Returns how many became read."""
    return mark_read(user_id=user_id, notification_ids=list(notification_ids))
