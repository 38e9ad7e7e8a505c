"""The Celery app: configured from Django settings under the CELERY namespace."""

import logging.config
import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def use_django_logging(**kwargs: Any) -> None:
    """Workers and beat log as the web does, through the settings' LOGGING (core.logs): with a receiver
    of this signal connected, Celery neither replaces the root logger's handlers nor redirects stdout.
    The level is the settings' LOG_LEVEL; the command line's --loglevel is not used."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
