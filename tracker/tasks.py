"""Celery tasks: thin wrappers that call one service each (the sweep, digests, webhooks, imports)."""

from __future__ import annotations

import datetime

from celery import Task, shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import OperationalError
from django.utils import timezone

from tracker.services import flags, imports, webhooks


@shared_task(
    autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=600, max_retries=5, acks_late=True
)
def sweep_deadlines(today: str | None = None) -> dict[str, int]:
    """Run the deadline sweep for `today` (ISO date), or for the current local date."""
    day = datetime.date.fromisoformat(today) if today else timezone.localdate()
    result = flags.sweep_deadlines(today=day)
    return {"flagged": result.flagged, "escalated": result.escalated, "reminded": result.reminded,
            "resolved": result.resolved}


@shared_task(
    autoretry_for=(OperationalError, ConnectionError, TimeoutError), retry_backoff=True, retry_backoff_max=600,
    max_retries=5, acks_late=True,
)
def send_flag_digests() -> dict[str, int]:
    """Email every assignee the flags raised or escalated on their cases since the last digest."""
    result = flags.send_flag_digests()
    return {"emails": result.emails, "flags": result.flags}


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5, acks_late=True)
def dispatch_outbox() -> int:
    """Fan pending outbox events out to deliveries, and queue each delivery on its own."""
    made = 0
    # Until the outbox is empty: a batch of events no one may hear of makes no delivery but is no end.
    while (fanned := webhooks.fan_out(batch=webhooks.FAN_OUT_BATCH)).events:
        for delivery_id in fanned.deliveries:
            deliver_webhook.delay(delivery_id)
        made += len(fanned.deliveries)
    return made


@shared_task(bind=True, acks_late=True, max_retries=None)
def deliver_webhook(self: Task, delivery_id: int) -> str:
    """One attempt; a failed one is tried again later with a growing delay, up to the attempt limit.
    Each delivery is its own task, so a slow or failing receiver holds up no other."""
    outcome = webhooks.attempt_delivery(delivery_id)
    if outcome == "retry":
        raise self.retry(countdown=webhooks.retry_delay(self.request.retries + 1))
    return outcome


@shared_task(acks_late=True)
def redeliver_stale_webhooks() -> int:
    """Safety net for work lost with a worker: fan out what is pending, re-queue stale deliveries."""
    dispatch_outbox.delay()
    stale = webhooks.stale_pending_deliveries(older_than=datetime.timedelta(hours=1))
    for delivery_id in stale:
        deliver_webhook.delay(delivery_id)
    return len(stale)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3, acks_late=True)
def validate_import(batch_id: int) -> str:
    """Check and match a large uploaded file; the admin page follows its progress."""
    return imports.import_batch_validate(batch_id=batch_id).status


@shared_task(acks_late=True)
def run_import(batch_id: int, actor_id: int | None = None) -> str:
    """Write a confirmed large import. Safe to run again: a finished batch is left as it is, and a
    batch whose worker died mid-way was rolled back and is written afresh."""
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    return imports.import_batch_run(batch_id=batch_id, actor=actor).status


@shared_task(acks_late=True)
def resume_stale_imports() -> dict[str, int]:
    """Safety net for imports whose job was never queued (the broker was down) or was lost with a
    worker: each is queued again; running it twice is harmless (see `stale_import_batches`)."""
    stale = imports.stale_import_batches(older_than=datetime.timedelta(minutes=settings.TRACKER_IMPORT_STALE_MINUTES))
    for batch_id in stale.to_validate:
        validate_import.delay(batch_id)
    for batch_id, actor_id in stale.to_run:
        run_import.delay(batch_id, actor_id)
    return {"validate": len(stale.to_validate), "run": len(stale.to_run)}


@shared_task(acks_late=True)
def expire_import_files() -> int:
    """Delete the uploaded files past their retention period (TRACKER_IMPORT_FILE_RETENTION_DAYS)."""
    return imports.import_files_expire()
