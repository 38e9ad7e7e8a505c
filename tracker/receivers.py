"""Receivers of the signals other modules send; connected when the app is ready (`TrackerConfig.ready`).

The exchange and the cases app raise domain events without knowing who listens; here the list
entries follow a merged child, and the partners' outbox hears of status changes, replies and flags.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from cases.models import Case, CaseEvent, Child
from cases.services import (
    case_add_event,
)
from cases.signals import case_status_changed, child_merged
from tracker.events import flags_swept, reply_recorded
from tracker.models import (
    Flag,
    ListEntry,
)
from tracker.services import webhooks
from tracker.tasks import dispatch_outbox


@receiver(child_merged)
def entries_follow_merged_child(sender: Any, keep: Child, merged: Child, actor: User | None,
                                **kwargs: Any) -> None:
    """A merged child's list entries move to the child kept, in the merge's transaction.

    Where both children were on the same list, the kept child's entry stays the list's entry for
    that child (a child appears once per list). The duplicate's entry is kept as it was, on the
    merged record, with its reply if it had one; if it was still awaiting a reply it is withdrawn
    and its open flags resolved, so that no one chases the same child twice.
    """
    both_on = set(ListEntry.objects.filter(child=keep).values_list("handover_list_id", flat=True))
    moved = ListEntry.objects.filter(child=merged).exclude(handover_list_id__in=both_on)
    for entry in moved:
        entry.child = keep
        entry._change_reason = f"Child {merged.pk} merged into child {keep.pk}"  # type: ignore[attr-defined]
        entry.save(update_fields=["child", "updated_at"])
    for entry in ListEntry.objects.filter(child=merged, handover_list_id__in=both_on).select_related(
        "handover_list", "case"
    ):
        message = (f"{entry.handover_list.reference} #{entry.position} was a duplicate of the kept child's entry "
                   f"on the same list")
        if entry.reply_state in (ListEntry.ReplyState.AWAITING, ListEntry.ReplyState.NOT_SENT):
            entry.reply_state = ListEntry.ReplyState.WITHDRAWN
            entry._change_reason = message[:100]  # type: ignore[attr-defined]
            entry.save(update_fields=["reply_state", "updated_at"])
            Flag.objects.filter(entry=entry, resolved_at__isnull=True).update(
                resolved_at=timezone.now(), resolution=Flag.Resolution.WITHDRAWN, resolved_by=actor
            )
            message += "; withdrawn"
        case_add_event(case=entry.case, kind=CaseEvent.Kind.NOTE, actor=actor, message=message,
                       data={"list": entry.handover_list.reference, "entry": entry.pk})


def _dispatch_after_commit(written: int) -> None:
    if written:
        transaction.on_commit(dispatch_outbox.delay)


@receiver(case_status_changed)
def outbox_hears_status_changes(sender: Any, changes: list[tuple[Case, str, str]], **kwargs: Any) -> None:
    _dispatch_after_commit(webhooks.record_status_events(changes) if changes else 0)


@receiver(reply_recorded)
def outbox_hears_replies(sender: Any, reply_id: int, answered: list[tuple[int, int, str]], **kwargs: Any) -> None:
    _dispatch_after_commit(webhooks.record_reply_events(reply_id=reply_id, answered=answered))


@receiver(flags_swept)
def outbox_hears_flags(sender: Any, raised_at: datetime.datetime, escalated_at: datetime.datetime,
                       **kwargs: Any) -> None:
    _dispatch_after_commit(webhooks.record_flag_events(raised_at=raised_at, escalated_at=escalated_at))
