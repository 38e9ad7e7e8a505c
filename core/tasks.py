"""Queueing Celery tasks so that a broker outage never turns a saved write into an error page.

A write that has committed must say it succeeded even when the job it would start cannot be queued
now; the work it leaves behind is found by the periodic safety nets (`resume_stale_imports`, the
outbox's `redeliver_stale_webhooks`) once the broker is back.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerUnreachable
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
QUEUEING_FAILED = (BrokerUnreachable, RedisError, ConnectionError, TimeoutError, OSError)


def enqueue(task: Task, *args: Any, **kwargs: Any) -> bool:
    """Queue `task` now; False (and a warning in the log) when the broker cannot be reached."""
    try:
        task.apply_async(args=args, kwargs=kwargs)
    except QUEUEING_FAILED as error:
        log.warning("could not queue %s%r: %s: %s; a periodic job will pick the work up", task.name, args,
                    type(error).__name__, error)
        return False
    return True


def enqueue_on_commit(task: Task, *args: Any, **kwargs: Any) -> None:
    """Queue `task` once the current transaction commits (never for a write that rolls back)."""
    transaction.on_commit(lambda: enqueue(task, *args, **kwargs))
