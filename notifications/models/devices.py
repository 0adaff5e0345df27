"""Where third-party pushes go (devices) and what a user asked to hold back (quiet hours, mutes)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Device(models.Model):
    """A Web Push subscription, an FCM or APNs token, or a phone for SMS.

    One row per address whatever the user, so no device ever gets one user's push twice or
    another's. The address belongs to the user who registered it: registering it again
    replaces only one's own (services.devices says why another's is refused, even a token's).
    """

    class Kind(models.TextChoices):
        WEBPUSH = "webpush", "Web Push"
        FCM = "fcm", "FCM"
        APNS = "apns", "APNs"
        SMS = "sms", "SMS"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The subscription endpoint, the token or the E.164 phone number.
    address = models.CharField(max_length=1024)
    keys = models.JSONField(default=dict, blank=True)  # Web Push: p256dh and auth
    name = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True)
    deactivated_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "address"], name="unique_device_address")]
        indexes = [models.Index(fields=["user", "active"], name="device_user_active_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name or self.pk} of {self.user_id}"


class PushPreference(models.Model):
    """A user's quiet hours, in the user's time zone (messaging's User.time_zone)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"quiet hours of {self.user_id}"


class ConversationMute(models.Model):
    """No third-party push for this conversation's messages (live delivery is unchanged)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey("messaging.Conversation", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "conversation"], name="unique_mute")]

    def __str__(self) -> str:
        return f"{self.user_id} muted {self.conversation_id}"
