from __future__ import annotations

import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone")


class User(AbstractUser):
    """An employee. Swapped in from the first migration, as Django advises."""

    display_name = models.CharField(max_length=150, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username


class WsTicket(models.Model):
    """A single-use WebSocket credential, so no long-lived token travels in a URL."""

    key = models.CharField(max_length=64, primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "WebSocket ticket"

    def __str__(self) -> str:
        return f"ticket of {self.user_id}"


class Connection(models.Model):
    """One open WebSocket, refreshed by heartbeats: presence comes from these rows.

    A row whose last_seen_at is older than two heartbeats belongs to a dead peer (power
    loss never runs disconnect()).
    """

    channel_name = models.CharField(max_length=200, primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="connections")
    connected_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["user", "last_seen_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.channel_name}"
