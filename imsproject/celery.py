"""The Celery app: tasks are discovered in each app's tasks.py."""

import gc
import os
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imsproject.settings")

app = Celery("imsproject")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect  # a solo or threads pool: the worker's own process
@worker_process_init.connect  # each process of a prefork pool
def freeze_startup_objects(**kwargs: Any) -> None:
    """As imsproject.asgi does: the worker's startup objects leave the collector's scans."""
    gc.freeze()
