from notifications.models.devices import ConversationMute, Device, PushPreference
from notifications.models.notifications import Category, Notification
from notifications.models.push import ExpiryRun, PushAttempt, PushClaim, PushJob

__all__ = [
    "Category",
    "ConversationMute",
    "Device",
    "ExpiryRun",
    "Notification",
    "PushAttempt",
    "PushClaim",
    "PushJob",
    "PushPreference",
]
