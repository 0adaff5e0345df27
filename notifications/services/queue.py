"""Handing push work to Celery, always after commit (a task must find the rows it names)."""

from __future__ import annotations

from collections.abc import Sequence

from celery import current_app
from django.db import transaction

SEND_PUSH_TASK = "notifications.tasks.send_push"
DISPATCH_TASK = "notifications.tasks.dispatch_push"


def enqueue_push_jobs_on_commit(job_ids: Sequence[int]) -> None:
    """One send_push task per job once the transaction commits; nothing if it rolls back.
    A task lost on the way (broker down, worker killed) is enqueued again by the dispatcher."""
    ids = list(job_ids)
    if ids:
        transaction.on_commit(
            lambda: [current_app.send_task(SEND_PUSH_TASK, args=[job_id]) for job_id in ids]
        )


def enqueue_dispatch_on_commit() -> None:
    """Run the dispatcher right after this commit, not at its next beat (P0 goes at once)."""
    transaction.on_commit(lambda: current_app.send_task(DISPATCH_TASK))
