"""Reads of notifications, devices and push preferences (never imports services)."""

from __future__ import annotations

from django.db.models import QuerySet

from messaging.models import StreamItem, User
from notifications.models import ConversationMute, Device, PushPreference
from notifications.providers.base import Reason


def notification_items(*, user_id: int) -> QuerySet[StreamItem]:
    """The user's copies of notifications (their frame in `payload`), for newest-first pages."""
    return StreamItem.objects.filter(user_id=user_id, kind=StreamItem.Kind.NOTIFICATION)


def notifications_unread_count(*, user_id: int) -> int:
    return notification_items(user_id=user_id).filter(read_at__isnull=True).count()


def devices_of_user(*, user_id: int) -> QuerySet[Device]:
    return Device.objects.filter(user_id=user_id).order_by("-created_at", "-pk")


def device_reason_shown(device: Device) -> str:
    """Why the device stopped receiving pushes, as its owner may read it: a fixed Reason
    word, never a provider's answer. Rows deactivated before those words held the answer
    itself; they read as "gone", which is what nearly all of them were."""
    if not device.deactivated_reason:
        return ""
    try:
        return Reason(device.deactivated_reason).value
    except ValueError:
        return Reason.GONE.value


def push_preferences(*, user_id: int) -> dict:
    """{"time_zone", "quiet_hours": {"start", "end"} or None}, times as HH:MM."""
    time_zone = User.objects.filter(pk=user_id).values_list("time_zone", flat=True).get()
    preference = PushPreference.objects.filter(user_id=user_id).first()
    quiet = None
    if preference is not None and preference.quiet_start is not None and preference.quiet_end is not None:
        quiet = {
            "start": preference.quiet_start.strftime("%H:%M"),
            "end": preference.quiet_end.strftime("%H:%M"),
        }
    return {"time_zone": time_zone, "quiet_hours": quiet}


def conversation_is_muted(*, user_id: int, conversation_id: int) -> bool:
    return ConversationMute.objects.filter(user_id=user_id, conversation_id=conversation_id).exists()
