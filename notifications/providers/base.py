"""The interface every third-party push provider implements, and the values it exchanges.

Dispatch code builds a `PushTarget` from a registered device and a `PushMessage` from an
item, calls `send()` on the provider of the target's kind, and reads a `PushError`:
`permanent` means the device is dead (deactivate it), `retryable` means try again later
(after `retry_after_seconds` when the provider said so); neither means this one message was
refused (log it as failed, keep the device).
"""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from notifications.providers.presentation import PRESENTATIONS, Presentation

Kind = Literal["webpush", "fcm", "apns", "sms"]
Priority = Literal["P0", "P1", "P2", "P3"]
PRIORITIES: tuple[Priority, ...] = ("P0", "P1", "P2", "P3")

# A provider that says "retry after a day" is not worth a task that sleeps that long.
_MAX_RETRY_AFTER_SECONDS = 24 * 3600


class Reason(StrEnum):
    """Why a push failed, in fixed words: all a user's device list may say about it. The
    remote's own answer stays with staff (PushAttempt.error): a Web Push endpoint is a URL
    the user chose, so that answer could be any server's."""

    GONE = "gone"  # the service says the subscription, token or number is dead
    INVALID = "invalid"  # the subscription, token or number is malformed
    ENDPOINT_NOT_ALLOWED = "endpoint_not_allowed"  # the endpoint policy refuses it (endpoints.py)
    REFUSED = "refused"  # this message or our credentials were refused; the device stays
    UNAVAILABLE = "unavailable"  # busy, down or unreachable; tried again


class PushError(Exception):
    """A send that did not go through.

    `permanent`: the target is dead (unsubscribed, unregistered, invalid): deactivate it.
    `retryable`: a later attempt may succeed (timeouts, 429, 5xx); defaults to
    `not permanent`. A message-level refusal (too large, malformed, our credentials
    rejected) is neither: the device stays, this message is not retried.
    `message` is for staff and may quote the remote; `reason` is what users may see.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retryable: bool | None = None,
        status_code: int | None = None,
        retry_after_seconds: float | None = None,
        reason: Reason | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retryable = (not permanent) if retryable is None else retryable
        self.status_code = status_code
        self.retry_after_seconds = retry_after_seconds
        if reason is None:
            reason = Reason.GONE if permanent else Reason.UNAVAILABLE if self.retryable else Reason.REFUSED
        self.reason = reason

    def __repr__(self) -> str:
        return (
            f"PushError({self.message!r}, permanent={self.permanent}, retryable={self.retryable}, "
            f"status_code={self.status_code}, retry_after_seconds={self.retry_after_seconds}, "
            f"reason={self.reason.value!r})"
        )


@dataclass(frozen=True, kw_only=True)
class PushTarget:
    """Where to push: a Web Push subscription endpoint (`keys`: p256dh, auth), an FCM
    registration token, an APNs device token, or an E.164 phone number."""

    kind: Kind
    address: str
    keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PushMessage:
    """One push. `payload` is the item as JSON, the same shape as its WebSocket frame
    ({"type": "notification", "seq": .., "data": {..}} or {"type": "batch", ..});
    a newer push with the same `collapse_key` replaces an older one not yet shown."""

    title: str
    body: str
    payload: dict[str, Any]
    priority: Priority = "P1"
    collapse_key: str | None = None
    ttl_seconds: int = 24 * 3600

    @property
    def presentation(self) -> Presentation:
        """How devices show this push: sound or not, urgency, channel (presentation.py)."""
        return PRESENTATIONS[self.priority]


@dataclass(frozen=True, kw_only=True)
class PushResult:
    """The provider's answer to an accepted push; `provider_id` is its message id if any."""

    status_code: int
    provider_id: str | None = None


@runtime_checkable
class Provider(Protocol):
    """A third-party push channel. Synchronous: called from Celery tasks."""

    kind: str

    def is_configured(self) -> bool:
        """Whether every setting `send()` needs is present and usable."""
        ...

    def describe_configuration(self) -> str:
        """One line for the admin: what is in use, or what is missing."""
        ...

    def allows(self, priority: str) -> bool:
        """Whether messages of this priority may go through this provider."""
        ...

    def send(self, *, target: PushTarget, message: PushMessage) -> PushResult:
        """Push one message to one target; raises PushError."""
        ...

    def close(self) -> None:
        """Close kept-open connections; the registry calls it when it drops the provider."""
        ...


def not_configured_error(*, kind: str, description: str) -> PushError:
    """What `send()` raises on a provider without settings: nothing for a retry to fix
    until an operator acts, and no reason to think the device is dead."""
    return PushError(f"{kind} is not configured: {description}", retryable=False)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = math.ceil(when.timestamp() - time.time())
    return float(min(max(seconds, 0), _MAX_RETRY_AFTER_SECONDS))
