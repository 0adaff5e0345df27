"""Push dispatch with a controllable clock: grace, P0 at once, merging, the P0 ladder, quiet
hours, mutes, acks and expiry, against a real local Web Push service (and SMS gateway).
Tasks are called directly, as a worker would run them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from messaging.api import mark_read, send_message
from messaging.models import PendingItem, StreamItem
from messaging.services.stream import items_ack, stream_purge_expired
from notifications.api import send_notification
from notifications.models import Device, ExpiryRun, PushAttempt, PushClaim, PushJob
from notifications.services.devices import device_register
from notifications.services.dispatch import push_dispatch
from notifications.services.preferences import conversation_mute, preferences_update
from notifications.services.push import USER_INACTIVE, push_job_send
from tests.notifications.providers.servers import Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("push_settings")]


def run_jobs(*, now: dt.datetime) -> list[str]:
    """Run every queued push job once, as the worker would; their final states."""
    ids = PushJob.objects.filter(state=PushJob.State.QUEUED).order_by("pk").values_list("pk", flat=True)
    return [push_job_send(job_id=job_id, now=now).state for job_id in list(ids)]


def notify(user, title="Build broken", *, priority="P1", category="mention", content="main is red"):
    return send_notification([user], title, content, priority=priority, category=category)


def test_an_item_waits_out_its_grace_then_goes_to_every_browser_of_its_user(alice, browser, push_service):
    browser(alice, path="/push/laptop")
    browser(alice, path="/push/phone")
    sent_at = timezone.now()
    notification = notify(alice)
    assert push_dispatch(now=sent_at + dt.timedelta(seconds=5)).claimed == 0
    report = push_dispatch(now=sent_at + dt.timedelta(seconds=11))
    assert (report.claimed, report.jobs) == (1, 2)
    assert run_jobs(now=sent_at + dt.timedelta(seconds=11)) == ["sent", "sent"]
    assert {received.path for received in push_service.server.received} == {"/push/laptop", "/push/phone"}
    document = push_service.documents[0]
    assert (document["type"], document["data"]["id"]) == ("notification", notification.pk)
    assert (document["title"], document["body"]) == ("Build broken", "main is red")
    assert push_service.server.received[0].headers["urgency"] == "normal"
    attempt = PushAttempt.objects.first()
    assert (attempt.outcome, attempt.status_code, attempt.provider) == ("sent", 201, "webpush")
    assert attempt.latency_ms is not None


def test_p0_is_claimed_at_once_even_when_the_user_is_online(alice, browser, push_service):
    browser(alice)
    notify(alice, "Intrusion detected", priority="P0", category="security")
    assert push_dispatch(now=timezone.now()).jobs == 1
    assert run_jobs(now=timezone.now()) == ["sent"]
    assert push_service.server.received[0].headers["urgency"] == "high"


def test_a_user_without_devices_costs_nothing_and_its_item_waits_for_the_next_connect(alice):
    notify(alice)
    report = push_dispatch(now=timezone.now() + dt.timedelta(minutes=1))
    assert (report.claimed, report.jobs) == (1, 0)
    assert PendingItem.objects.count() == 1
    assert push_dispatch(now=timezone.now() + dt.timedelta(minutes=2)).claimed == 0


def test_a_chat_message_is_pushed_with_its_sender_and_text_but_never_the_senders_own_copy(
    alice, bob, browser, push_service
):
    browser(alice)
    browser(bob)
    send_message(bob, alice, "Lunch at noon? " + "very long " * 40)
    later = timezone.now() + dt.timedelta(seconds=11)
    assert push_dispatch(now=later).jobs == 1
    run_jobs(now=later)
    (document,) = push_service.documents
    assert document["type"] == "message"
    assert document["title"] == "Bob"
    assert document["body"].startswith("Lunch at noon?")
    assert len(document["body"]) <= 200
    assert push_service.server.received[0].path == f"/push/{alice.username}"


def test_an_item_acked_or_read_before_its_push_goes_out_is_not_pushed(alice, browser, push_service):
    browser(alice)
    acked = notify(alice, "acked")
    read = notify(alice, "read")
    later = timezone.now() + dt.timedelta(seconds=11)
    push_dispatch(now=later)
    items_ack(user_id=alice.pk, seqs=[StreamItem.objects.get(payload__data__id=acked.pk).seq])
    mark_read(user_id=alice.pk, notification_ids=[read.pk])
    assert run_jobs(now=later) == ["skipped", "skipped"]
    assert push_service.server.received == []
    assert set(PushAttempt.objects.values_list("outcome", flat=True)) == {"skipped"}


def test_p3_items_of_one_category_become_one_merged_push(alice, browser, push_service):
    browser(alice)
    for n in range(3):
        notify(alice, f"Announcement {n}", priority="P3", category="announcement")
    notify(alice, "Other news", priority="P3", category="news")
    later = timezone.now() + dt.timedelta(seconds=11)
    assert push_dispatch(now=later).jobs == 2
    run_jobs(now=later)
    by_title = {document["title"]: document for document in push_service.documents}
    merged = by_title["3 new announcements"]
    assert (merged["type"], merged["count"]) == ("batch", 3)
    assert [item["data"]["title"] for item in merged["items"]] == [
        "Announcement 0",
        "Announcement 1",
        "Announcement 2",
    ]
    assert merged["last"] == merged["items"][-1]
    assert by_title["Other news"]["type"] == "notification"
    topics = {received.headers.get("topic") for received in push_service.server.received}
    assert len(topics) == 2
    assert None not in topics
    assert all(received.headers["urgency"] == "low" for received in push_service.server.received)


def test_a_gone_subscription_deactivates_the_device_with_the_reason(alice, browser, push_service):
    device = browser(alice)
    push_service.server.respond = lambda request: Reply(410)
    notify(alice, priority="P0", category="alert")
    push_dispatch(now=timezone.now())
    assert run_jobs(now=timezone.now()) == ["failed"]
    device.refresh_from_db()
    assert not device.active
    assert "gone" in device.deactivated_reason
    assert PushAttempt.objects.get().outcome == "deactivated"
    notify(alice, priority="P0", category="alert")
    assert push_dispatch(now=timezone.now()).jobs == 0


def test_a_temporary_failure_is_retried_after_the_services_retry_after(
    alice, browser, push_service, settings
):
    settings.IMS_PUSH_MAX_RETRIES = 1
    browser(alice)
    push_service.server.respond = lambda request: Reply(503, headers={"Retry-After": "120"})
    notify(alice, priority="P0", category="alert")
    now = timezone.now()
    push_dispatch(now=now)
    job = PushJob.objects.get()
    outcome = push_job_send(job_id=job.pk, now=now)
    assert outcome.state == "retrying"
    assert outcome.retry_in_seconds >= 120
    assert push_job_send(job_id=job.pk, now=now).state == "failed"
    assert list(PushAttempt.objects.order_by("pk").values_list("outcome", "status_code")) == [
        ("retry", 503),
        ("failed", 503),
    ]
    assert Device.objects.get().active


def test_a_push_task_run_twice_pushes_once(alice, browser, push_service):
    browser(alice)
    notify(alice, priority="P0", category="alert")
    push_dispatch(now=timezone.now())
    job = PushJob.objects.get()
    assert push_job_send(job_id=job.pk).state == "sent"
    assert push_job_send(job_id=job.pk).state == "sent"
    assert push_dispatch(now=timezone.now() + dt.timedelta(seconds=30)).jobs == 0
    assert len(push_service.server.received) == 1


def test_an_unacked_p0_climbs_the_ladder_every_device_again_then_sms_until_acked(
    alice, browser, push_service, sms_gateway
):
    browser(alice)
    device_register(user_id=alice.pk, kind="sms", phone="+4915112345678")
    notify(alice, "Data centre on fire", priority="P0", category="alert", content="Evacuate hall B")
    start = timezone.now()
    push_dispatch(now=start)
    run_jobs(now=start)
    assert len(push_service.server.received) == 1
    assert sms_gateway.received == []
    assert push_dispatch(now=start + dt.timedelta(seconds=30)).escalated == 0
    assert push_dispatch(now=start + dt.timedelta(seconds=61)).escalated == 1
    run_jobs(now=start + dt.timedelta(seconds=61))
    assert len(push_service.server.received) == 2
    assert sms_gateway.received == []
    assert push_dispatch(now=start + dt.timedelta(seconds=122)).escalated == 1
    run_jobs(now=start + dt.timedelta(seconds=122))
    (sms,) = sms_gateway.received
    assert sms.json()["to"] == "+4915112345678"
    assert sms.json()["text"] == "Data centre on fire: Evacuate hall B"
    assert push_dispatch(now=start + dt.timedelta(hours=1)).escalated == 0
    assert list(PushAttempt.objects.order_by("pk").values_list("rung", "provider", "outcome")) == [
        (0, "webpush", "sent"),
        (1, "webpush", "sent"),
        (2, "sms", "sent"),
    ]


def test_an_acked_p0_stops_climbing(alice, browser, push_service, sms_gateway):
    browser(alice)
    device_register(user_id=alice.pk, kind="sms", phone="+4915112345678")
    notify(alice, priority="P0", category="security")
    start = timezone.now()
    push_dispatch(now=start)
    run_jobs(now=start)
    items_ack(user_id=alice.pk, seqs=[1])
    assert push_dispatch(now=start + dt.timedelta(seconds=61)).escalated == 0
    assert push_dispatch(now=start + dt.timedelta(seconds=200)).escalated == 0
    assert len(push_service.server.received) == 1
    assert sms_gateway.received == []


def test_sms_is_never_used_below_p0(alice, sms_gateway):
    device_register(user_id=alice.pk, kind="sms", phone="+4915112345678")
    notify(alice, priority="P1")
    assert push_dispatch(now=timezone.now() + dt.timedelta(minutes=5)).jobs == 0
    assert sms_gateway.received == []


def test_quiet_hours_defer_pushes_to_their_end_then_send_them_merged_but_p0_goes_through(
    alice, browser, push_service
):
    browser(alice)
    preferences_update(
        user_id=alice.pk, time_zone="Europe/Berlin", quiet_hours={"start": "22:00", "end": "07:00"}
    )
    # 23:30 in Berlin (CET, UTC+1) on a winter night.
    night = dt.datetime(2026, 1, 15, 22, 30, tzinfo=dt.UTC)
    for title in ("Approve leave", "Approve budget"):
        send_notification([alice], title, "", priority="P2", category="approval")
    notify(alice, "Server down", priority="P0", category="alert")
    StreamItem.objects.update(created_at=night)
    PendingItem.objects.update(created_at=night)
    push_dispatch(now=night + dt.timedelta(seconds=11))
    run_jobs(now=night + dt.timedelta(seconds=11))
    assert [document["title"] for document in push_service.documents] == ["Server down"]
    morning = dt.datetime(2026, 1, 16, 6, 0, tzinfo=dt.UTC)  # 07:00 in Berlin
    assert push_dispatch(now=morning - dt.timedelta(minutes=1)).released == 0
    assert push_dispatch(now=morning).released == 1
    run_jobs(now=morning)
    merged = push_service.documents[1]
    assert (merged["title"], merged["type"], merged["count"]) == ("2 new approvals", "batch", 2)
    assert merged.get("silent") is True


def test_a_muted_conversation_is_not_pushed_but_still_delivered(alice, bob, browser, push_service):
    browser(alice)
    message = send_message(bob, alice, "psst")
    conversation_mute(user_id=alice.pk, conversation_id=message.conversation_id)
    send_message(bob, alice, "still muted")
    assert push_dispatch(now=timezone.now() + dt.timedelta(seconds=11)).jobs == 0
    assert PendingItem.objects.filter(user=alice).count() == 2
    assert push_service.server.received == []


def test_expired_items_are_counted_per_purge_and_their_pending_pushes_never_go_out(
    alice, browser, push_service, settings
):
    browser(alice)
    notify(alice)
    later = timezone.now() + dt.timedelta(seconds=11)
    push_dispatch(now=later)
    expiry = timezone.now() + dt.timedelta(days=settings.IMS_OFFLINE_TTL_DAYS, seconds=1)
    assert stream_purge_expired(now=expiry)[0] == 1
    run = ExpiryRun.objects.get()
    assert (run.pending_expired, run.ran_at) == (1, expiry)
    assert run_jobs(now=expiry) == ["skipped"]
    assert push_service.server.received == []


def test_a_job_whose_task_was_lost_is_enqueued_again_after_its_lease(alice, browser, settings):
    browser(alice)
    notify(alice)
    now = timezone.now() + dt.timedelta(seconds=11)
    push_dispatch(now=now)
    PushJob.objects.update(state=PushJob.State.SENDING)  # its worker died mid-request
    assert push_dispatch(now=now + dt.timedelta(seconds=10)).requeued == 0
    assert push_dispatch(now=now + dt.timedelta(seconds=settings.IMS_PUSH_LEASE_SECONDS + 1)).requeued == 1
    assert PushJob.objects.get().state == "queued"


# --- deactivated users -----------------------------------------------------------------------


def deactivate(user) -> None:
    user.is_active = False
    user.save()


def test_a_deactivated_user_is_claimed_nothing_new_and_their_p0_climbs_no_further(
    alice, browser, push_service, sms_gateway
):
    browser(alice)
    device_register(user_id=alice.pk, kind="sms", phone="+4915112345678")
    notify(alice, "Data centre on fire", priority="P0", category="alert")
    start = timezone.now()
    push_dispatch(now=start)
    assert run_jobs(now=start) == ["sent"]
    notify(alice, "Still waiting out its grace", priority="P1")
    deactivate(alice)
    for seconds in (61, 122, 3600):
        report = push_dispatch(now=start + dt.timedelta(seconds=seconds))
        assert (report.claimed, report.jobs, report.escalated) == (0, 0, 0)
        assert run_jobs(now=start + dt.timedelta(seconds=seconds)) == []
    assert len(push_service.server.received) == 1
    assert sms_gateway.received == []
    assert PushClaim.objects.get().next_escalation_at is None
    # Nothing is lost: both items wait, pending, for a connection should the user come back.
    assert PendingItem.objects.filter(user=alice).count() == 2


def test_a_deactivated_users_queued_deferred_and_retrying_pushes_end_skipped_with_the_reason(
    alice, browser, push_service
):
    browser(alice, path="/push/laptop")
    browser(alice, path="/push/flaky")
    push_service.server.respond = lambda request: (
        Reply(503) if request.path == "/push/flaky" else push_service(request)
    )
    preferences_update(
        user_id=alice.pk, time_zone="Europe/Berlin", quiet_hours={"start": "22:00", "end": "07:00"}
    )
    night = dt.datetime(2026, 1, 15, 22, 30, tzinfo=dt.UTC)  # 23:30 in Berlin
    notify(alice, "First alarm", priority="P0", category="alert")
    notify(alice, "Approve leave", priority="P2", category="approval")
    StreamItem.objects.update(created_at=night)
    PendingItem.objects.update(created_at=night)
    push_dispatch(now=night + dt.timedelta(seconds=11))
    assert run_jobs(now=night + dt.timedelta(seconds=11)) == ["sent", "retrying"]
    notify(alice, "Second alarm", priority="P0", category="alert")
    push_dispatch(now=night + dt.timedelta(seconds=12))
    states = sorted(PushJob.objects.values_list("state", flat=True))
    assert states == ["deferred", "deferred", "queued", "queued", "retrying", "sent"]

    deactivate(alice)
    assert push_dispatch(now=night + dt.timedelta(seconds=13)).skipped_inactive == 5

    ended = PushJob.objects.exclude(state=PushJob.State.SENT)
    assert set(ended.values_list("state", "last_error")) == {("skipped", USER_INACTIVE)}
    skipped = PushAttempt.objects.filter(outcome="skipped")
    assert sorted(skipped.values_list("job_id", flat=True)) == sorted(ended.values_list("pk", flat=True))
    assert set(skipped.values_list("error", flat=True)) == {USER_INACTIVE}
    retried = PushJob.objects.get(device__address__endswith="/push/flaky", rung=0, item__seq=1)
    assert push_job_send(job_id=retried.pk, now=night + dt.timedelta(minutes=5)).state == "skipped"
    morning = dt.datetime(2026, 1, 16, 6, 0, tzinfo=dt.UTC)
    assert push_dispatch(now=morning).released == 0
    assert [received.path for received in push_service.server.received] == ["/push/laptop", "/push/flaky"]


def test_a_user_deactivated_after_their_push_was_queued_is_not_pushed(alice, browser, push_service):
    browser(alice)
    notify(alice, "Intrusion detected", priority="P0", category="security")
    push_dispatch(now=timezone.now())
    job = PushJob.objects.get()
    deactivate(alice)
    assert push_job_send(job_id=job.pk).state == "skipped"
    assert push_service.server.received == []
    attempt = PushAttempt.objects.get()
    assert (attempt.outcome, attempt.error) == ("skipped", USER_INACTIVE)
