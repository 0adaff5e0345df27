"""The push outbox: which pending items were claimed for push, the push jobs per device
with their idempotency keys, every attempt, and the expiry runs."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PushClaim(models.Model):
    """A pending item the dispatcher has taken on: at most one per item, so it is pushed once
    per rung of its ladder (0 first push, 1 P0 again to every device, 2 P0 by SMS)."""

    item = models.OneToOneField(
        "messaging.StreamItem", on_delete=models.CASCADE, primary_key=True, related_name="push_claim"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    priority = models.CharField(max_length=2)
    category = models.CharField(max_length=20)
    rung = models.PositiveSmallIntegerField(default=0)
    # P0 only: when the next rung is due unless an ack removed the pending item.
    next_escalation_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"claim of item {self.item_id} (rung {self.rung})"


# Sending failed pushes again from the admin: its own permission, since the rows themselves
# stay read-only (no one holds change_pushjob for a reason).
RETRY_PERMISSION = "retry_pushjob"


class PushJob(models.Model):
    """One push to one device. `key` (item, device, rung) makes it idempotent: a dispatcher
    run or a task that runs twice finds the row and its state, and pushes once."""

    class State(models.TextChoices):
        QUEUED = "queued"
        DEFERRED = "deferred"  # quiet hours: waits for not_before
        SENDING = "sending"  # the request may be on the wire
        RETRYING = "retrying"
        SENT = "sent"
        SKIPPED = "skipped"  # acked, read or expired before it went out
        MERGED = "merged"  # carried by another job of the same device
        FAILED = "failed"

    key = models.CharField(max_length=100, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey("notifications.Device", on_delete=models.CASCADE, related_name="jobs")
    item = models.ForeignKey("messaging.StreamItem", on_delete=models.CASCADE, related_name="+")
    # Every item this push speaks for (a merged P3 push, quiet hours released at once).
    item_ids = models.JSONField(default=list)
    rung = models.PositiveSmallIntegerField(default=0)
    priority = models.CharField(max_length=2)
    category = models.CharField(max_length=20)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    not_before = models.DateTimeField(null=True, blank=True)
    state_changed_at = models.DateTimeField()
    tries = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "state_changed_at"], name="push_job_state_idx")]
        permissions = [(RETRY_PERMISSION, "Can retry failed pushes")]

    def __str__(self) -> str:
        return f"push {self.key} ({self.state})"


class PushAttempt(models.Model):
    """One request to a provider (or one decision not to make it), kept for the admin."""

    class Outcome(models.TextChoices):
        SENT = "sent"
        RETRY = "retry"  # temporary failure, tried again later
        FAILED = "failed"  # refused, or retries used up
        DEACTIVATED = "deactivated"  # the device is gone; it was deactivated
        SKIPPED = "skipped"  # acked, read or expired before it went out

    job = models.ForeignKey(
        PushJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="attempts"
    )
    item = models.ForeignKey(
        "messaging.StreamItem", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    device = models.ForeignKey(
        "notifications.Device", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    provider = models.CharField(max_length=10)
    rung = models.PositiveSmallIntegerField(default=0)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.provider} {self.outcome}"


class ExpiryRun(models.Model):
    """One purge of pending items past IMS_OFFLINE_TTL_DAYS: how many expired unacked."""

    ran_at = models.DateTimeField(db_index=True)
    pending_expired = models.PositiveIntegerField()
    items_deleted = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.ran_at:%Y-%m-%d %H:%M}: {self.pending_expired} expired"
