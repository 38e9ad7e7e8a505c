"""The Celery app: configured from Django settings under the CELERY namespace."""

import logging.config
import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def hand_connections_back(sender: Any = None, **kwargs: Any) -> None:
    """Around each task, as Django does around each request: a connection goes back to the pool, and one
    broken (a database restart) is dropped, so the next task is handed a checked one. Celery's own
    handling closes the whole pool instead, a new database session per task (CELERY_DB_REUSE_MAX).
    A task run in the caller's process (`apply`) shares the caller's connection and transaction."""
    from django.db import close_old_connections

    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    close_old_connections()


@setup_logging.connect
def use_django_logging(**kwargs: Any) -> None:
    """Workers and beat log as the web does, through the settings' LOGGING (core.logs): with a receiver
    of this signal connected, Celery neither replaces the root logger's handlers nor redirects stdout.
    The level is the settings' LOG_LEVEL; the command line's --loglevel is not used."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
