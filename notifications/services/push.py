"""Sending one push job: idempotent, every attempt recorded, retried with backoff.

The job row says what happened: a task that runs twice (a redelivered message, a retry
racing the dispatcher) finds it `sent` or `sending` and does nothing. The request itself
runs outside any transaction, after the job is marked `sending`; a worker killed during
it leaves the job `sending` until the dispatcher's lease runs out and enqueues it again
(see dispatch._requeue_lost for what that means on the wire).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging.models import PendingItem
from notifications.models import Device, PushAttempt, PushJob
from notifications.providers import PushError, PushResult, PushTarget, get_provider
from notifications.providers.base import Provider
from notifications.services.content import push_message

State = PushJob.State
Outcome = PushAttempt.Outcome
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 15 * 60.0
MAX_ERROR_CHARS = 300
# Why a push to a deactivated user ends skipped (here at send time, and in the dispatcher).
USER_INACTIVE = "the user is deactivated: no push to inactive users"


@dataclass(frozen=True, kw_only=True)
class PushOutcome:
    state: str
    retry_in_seconds: float | None = None


def retry_delay_seconds(*, tries: int, retry_after_seconds: float | None) -> float:
    """Exponential backoff with jitter (so retries of a burst do not hit the provider
    together), never sooner than the provider's Retry-After."""
    ceiling = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(tries - 1, 0))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret
    return max(delay, retry_after_seconds or 0.0)


def push_job_send(*, job_id: int, now: dt.datetime | None = None) -> PushOutcome:
    """Push this job unless it is done, in flight, or its items were acked, read or expired."""
    now = now or timezone.now()
    taken = _take(job_id=job_id, now=now)
    if isinstance(taken, PushOutcome):
        return taken
    job, provider, item_ids = taken
    device = job.device
    started = time.monotonic()
    try:
        message = push_message(job=job, item_ids=item_ids)
        result = provider.send(
            target=PushTarget(
                kind=device.kind,  # type: ignore[arg-type]  # a Device.Kind value
                address=device.address,
                keys=device.keys,
            ),
            message=message,
        )
    except PushError as error:
        return _failed(job, error=error, latency_ms=_ms_since(started), now=now)
    return _sent(job, result=result, latency_ms=_ms_since(started), now=now)


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _take(*, job_id: int, now: dt.datetime) -> PushOutcome | tuple[PushJob, Provider, list[int]]:
    """Mark the job `sending`, or say why it will not be sent."""
    with transaction.atomic():
        job = (
            PushJob.objects.select_for_update(of=("self",))
            .select_related("device", "user")
            .filter(pk=job_id)
            .first()
        )
        if job is None:
            return PushOutcome(state="gone")
        if job.state not in (State.QUEUED, State.RETRYING):
            return PushOutcome(state=job.state)
        live = list(
            PendingItem.objects.filter(item_id__in=job.item_ids, expires_at__gt=now)
            .order_by("seq")
            .values_list("item_id", flat=True)
        )
        device = job.device
        provider = get_provider(device.kind)
        if not job.user.is_active:
            reason = USER_INACTIVE
        elif not live:
            reason = "acked, read or expired before it went out"
        elif not device.active:
            reason = "the device was deactivated"
        else:
            reason = None
        if reason:
            return _finish(job, state=State.SKIPPED, outcome=Outcome.SKIPPED, error=reason, now=now)
        if not provider.is_configured() or not provider.allows(job.priority):
            error = f"{job.priority} not sent: {provider.describe_configuration()}"
            return _finish(job, state=State.FAILED, outcome=Outcome.FAILED, error=error, now=now)
        job.state, job.state_changed_at, job.tries = State.SENDING, now, job.tries + 1
        job.save(update_fields=["state", "state_changed_at", "tries"])
    return job, provider, live


def _finish(
    job: PushJob,
    *,
    state: str,
    outcome: str,
    error: str = "",
    status_code: int | None = None,
    latency_ms: int | None = None,
    now: dt.datetime,
) -> PushOutcome:
    """Record the attempt and the job's new state. Precondition: inside a transaction."""
    PushAttempt.objects.create(
        job=job,
        item_id=job.item_id,
        device_id=job.device_id,
        provider=job.device.kind,
        rung=job.rung,
        outcome=outcome,
        status_code=status_code,
        error=error[:MAX_ERROR_CHARS],
        latency_ms=latency_ms,
        created_at=now,
    )
    job.state, job.state_changed_at, job.last_error = state, now, error[:MAX_ERROR_CHARS]
    if state == State.SENT:
        job.sent_at = now
    job.save(update_fields=["state", "state_changed_at", "last_error", "sent_at", "not_before"])
    return PushOutcome(state=state)


def _sent(job: PushJob, *, result: PushResult, latency_ms: int, now: dt.datetime) -> PushOutcome:
    with transaction.atomic():
        Device.objects.filter(pk=job.device_id).update(last_used_at=now)
        return _finish(
            job,
            state=State.SENT,
            outcome=Outcome.SENT,
            status_code=result.status_code,
            latency_ms=latency_ms,
            now=now,
        )


def _failed(job: PushJob, *, error: PushError, latency_ms: int, now: dt.datetime) -> PushOutcome:
    detail = error.message
    with transaction.atomic():
        if error.permanent:
            # The device list shows its owner the fixed reason; the attempt keeps the detail.
            Device.objects.filter(pk=job.device_id).update(
                active=False, deactivated_reason=error.reason.value
            )
            state, outcome = State.FAILED, Outcome.DEACTIVATED
        elif error.retryable and job.tries <= settings.IMS_PUSH_MAX_RETRIES:
            delay = retry_delay_seconds(tries=job.tries, retry_after_seconds=error.retry_after_seconds)
            job.not_before = now + dt.timedelta(seconds=delay)
            _finish(
                job,
                state=State.RETRYING,
                outcome=Outcome.RETRY,
                error=detail,
                status_code=error.status_code,
                latency_ms=latency_ms,
                now=now,
            )
            return PushOutcome(state=State.RETRYING, retry_in_seconds=delay)
        else:
            state, outcome = State.FAILED, Outcome.FAILED
        return _finish(
            job,
            state=state,
            outcome=outcome,
            error=detail,
            status_code=error.status_code,
            latency_ms=latency_ms,
            now=now,
        )
