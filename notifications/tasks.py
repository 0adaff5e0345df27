"""Celery tasks of notifications: thin, each calls one service."""

from __future__ import annotations

import dataclasses
import logging

from celery import shared_task

from notifications.services.dispatch import push_dispatch
from notifications.services.push import push_job_send

logger = logging.getLogger(__name__)


@shared_task
def dispatch_push() -> dict[str, int]:
    """Run by beat every IMS_DISPATCH_INTERVAL_SECONDS and on commit of a P0 item."""
    return dataclasses.asdict(push_dispatch())


# acks_late + reject_on_worker_lost: a worker that dies mid-task leaves the message to be
# delivered again; the job's state makes the second run push nothing twice.
@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def send_push(self, job_id: int) -> str:
    outcome = push_job_send(job_id=job_id)
    if outcome.retry_in_seconds is not None:
        raise self.retry(countdown=outcome.retry_in_seconds)
    return outcome.state
