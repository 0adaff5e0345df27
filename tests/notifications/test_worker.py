"""Push through a REAL Celery worker on the suite's broker (the filesystem one on the embedded
default, Redis when REDIS_URL is set) to a real local Web Push service, including a worker
killed with SIGKILL while its push request is on the wire."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import current_app
from django.utils import timezone

from notifications import vapid
from notifications.api import send_notification
from notifications.models import PushAttempt, PushJob
from notifications.services.dispatch import push_dispatch
from notifications.services.push import USER_INACTIVE
from tests.e2e.harness import wait_until
from tests.notifications.providers.servers import LOCAL_PUSH_ENV, Received, Reply
from tests.notifications.providers.test_webpush import VAPID_KEY, PushService
from tests.notifications.worker import CeleryWorker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("push_settings")]
WAIT_SECONDS = 30.0


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[CeleryWorker]:
    """A worker on the default queue, emptied first of what earlier tests enqueued (this
    run's own broker folder or Redis database)."""
    queue = current_app.conf.task_default_queue
    with current_app.connection_for_write() as connection:
        connection.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
        connection.default_channel.queue_purge(queue)
    env = {
        "IMS_VAPID_PRIVATE_KEY": vapid.private_key_b64url(VAPID_KEY),
        "IMS_VAPID_SUBJECT": "mailto:ops@example.com",
        # The push service below is a local server.
        **LOCAL_PUSH_ENV,
        # Longer than the delayed answer below: the request must still be in flight at the kill.
        "IMS_PUSH_TIMEOUT_SECONDS": "30",
        "IMS_P0_ESCALATE_SECONDS": "600",
        "IMS_SMS_BASE_URL": "",
        "IMS_FCM_SERVICE_ACCOUNT_FILE": "",
        "IMS_APNS_KEY_FILE": "",
    }
    celery = CeleryWorker(queue=queue, env=env, log_file=tmp_path / "worker.log")
    celery.start()
    yield celery
    celery.stop()


def test_a_p0_notification_reaches_a_browser_through_a_real_worker_at_once(
    alice, browser, push_service, worker
):
    browser(alice)
    notification = send_notification(
        [alice], "Database down", "db-1 unreachable", priority="P0", category="alert"
    )
    wait_until(lambda: push_service.documents, timeout=WAIT_SECONDS, what=f"the push\n{worker.log()}")
    (document,) = push_service.documents
    assert (document["type"], document["data"]["id"], document["title"]) == (
        "notification",
        notification.pk,
        "Database down",
    )
    wait_until(
        lambda: PushAttempt.objects.filter(outcome="sent").exists(), timeout=WAIT_SECONDS, what="the attempt"
    )
    assert PushJob.objects.get().state == "sent"


class HeldFirstPush:
    """The push service answers the first push only when released, and counts the pushes it
    accepted the way RFC 8030 section 5.4 says a push service keeps them: one per Topic."""

    def __init__(self, service: PushService) -> None:
        self.service = service
        self.in_flight = threading.Event()
        self.release = threading.Event()
        self.accepted_by_topic: dict[str | None, dict] = {}

    def __call__(self, request: Received) -> Reply:
        reply = self.service(request)
        if reply.status == 201:
            self.accepted_by_topic[request.headers.get("topic")] = self.service.documents[-1]
        if not self.in_flight.is_set():
            self.in_flight.set()
            self.release.wait(WAIT_SECONDS)
        return reply


def test_a_worker_killed_mid_push_pushes_exactly_once_after_restart(
    alice, browser, push_service, worker, settings
):
    browser(alice)
    held = HeldFirstPush(push_service)
    push_service.server.respond = held
    notification = send_notification([alice], "Badge cloned", "door 4", priority="P0", category="security")
    assert held.in_flight.wait(WAIT_SECONDS), worker.log()
    worker.kill()
    held.release.set()  # the answer goes to a dead socket
    job = PushJob.objects.get()
    assert job.state == "sending"
    worker.start()
    # The dispatcher (beat, in production) finds the job's lease run out and enqueues it again.
    later = timezone.now() + dt.timedelta(seconds=settings.IMS_PUSH_LEASE_SECONDS + 1)
    assert push_dispatch(now=later).requeued == 1
    wait_until(
        lambda: PushJob.objects.filter(pk=job.pk, state="sent").exists(),
        timeout=WAIT_SECONDS,
        what=f"the push after the restart\n{worker.log()}",
    )
    # At least once on the wire: the killed request and its repeat, under one Topic ...
    topics = [received.headers.get("topic") for received in push_service.server.received]
    assert len(topics) == 2
    assert topics[0] is not None
    assert topics[0] == topics[1]
    # ... so the push service holds, and the browser shows, exactly one.
    assert list(held.accepted_by_topic) == [topics[0]]
    assert held.accepted_by_topic[topics[0]]["data"]["id"] == notification.pk
    assert list(PushAttempt.objects.values_list("outcome", flat=True)) == ["sent"]


def test_a_user_deactivated_between_enqueue_and_the_task_is_not_pushed_by_the_worker(
    alice, browser, push_service, worker
):
    browser(alice)
    worker.stop()
    send_notification([alice], "Quarterly review", "", priority="P1", category="mention")
    # The dispatcher claims the item and enqueues its push task on commit; no worker runs it yet.
    assert push_dispatch(now=timezone.now() + dt.timedelta(seconds=11)).jobs == 1
    job = PushJob.objects.get()
    alice.is_active = False
    alice.save()
    worker.start()
    wait_until(
        lambda: PushJob.objects.filter(pk=job.pk, state="skipped").exists(),
        timeout=WAIT_SECONDS,
        what=f"the push task to refuse\n{worker.log()}",
    )
    assert push_service.server.received == []
    assert list(PushAttempt.objects.values_list("outcome", "error")) == [("skipped", USER_INACTIVE)]
