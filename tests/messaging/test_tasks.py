"""Celery beat tasks of messaging, called directly (a real worker runs in integration tests)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.conf import settings
from django.utils import timezone

from imsproject.celery import app
from messaging import tasks
from messaging.api import send_message
from messaging.models import Connection, Message, PendingItem, StreamItem


def test_beat_runs_tasks_that_exist_under_the_names_it_schedules():
    app.loader.import_default_modules()

    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks, entry

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {tasks.purge_expired.name, tasks.reap_stale_connections.name} <= scheduled


@pytest.mark.django_db
def test_purge_expired_drops_expired_pending_entries_and_old_items_but_keeps_messages(
    alice, bob, caplog: pytest.LogCaptureFixture
):
    old = send_message(alice, bob, "from long ago")
    recent = send_message(alice, bob, "from today")
    long_ago = timezone.now() - dt.timedelta(days=settings.IMS_STREAM_RETENTION_DAYS + 1)
    StreamItem.objects.filter(message=old).update(created_at=long_ago)
    PendingItem.objects.filter(item__message=old).update(expires_at=long_ago)
    PendingItem.objects.filter(item__message=recent).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )

    with caplog.at_level(logging.INFO, logger="messaging.tasks"):
        result = tasks.purge_expired()

    assert result == {"pending": 2, "items": 2}
    assert not PendingItem.objects.exists()
    assert list(StreamItem.objects.values_list("message", flat=True).distinct()) == [recent.pk]
    assert Message.objects.count() == 2
    assert "purged 2 expired pending entries and 2 old stream items" in caplog.text


@pytest.mark.django_db
def test_purge_expired_with_nothing_to_do_reports_zeros(alice, bob):
    send_message(alice, bob, "fresh")

    assert tasks.purge_expired() == {"pending": 0, "items": 0}
    assert PendingItem.objects.count() == 1


@pytest.mark.django_db
def test_purge_expired_runs_through_celery_apply(alice, bob):
    send_message(alice, bob, "fresh")
    PendingItem.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    # apply() runs the task in this process the way a worker would, with Celery's wrapping.
    assert tasks.purge_expired.apply().get() == {"pending": 1, "items": 0}


@pytest.mark.django_db
def test_reap_stale_connections_counts_the_users_who_went_offline(alice, bob, carol):
    stale = timezone.now() - dt.timedelta(seconds=2 * settings.IMS_HEARTBEAT_SECONDS + 1)
    Connection.objects.create(user=alice, channel_name="a", last_seen_at=stale)
    Connection.objects.create(user=bob, channel_name="b1", last_seen_at=stale)
    Connection.objects.create(user=bob, channel_name="b2", last_seen_at=timezone.now())
    Connection.objects.create(user=carol, channel_name="c", last_seen_at=timezone.now())

    assert tasks.reap_stale_connections() == 1

    assert set(Connection.objects.values_list("channel_name", flat=True)) == {"b2", "c"}
    assert tasks.reap_stale_connections() == 0
