"""Receivers of the signals other modules send; connected when the app is ready (`TrackerConfig.ready`).

The exchange and the cases app raise domain events without knowing who listens; here the list
entries follow a merged child, and the partners' outbox hears of status changes, replies, flags and shares.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.apps import AppConfig
from django.apps import apps as project_apps
from django.contrib.auth.models import User
from django.db.models.signals import post_migrate
from django.dispatch import receiver
from django.utils import timezone

from cases.models import Case, CaseEvent, Child
from cases.services import cases_add_events
from cases.signals import case_status_changed, child_merged, children_anonymised
from core.audit import history_rewrite
from core.bulk import CHANGED, keys_in, record_history
from core.tasks import enqueue_on_commit
from tracker.events import flags_swept, reply_recorded, shares_changed
from tracker.models import (
    Flag,
    ImportRow,
    ListEntry,
    ReplyOutcome,
    ShareEvent,
)
from tracker.roles import roles_sync
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
    both_on = list(ListEntry.objects.filter(child=keep).values_list("handover_list_id", flat=True))
    now = timezone.now()
    reason = f"Child {merged.pk} merged into child {keep.pk}"
    moved = list(ListEntry.objects.filter(child=merged).exclude(handover_list_id__in=keys_in(both_on)).values_list(
        "pk", flat=True))
    if moved:
        ListEntry.objects.filter(pk__in=keys_in(moved)).update(child=keep, updated_at=now)
        record_history(ListEntry, moved, history_type=CHANGED, user=actor, reason=reason)
    staying = list(ListEntry.objects.filter(child=merged, handover_list_id__in=keys_in(both_on)).select_related(
        "handover_list").only("pk", "position", "reply_state", "case_id", "handover_list__reference"))
    withdrawn = [entry.pk for entry in staying if entry.reply_state in (ListEntry.ReplyState.AWAITING,
                                                                       ListEntry.ReplyState.NOT_SENT)]
    if withdrawn:
        ListEntry.objects.filter(pk__in=keys_in(withdrawn)).update(reply_state=ListEntry.ReplyState.WITHDRAWN,
                                                                    updated_at=now)
        record_history(ListEntry, withdrawn, history_type=CHANGED, user=actor,
                       reason="A duplicate of the kept child's entry on the same list; withdrawn")
        Flag.objects.filter(entry_id__in=keys_in(withdrawn), resolved_at__isnull=True).update(
            resolved_at=now, resolution=Flag.Resolution.WITHDRAWN, resolved_by=actor)
    cases_add_events(lines=[
        (entry.case_id,
         f"{entry.handover_list.reference} #{entry.position} was a duplicate of the kept child's entry on the same "
         f"list" + ("; withdrawn" if entry.pk in withdrawn else ""),
         {"list": entry.handover_list.reference, "entry": entry.pk})
        for entry in staying], kind=CaseEvent.Kind.NOTE, actor=actor)


def _dispatch_after_commit(written: int) -> None:
    if written:
        enqueue_on_commit(dispatch_outbox)


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


@receiver(shares_changed)
def outbox_hears_shares(sender: Any, events: list[ShareEvent], **kwargs: Any) -> None:
    _dispatch_after_commit(webhooks.record_share_events(events))


@receiver(children_anonymised)
def exchange_forgets_anonymised_children(sender: Any, child_ids: list[int], actor: User | None,
                                         **kwargs: Any) -> None:
    """What the exchange holds as free text about anonymised children is blanked, in the same
    transaction: what a reply said of them, a flag's note, the rows of the files they came in. The
    outcomes, states and dates stay, so every count holds."""
    entries = ListEntry.objects.filter(child_id__in=keys_in(child_ids))
    said = {"details": "", "reported_location": "", "verification_note": ""}
    ReplyOutcome.objects.filter(entry__in=entries).update(**said)
    with history_rewrite():
        ReplyOutcome.history.filter(entry_id__in=entries.values("pk")).update(**said)
    Flag.objects.filter(case__child_id__in=keys_in(child_ids)).update(note="")
    rows = list(ImportRow.objects.filter(child_id__in=keys_in(child_ids)).only("pk", "data"))
    for row in rows:
        row.data = {key: "" for key in row.data}
    ImportRow.objects.bulk_update(rows, ["data"], batch_size=1000)


@receiver(post_migrate, dispatch_uid="tracker.roles_follow_migrate")
def roles_follow_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """After every migrate (and a test database's flush), once the last app's permissions exist: the
    shipped groups get the permissions of models added since, and any the groups had lost."""
    if sender.name == list(project_apps.get_app_configs())[-1].name:
        roles_sync(project_apps)
