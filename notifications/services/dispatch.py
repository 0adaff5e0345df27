"""The push dispatcher: pending items past their grace become push jobs, one per device.

The pending row (messaging's PendingItem, written in the sending transaction) is the
outbox: nothing is lost between a commit and an enqueue. Each run, in its own
transactions: claims new pending items (P0 at once, others after IMS_PUSH_GRACE_SECONDS),
climbs the P0 ladder (every device again, then SMS), ends the waiting pushes of deactivated
users, releases pushes deferred by quiet hours (merged per device), and enqueues again jobs
whose task was lost. Deactivated users get nothing: no claim, no rung, no push. Claims are
taken with FOR UPDATE SKIP LOCKED on PostgreSQL, so dispatchers never take the same rows;
on SQLite the IMMEDIATE transaction's write lock serialises them.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from messaging.api import Priority
from messaging.models import PendingItem, User
from notifications.models import ConversationMute, Device, PushAttempt, PushClaim, PushJob, PushPreference
from notifications.providers import get_provider
from notifications.services.push import USER_INACTIVE
from notifications.services.queue import enqueue_push_jobs_on_commit
from notifications.services.quiet import quiet_hours_end

PUSHED_KINDS = ("message", "notification")
# Messages have no category of their own; their pushes are "chat".
MESSAGE_CATEGORY = "chat"
LADDER_TOP = 2  # rung 1: P0 again to every device; rung 2: by SMS
State = PushJob.State


@dataclass(frozen=True, kw_only=True)
class DispatchReport:
    claimed: int
    jobs: int
    escalated: int
    skipped_inactive: int
    released: int
    requeued: int


@dataclass(frozen=True, kw_only=True)
class Claimed:
    item_id: int
    user_id: int
    seq: int
    priority: str
    category: str
    conversation_id: int | None


def push_dispatch(*, now: dt.datetime | None = None) -> DispatchReport:
    """One run of the dispatcher (Celery beat every IMS_DISPATCH_INTERVAL_SECONDS, and on
    commit of a P0 item)."""
    now = now or timezone.now()
    claimed, jobs = _claim_pending(now=now)
    return DispatchReport(
        claimed=claimed,
        jobs=jobs,
        escalated=_escalate_p0(now=now),
        skipped_inactive=_skip_for_inactive_users(now=now),
        released=_release_deferred(now=now),
        requeued=_requeue_lost(now=now),
    )


def _locked(queryset: QuerySet) -> QuerySet:
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset  # SQLite: BEGIN IMMEDIATE already holds the database's write lock


def _claim_pending(*, now: dt.datetime) -> tuple[int, int]:
    grace_end = now - dt.timedelta(seconds=settings.IMS_PUSH_GRACE_SECONDS)
    due = PendingItem.objects.filter(
        item__push_claim__isnull=True,
        item__kind__in=PUSHED_KINDS,
        item__is_own=False,
        expires_at__gt=now,
        user__is_active=True,
    ).filter(Q(created_at__lte=grace_end) | Q(item__priority=Priority.P0))
    fields = (
        "item_id",
        "user_id",
        "seq",
        "item__priority",
        "item__kind",
        "item__payload",
        "item__conversation_id",
    )
    with transaction.atomic():
        rows = list(_locked(due.order_by("pk")).values_list(*fields)[: settings.IMS_DISPATCH_BATCH_SIZE])
        if not rows:
            return 0, 0
        claimed = [
            Claimed(
                item_id=item_id,
                user_id=user_id,
                seq=seq,
                priority=priority,
                category=payload["data"].get("category", "") if kind == "notification" else MESSAGE_CATEGORY,
                conversation_id=conversation_id,
            )
            for item_id, user_id, seq, priority, kind, payload, conversation_id in rows
        ]
        escalate_at = now + dt.timedelta(seconds=settings.IMS_P0_ESCALATE_SECONDS)
        PushClaim.objects.bulk_create(
            [
                PushClaim(
                    item_id=item.item_id,
                    user_id=item.user_id,
                    priority=item.priority,
                    category=item.category,
                    next_escalation_at=escalate_at if item.priority == Priority.P0 else None,
                    created_at=now,
                )
                for item in claimed
            ]
        )
        jobs = PushJob.objects.bulk_create(_first_jobs(claimed, now=now))
        enqueue_push_jobs_on_commit([job.pk for job in jobs if job.state == State.QUEUED])
    return len(rows), len(jobs)


def _first_jobs(claimed: list[Claimed], *, now: dt.datetime) -> list[PushJob]:
    """One job per device of each item; P3 items of one user and category share one job.
    Muted conversations get none; quiet hours defer all but P0."""
    user_ids = {item.user_id for item in claimed}
    devices = _device_ids(user_ids, sms=False)
    quiet = _quiet_ends(user_ids, now=now)
    muted = set(
        ConversationMute.objects.filter(user_id__in=user_ids).values_list("user_id", "conversation_id")
    )
    groups: dict[tuple, list[Claimed]] = defaultdict(list)
    for item in claimed:
        if item.priority != Priority.P0 and (item.user_id, item.conversation_id) in muted:
            continue
        merge = item.priority == Priority.P3
        groups[(item.user_id, item.category) if merge else (item.user_id, item.item_id)].append(item)
    jobs = []
    for group in groups.values():
        lead = max(group, key=lambda item: item.seq)
        until = None if lead.priority == Priority.P0 else quiet.get(lead.user_id)
        for device_id in devices.get(lead.user_id, ()):
            jobs.append(
                _job(lead, device_id=device_id, rung=0, item_ids=[item.item_id for item in group], now=now)
            )
            if until is not None:
                jobs[-1].state, jobs[-1].not_before = State.DEFERRED, until
    return jobs


def _job(
    item: Claimed | PushClaim, *, device_id: int, rung: int, item_ids: list[int], now: dt.datetime
) -> PushJob:
    return PushJob(
        key=f"{item.item_id}:{device_id}:{rung}",
        user_id=item.user_id,
        device_id=device_id,
        item_id=item.item_id,
        item_ids=item_ids,
        rung=rung,
        priority=item.priority,
        category=item.category,
        state=State.QUEUED,
        state_changed_at=now,
        created_at=now,
    )


def _device_ids(user_ids: Iterable[int], *, sms: bool) -> dict[int, list[int]]:
    """Active device ids by user: SMS ones only, or all but SMS (SMS is the P0 ladder's last rung)."""
    devices = Device.objects.filter(user_id__in=list(user_ids), active=True)
    devices = devices.filter(kind=Device.Kind.SMS) if sms else devices.exclude(kind=Device.Kind.SMS)
    by_user: dict[int, list[int]] = defaultdict(list)
    for device_id, user_id in devices.order_by("pk").values_list("pk", "user_id"):
        by_user[user_id].append(device_id)
    return by_user


def _quiet_ends(user_ids: set[int], *, now: dt.datetime) -> dict[int, dt.datetime]:
    """When the quiet hours end of each user who is inside them now."""
    zones = dict(User.objects.filter(pk__in=list(user_ids)).values_list("pk", "time_zone"))
    ends = {}
    preferences = PushPreference.objects.filter(user_id__in=list(user_ids), quiet_start__isnull=False)
    for preference in preferences:
        end = quiet_hours_end(
            now=now,
            time_zone=zones.get(preference.user_id, "UTC"),
            start=preference.quiet_start,
            end=preference.quiet_end,
        )
        if end is not None:
            ends[preference.user_id] = end
    return ends


def _sms_allowed_for_p0() -> bool:
    provider = get_provider(Device.Kind.SMS)
    return provider.is_configured() and provider.allows(Priority.P0)


def _escalate_p0(*, now: dt.datetime) -> int:
    """P0 items still pending after IMS_P0_ESCALATE_SECONDS climb one rung."""
    with transaction.atomic():
        # Acked or expired, or its user deactivated: the ladder stops.
        PushClaim.objects.filter(next_escalation_at__isnull=False).filter(
            Q(item__pending__isnull=True) | Q(user__is_active=False)
        ).update(next_escalation_at=None)
        due = _locked(PushClaim.objects.filter(next_escalation_at__lte=now).order_by("next_escalation_at"))
        claims = list(due[: settings.IMS_DISPATCH_BATCH_SIZE])
        if not claims:
            return 0
        user_ids = {claim.user_id for claim in claims}
        devices = _device_ids(user_ids, sms=False)
        phones = _device_ids(user_ids, sms=True) if _sms_allowed_for_p0() else {}
        interval = dt.timedelta(seconds=settings.IMS_P0_ESCALATE_SECONDS)
        jobs: list[PushJob] = []
        for claim in claims:
            claim.rung += 1
            targets = devices if claim.rung == 1 else phones
            claim.next_escalation_at = now + interval if claim.rung < LADDER_TOP else None
            jobs.extend(
                _job(claim, device_id=device_id, rung=claim.rung, item_ids=[claim.item_id], now=now)
                for device_id in targets.get(claim.user_id, ())
            )
        PushClaim.objects.bulk_update(claims, ["rung", "next_escalation_at"])
        created = PushJob.objects.bulk_create(jobs)
        enqueue_push_jobs_on_commit([job.pk for job in created])
    return len(claims)


def _skip_for_inactive_users(*, now: dt.datetime) -> int:
    """Pushes still waiting (queued, deferred, retrying) for a deactivated user end skipped,
    each with its attempt saying why. One on the wire (sending) completes; if its task was
    lost, _requeue_lost queues it and the task refuses it."""
    waiting = PushJob.objects.filter(
        state__in=[State.QUEUED, State.DEFERRED, State.RETRYING], user__is_active=False
    )
    with transaction.atomic():
        jobs = list(
            _locked(waiting.select_related("device").order_by("pk"))[: settings.IMS_DISPATCH_BATCH_SIZE]
        )
        for job in jobs:
            job.state, job.state_changed_at, job.last_error = State.SKIPPED, now, USER_INACTIVE
        PushJob.objects.bulk_update(jobs, ["state", "state_changed_at", "last_error"])
        PushAttempt.objects.bulk_create(
            PushAttempt(
                job=job,
                item_id=job.item_id,
                device_id=job.device_id,
                provider=job.device.kind,
                rung=job.rung,
                outcome=PushAttempt.Outcome.SKIPPED,
                error=USER_INACTIVE,
                created_at=now,
            )
            for job in jobs
        )
    return len(jobs)


def _release_deferred(*, now: dt.datetime) -> int:
    """Quiet hours are over: each device gets one push for everything deferred to it."""
    with transaction.atomic():
        due = _locked(PushJob.objects.filter(state=State.DEFERRED, not_before__lte=now).order_by("pk"))
        jobs = list(due[: settings.IMS_DISPATCH_BATCH_SIZE])
        by_device: dict[int, list[PushJob]] = defaultdict(list)
        for job in jobs:
            by_device[job.device_id].append(job)
        carriers: list[int] = []
        for group in by_device.values():
            carrier = max(group, key=lambda job: job.item_id)
            carrier.item_ids = sorted({item_id for job in group for item_id in job.item_ids})
            carrier.state = State.QUEUED
            for job in group:
                job.state_changed_at = now
                if job is not carrier:
                    job.state, job.last_error = State.MERGED, f"sent with {carrier.key}"
            carriers.append(carrier.pk)
        PushJob.objects.bulk_update(jobs, ["item_ids", "state", "state_changed_at", "last_error"])
        enqueue_push_jobs_on_commit(carriers)
    return len(carriers)


def _requeue_lost(*, now: dt.datetime) -> int:
    """Jobs queued or sending for longer than IMS_PUSH_LEASE_SECONDS lost their task (a
    killed worker, a dropped broker message): enqueue them again. One that was on the wire
    when its worker died goes out again with the same collapse key (Topic), so the push
    service keeps one of the two: at least once on the wire, once on the device."""
    stale = now - dt.timedelta(seconds=settings.IMS_PUSH_LEASE_SECONDS)
    lost = Q(state__in=[State.QUEUED, State.SENDING], state_changed_at__lte=stale) | Q(
        state=State.RETRYING, not_before__lte=stale
    )
    with transaction.atomic():
        ids = list(
            _locked(PushJob.objects.filter(lost).order_by("pk")).values_list("pk", flat=True)[
                : settings.IMS_DISPATCH_BATCH_SIZE
            ]
        )
        PushJob.objects.filter(pk__in=ids).update(state=State.QUEUED, state_changed_at=now)
        enqueue_push_jobs_on_commit(ids)
    return len(ids)


def push_jobs_retry(*, job_ids: Iterable[int], now: dt.datetime | None = None) -> int:
    """Send failed jobs again (the admin's action), from a fresh retry budget. The item must
    still be pending when the task runs, as for any push."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            PushJob.objects.filter(pk__in=list(job_ids), state=State.FAILED).values_list("pk", flat=True)
        )
        PushJob.objects.filter(pk__in=ids).update(state=State.QUEUED, state_changed_at=now, tries=0)
        enqueue_push_jobs_on_commit(ids)
    return len(ids)
