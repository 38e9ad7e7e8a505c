"""Celery tasks for the deadline jobs: thin wrappers that call the plain functions in deadlines."""

from __future__ import annotations

import datetime

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from tracker import deadlines


@shared_task(
    autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=600, max_retries=5, acks_late=True
)
def sweep_deadlines(today: str | None = None) -> dict[str, int]:
    """Run the deadline sweep for `today` (ISO date), or for the current local date."""
    day = datetime.date.fromisoformat(today) if today else timezone.localdate()
    result = deadlines.sweep_deadlines(today=day)
    return {"flagged": result.flagged, "escalated": result.escalated, "reminded": result.reminded,
            "resolved": result.resolved}


@shared_task(
    autoretry_for=(OperationalError, ConnectionError, TimeoutError), retry_backoff=True, retry_backoff_max=600,
    max_retries=5, acks_late=True,
)
def send_flag_digests() -> dict[str, int]:
    """Email every assignee the flags raised or escalated on their cases since the last digest."""
    result = deadlines.send_flag_digests()
    return {"emails": result.emails, "flags": result.flags}
