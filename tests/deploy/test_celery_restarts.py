"""Restarting Celery as the kit's units do (SIGTERM to the main process, KillMode=mixed):
the worker's warm shutdown finishes the push under way, and beat picks its schedule up
again, so the dispatcher still runs and nothing is pushed twice."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from messaging.models import User
from notifications import vapid
from notifications.api import send_notification
from notifications.models import PushAttempt, PushJob
from notifications.services.devices import device_register
from tests.deploy.kit import UnitProcess, unit_command
from tests.e2e.harness import RedisProcess, database_url, wait_until
from tests.factories import UserFactory
from tests.notifications.providers.servers import LOCAL_PUSH_ENV, Received, Reply, http_server
from tests.notifications.providers.test_webpush import VAPID_KEY, PushService

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

WAIT_SECONDS = 30.0
# The dispatcher runs every second and an item is due 1 s after it was stored.
FAST = {"IMS_DISPATCH_INTERVAL_SECONDS": "1", "IMS_PUSH_GRACE_SECONDS": "1"}


class Celery:
    """The kit's worker and beat on a broker of their own (a private Redis: other test runs
    on this machine consume from the shared one)."""

    def __init__(self, folder: Path, push_service: PushService) -> None:
        self.redis = RedisProcess()
        self.redis.start()
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": self.redis.url,
            "CELERY_BROKER_URL": self.redis.url,
            "IMS_VAR_DIR": str(folder),
            "IMS_VAPID_PRIVATE_KEY": vapid.private_key_b64url(VAPID_KEY),
            "IMS_VAPID_SUBJECT": "mailto:ops@example.com",
            "IMS_PUSH_TIMEOUT_SECONDS": "30",
            "PYTHONUNBUFFERED": "1",
            **LOCAL_PUSH_ENV,
            **FAST,
        }
        self.worker = UnitProcess(
            unit_command("ims-celery-worker.service"), env=env, log=folder / "worker.log", ready=" ready."
        )
        self.beat = UnitProcess(
            unit_command("ims-celery-beat.service"), env=env, log=folder / "beat.log", ready="beat: Starting"
        )

    def dispatches(self) -> int:
        """How often beat has sent the dispatcher so far."""
        return self.beat.output().count("Sending due task dispatch-push")

    def stop(self) -> None:
        self.worker.kill()
        self.beat.kill()
        self.redis.kill()


@pytest.fixture
def push_service() -> Iterator[PushService]:
    service = PushService()
    with http_server(service) as server:
        service.server = server
        yield service


@pytest.fixture
def celery(tmp_path: Path, push_service: PushService) -> Iterator[Celery]:
    processes = Celery(tmp_path, push_service)
    yield processes
    processes.stop()


def offline_user_with_a_browser(push_service: PushService) -> User:
    alice = UserFactory(username="alice")
    device_register(
        user_id=alice.pk,
        kind="webpush",
        subscription={"endpoint": f"{push_service.server.url}/push/alice", "keys": push_service.keys},
    )
    return alice


def test_sigterm_to_the_worker_finishes_the_push_under_way_then_exits_0(
    celery, push_service, local_push_endpoints
):
    alice = offline_user_with_a_browser(push_service)
    in_flight, release = threading.Event(), threading.Event()

    def answer_when_released(request: Received) -> Reply:
        in_flight.set()
        release.wait(WAIT_SECONDS)
        return push_service(request)

    push_service.server.respond = answer_when_released
    celery.worker.start()
    celery.beat.start()
    send_notification([alice], "Approve the budget", "", priority="P2", category="approval")
    assert in_flight.wait(WAIT_SECONDS), celery.worker.output()

    stopping = threading.Thread(target=celery.worker.terminate)
    stopping.start()
    time.sleep(1)  # the worker is in its warm shutdown, the push still on the wire
    assert celery.worker.process.poll() is None, "the worker quit with a push under way"
    release.set()
    stopping.join(timeout=WAIT_SECONDS)

    assert celery.worker.process.returncode == 0, celery.worker.output()
    assert "Warm shutdown" in celery.worker.output()
    assert PushJob.objects.get().state == "sent"
    assert PushAttempt.objects.filter(outcome="sent").count() == 1
    assert [document["data"]["title"] for document in push_service.documents] == ["Approve the budget"]


def test_beat_restarted_runs_the_dispatcher_again_and_pushes_once(celery, push_service, local_push_endpoints):
    alice = offline_user_with_a_browser(push_service)
    celery.worker.start()
    celery.beat.start()
    wait_until(lambda: celery.dispatches() >= 2, timeout=WAIT_SECONDS, what="beat's first dispatches")
    assert celery.beat.terminate() == 0, celery.beat.output()

    # Due while beat is down: nothing dispatches it ...
    send_notification([alice], "Sign the contract", "", priority="P2", category="approval")
    time.sleep(2.5)
    assert push_service.documents == []

    # ... until beat is back, reading its schedule where it left it.
    before = celery.dispatches()
    restarted = time.monotonic()
    celery.beat.start()
    wait_until(
        lambda: push_service.documents, timeout=WAIT_SECONDS, what=f"the push\n{celery.worker.output()}"
    )
    time.sleep(2)  # more dispatcher runs: none pushes it again
    assert [document["data"]["title"] for document in push_service.documents] == ["Sign the contract"]
    # Once a second, as scheduled: no burst making up for the runs missed while it was down.
    runs = celery.dispatches() - before
    assert 2 <= runs <= time.monotonic() - restarted + 2, celery.beat.output()
