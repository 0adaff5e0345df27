"""How loud a push is, from the stored item to what a browser receives: the priority travels
from the item through dispatch and content.py to the push document, against a real local
Web Push service. Tasks are called directly, as a worker would run them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from messaging.api import send_message
from notifications.api import send_notification
from notifications.models import PushJob
from notifications.services.dispatch import push_dispatch
from notifications.services.push import push_job_send

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("push_settings")]


def push_everything(*, now: dt.datetime) -> None:
    """Dispatch what is due, then run every queued job once."""
    push_dispatch(now=now)
    for job_id in (
        PushJob.objects.filter(state=PushJob.State.QUEUED).order_by("pk").values_list("pk", flat=True)
    ):
        push_job_send(job_id=job_id, now=now)


@pytest.mark.parametrize(
    ("priority", "category", "urgency", "silent"),
    [
        ("P0", "security", "high", False),
        ("P1", "mention", "normal", False),
        ("P2", "approval", "normal", True),
        ("P3", "announcement", "low", True),
    ],
)
def test_a_notification_is_pushed_as_loud_as_its_priority(
    alice, browser, push_service, priority, category, urgency, silent
):
    browser(alice)
    send_notification([alice], "Quarterly review", "Room 4, 10:00", priority=priority, category=category)
    push_everything(now=timezone.now() + dt.timedelta(minutes=1))
    (document,) = push_service.documents
    assert (document["title"], document["body"]) == ("Quarterly review", "Room 4, 10:00")
    assert (document["priority"], document["silent"]) == (priority, silent)
    assert ("vibrate" in document) is not silent
    assert push_service.server.received[0].headers["urgency"] == urgency


def test_a_p2_push_is_shown_without_sound_or_vibration(alice, browser, push_service):
    browser(alice)
    send_notification([alice], "Approve leave", "Bob, 3 days", priority="P2", category="approval")
    push_everything(now=timezone.now() + dt.timedelta(minutes=1))
    (document,) = push_service.documents
    assert document["title"] == "Approve leave"
    assert document["silent"] is True
    assert "vibrate" not in document
    assert document["require_interaction"] is False


def test_a_chat_message_vibrates(alice, bob, browser, push_service):
    browser(alice)
    send_message(bob, alice, "Lunch?")
    push_everything(now=timezone.now() + dt.timedelta(minutes=1))
    (document,) = push_service.documents
    assert (document["type"], document["priority"], document["silent"]) == ("message", "P1", False)
    assert document["vibrate"] == [200, 100, 200]
