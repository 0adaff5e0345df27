"""Each user's stream: gap-free seqs, one item per thing the user receives."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StreamCounter(models.Model):
    """The last seq handed out in a user's stream; the row lock serialises seq assignment."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    last_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.last_seq}"


class Priority(models.TextChoices):
    """PROTOCOL.md, "Priorities and merging": how urgently an item travels when its user is away."""

    P0 = "P0", "P0: alert, security (push at once, every device, bypasses mute and quiet hours)"
    P1 = "P1", "P1: chat message, mention"
    P2 = "P2", "P2: to-do, approval (silent push)"
    P3 = "P3", "P3: announcement, news (merged)"


class ItemStatus(models.TextChoices):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"


class StreamItem(models.Model):
    """One item of a user's stream: a message (theirs or their own copy) or a notification.

    Messages are joined from Message; other kinds carry their frame data in `payload`, so
    this app needs to know nothing about them.
    """

    class Kind(models.TextChoices):
        MESSAGE = "message"
        NOTIFICATION = "notification"
        CONVERSATION = "conversation"

    # No index of their own: unique_stream_seq leads with user, stream_item_message_idx
    # with message, and every extra index is written for each of a broadcast's rows.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    message = models.ForeignKey(
        "messaging.Message",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="items",
        db_index=False,
    )
    # Denormalised from message so unread counts need no join.
    conversation_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(null=True, blank=True)
    priority = models.CharField(max_length=2, choices=Priority.choices, default=Priority.P1)
    # The sender's own copy of a message: shown on its other devices, never pending.
    is_own = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=ItemStatus.choices, default=ItemStatus.SENT)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "seq"], name="unique_stream_seq")]
        # A notification's rows (message NULL) are in none but the first two; on PostgreSQL
        # stream_item_created_idx is a BRIN index (migration 0004): rows come in time order,
        # and only the retention purge reads it.
        indexes = [
            models.Index(
                fields=["message", "user"],
                condition=models.Q(message__isnull=False),
                name="stream_item_message_idx",
            ),
            models.Index(
                fields=["user", "conversation_id"],
                condition=models.Q(read_at__isnull=True, is_own=False),
                name="stream_item_unread_idx",
            ),
            models.Index(fields=["created_at"], name="stream_item_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}#{self.seq}"


class PendingItem(models.Model):
    """The offline store: an item no connection of its user has acked yet."""

    # unique_pending_seq leads with user: no index of its own. No foreign-key constraint
    # either: `item` already ties the row to a user that exists (it is the item's user),
    # and checking both at commit was 10,000 lookups more per broadcast to 10,000 users.
    # Deleting a user still deletes its rows, through the item.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    seq = models.BigIntegerField()
    item = models.OneToOneField(StreamItem, on_delete=models.CASCADE, related_name="pending")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "seq"], name="unique_pending_seq")]
        # BRIN on PostgreSQL (migration 0004): read only by the expiry purge.
        indexes = [models.Index(fields=["expires_at"], name="pending_expires_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}#{self.seq} pending"
