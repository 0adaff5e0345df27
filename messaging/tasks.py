"""Periodic upkeep, run by Celery beat (imsproject.settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import logging

from celery import shared_task

from messaging.services.presence import connections_reap_stale
from messaging.services.signin import signin_failures_purge
from messaging.services.stream import stream_purge_expired

logger = logging.getLogger(__name__)


@shared_task
def purge_expired() -> dict[str, int]:
    pending, items = stream_purge_expired()
    logger.info("purged %d expired pending entries and %d old stream items", pending, items)
    return {"pending": pending, "items": items}


@shared_task
def reap_stale_connections() -> int:
    return connections_reap_stale()


@shared_task
def forget_old_signin_failures() -> int:
    return signin_failures_purge()
