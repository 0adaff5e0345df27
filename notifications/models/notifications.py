"""System notifications: what a business service tells people. Each recipient's copy is a
stream item of messaging (kind `notification`), so read state lives there."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from messaging.models import Priority


class Category(models.TextChoices):
    """PROTOCOL.md, "Priorities and merging": the categories and their usual priority."""

    ALERT = "alert"
    SECURITY = "security"
    CHAT = "chat"
    MENTION = "mention"
    TO_DO = "todo", "Todo"
    APPROVAL = "approval"
    ANNOUNCEMENT = "announcement"
    NEWS = "news"


class Notification(models.Model):
    title = models.CharField(max_length=200)
    content = models.TextField(blank=True)
    extra = models.JSONField(default=dict, blank=True)
    priority = models.CharField(max_length=2, choices=Priority.choices)
    category = models.CharField(max_length=20, choices=Category.choices)
    # Sent by a person (the admin, a staff member over REST) or by a named service.
    sender_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    sender_service = models.CharField(max_length=100, blank=True)
    recipient_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.priority} {self.title}"
