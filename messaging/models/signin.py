from __future__ import annotations

from django.db import models


class SigninFailures(models.Model):
    """Failed password checks of one account or from one client address, counted by
    messaging.services.signin before it lets the next password be checked.

    The account is the username as typed (normalised), whether or not such a user exists,
    so the rows behave the same for both and an answer never tells which accounts exist.
    """

    class Kind(models.TextChoices):
        ACCOUNT = "account"
        ADDRESS = "address"

    kind = models.CharField(max_length=7, choices=Kind.choices)
    # The normalised username, or the address (an IPv6 address stands for its /64).
    subject = models.CharField(max_length=255)
    # Password checks of the current window that did not succeed, those running now included.
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()

    class Meta:
        verbose_name = "sign-in failures"
        verbose_name_plural = "sign-in failures"
        constraints = [
            models.UniqueConstraint(fields=["kind", "subject"], name="signin_failures_subject_uniq")
        ]
        # What the hourly purge reads.
        indexes = [models.Index(fields=["last_failed_at"], name="signin_failures_last_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}"
