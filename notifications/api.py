"""The public Python API of notifications, for other Django apps.

    from notifications.api import ALL, send_notification
    send_notification([alice.pk], "Disk almost full", "db-3 at 91 %", priority="P0", category="alert",
                      sender="monitoring")
    send_notification(ALL, "Office closed Friday", "", priority="P3", category="announcement")

Call it inside your own transaction if you like: the notification is stored in it and
pushed only after it commits. Async code uses `asend_notification`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from django.contrib.auth.base_user import AbstractBaseUser

from messaging.api import Priority, async_twin
from notifications.models import Category, Notification
from notifications.services.notifications import ALL, notification_send

__all__ = ["ALL", "Category", "Priority", "asend_notification", "send_notification"]


def send_notification(
    recipients: Sequence[AbstractBaseUser | int] | Literal["all"],
    title: str,
    content: str,
    *,
    priority: str,
    category: str,
    extra: dict[str, Any] | None = None,
    sender: AbstractBaseUser | str | None = None,
) -> Notification:
    """Notify these users (or their ids), or every active user with ALL.

    `sender` is the user who sends it or the name of the service. Raises
    messaging.errors.BadRequest and stores nothing when the input is invalid.
    """
    return notification_send(
        recipients=recipients if recipients == ALL else [_pk(user) for user in recipients],
        title=title,
        content=content,
        priority=priority,
        category=category,
        extra=extra,
        sender_user_id=None if sender is None or isinstance(sender, str) else sender.pk,
        sender_service=sender if isinstance(sender, str) else "",
    )


asend_notification = async_twin(send_notification)


def _pk(ref: Any) -> Any:
    return ref.pk if isinstance(ref, AbstractBaseUser) else ref
