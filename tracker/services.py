"""Writes for the exchange: building and handing over lists, recording replies, raising flags by hand."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from cases.models import Case, CaseEvent
from cases.services import can_transition, case_add_event, case_change_status
from tracker.models import Flag, HandoverList, ListEntry, Organisation, Outcome, Reply, ReplyOutcome, Verification
from tracker.webhooks import record_reply_events

CaseStatus = Case.Status

# Where a reply moves a case that was waiting for it. A claim of "located" or "returned" goes to
# verification, because such claims have been made for children who were neither.
OUTCOME_MOVES_CASE_TO: dict[str, str] = {
    Outcome.LOCATED: CaseStatus.VERIFYING,
    Outcome.RETURNED: CaseStatus.VERIFYING,
}
WAITING_STATUSES = frozenset({CaseStatus.ON_LIST, CaseStatus.AWAITING_REPLY})


class ExchangeError(Exception):
    """A refused write, with every problem found, each naming the field or row it concerns."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{where}: {why}" for where, why in self.problems))


def list_add_cases(*, handover_list: HandoverList, cases: Iterable[Case], actor: AbstractBaseUser | None) -> int:
    """Put cases on a draft list, numbered after the last entry; a case already on it is skipped.

    Returns how many entries were added. An open case moves to "on a list"; a case further along
    keeps its status and gets a timeline line, since being listed again does not undo a reply.
    """
    with transaction.atomic():
        locked = HandoverList.objects.select_for_update().get(pk=handover_list.pk)
        if locked.status != HandoverList.Status.DRAFT:
            raise ExchangeError(
                [("handover_list", f"{locked.reference} was handed over; only a draft list takes new children")]
            )
        cases = list(cases)
        closed = [c for c in cases if c.status == CaseStatus.CLOSED]
        if closed:
            raise ExchangeError([(f"case {c.pk}", "a closed case cannot be put on a list") for c in closed])
        already = set(locked.entries.values_list("child_id", flat=True))
        position = (locked.entries.aggregate(m=Max("position"))["m"] or 0)
        added = 0
        for case in cases:
            if case.child_id in already:
                continue
            position += 1
            already.add(case.child_id)
            ListEntry.objects.create(handover_list=locked, child_id=case.child_id, case=case, position=position)
            message = f"Added to list {locked.reference} as #{position}"
            if case.status == CaseStatus.OPEN:
                case_change_status(case=case, to_status=CaseStatus.ON_LIST, actor=actor, note=message,
                                   kind=CaseEvent.Kind.ADDED_TO_LIST, data={"list": locked.reference})
            else:
                case_add_event(case=case, kind=CaseEvent.Kind.ADDED_TO_LIST, actor=actor, message=message,
                               data={"list": locked.reference})
            added += 1
    return added


def list_hand_over(
    *,
    handover_list: HandoverList,
    handed_over_on: datetime.date,
    response_due_on: datetime.date | None,
    actor: AbstractBaseUser | None,
) -> HandoverList:
    """Record that a draft list was handed over: its entries now await a reply by their due dates."""
    problems = []
    if handed_over_on > timezone.localdate():
        problems.append(("handed_over_on", "the hand-over date is in the future"))
    if response_due_on is not None and response_due_on < handed_over_on:
        problems.append(("response_due_on", "the response cannot be due before the hand-over date"))
    if problems:
        raise ExchangeError(problems)
    with transaction.atomic():
        locked = HandoverList.objects.select_for_update().get(pk=handover_list.pk)
        if locked.status != HandoverList.Status.DRAFT:
            raise ExchangeError([("status", f"{locked.reference} was already handed over")])
        if not locked.entries.exists():
            raise ExchangeError([("entries", f"{locked.reference} has no children on it")])
        locked.status = HandoverList.Status.HANDED_OVER
        locked.handed_over_on = handed_over_on
        locked.response_due_on = response_due_on
        locked.save(update_fields=["status", "handed_over_on", "response_due_on", "updated_at"])
        entries = list(locked.entries.select_related("child", "case"))
        for entry in entries:
            entry.reply_state = ListEntry.ReplyState.AWAITING
            entry.due_on = entry.due_on or response_due_on
            entry.age_at_listing = entry.child.age_on(handed_over_on)
        ListEntry.objects.bulk_update(entries, ["reply_state", "due_on", "age_at_listing"], batch_size=1000)
        message = f"List {locked.reference} handed over to {locked.recipient} on {handed_over_on}"
        for entry in entries:
            if entry.case.status == CaseStatus.ON_LIST:
                case_change_status(case=entry.case, to_status=CaseStatus.AWAITING_REPLY, actor=actor, note=message,
                                   kind=CaseEvent.Kind.LIST_HANDED_OVER, data={"list": locked.reference})
            else:
                case_add_event(case=entry.case, kind=CaseEvent.Kind.LIST_HANDED_OVER, actor=actor, message=message,
                               data={"list": locked.reference})
    handover_list.refresh_from_db()
    return handover_list


@dataclass(frozen=True)
class OutcomeInput:
    """One child's answer as given to `reply_record`: the entry by id or by its number on the list."""

    outcome: str
    entry_id: int | None = None
    position: int | None = None
    details: str = ""
    reported_location: str = ""


@dataclass
class RecordedReply:
    reply: Reply
    outcomes: list[ReplyOutcome] = field(default_factory=list)
    flags_resolved: int = 0
    cases_moved: int = 0


def reply_record(
    *,
    handover_list: HandoverList,
    received_on: datetime.date,
    outcomes: Sequence[OutcomeInput],
    actor: AbstractBaseUser | None,
    received_from: Organisation | None = None,
    reference: str = "",
    notes: str = "",
) -> RecordedReply:
    """Record a reply to a list: each named entry is answered, its flags resolved, its case moved.

    All of it happens in one transaction, and nothing is written when any part is wrong: every
    problem is reported at once, each naming the entry (by its number on the list) or the field.
    """
    problems: list[tuple[str, str]] = []
    if handover_list.status == HandoverList.Status.DRAFT:
        problems.append(("handover_list", f"{handover_list.reference} has not been handed over yet"))
    if received_on > timezone.localdate():
        problems.append(("received_on", f"{received_on} is in the future"))
    elif handover_list.handed_over_on and received_on < handover_list.handed_over_on:
        problems.append(("received_on", f"{received_on} is before the list was handed over"))
    if not outcomes:
        problems.append(("outcomes", "a reply needs at least one child's outcome"))

    entries = handover_list.entries.select_related("case", "child")
    by_id = {e.id: e for e in entries.filter(id__in=[o.entry_id for o in outcomes if o.entry_id is not None])}
    by_position = {
        e.position: e for e in entries.filter(position__in=[o.position for o in outcomes if o.position is not None])
    }
    resolved: list[tuple[ListEntry, OutcomeInput]] = []
    seen: set[int] = set()
    for index, item in enumerate(outcomes):
        where = f"outcomes[{index}]"
        entry = by_id.get(item.entry_id) if item.entry_id is not None else by_position.get(item.position or -1)
        if entry is None:
            named = f"entry {item.entry_id}" if item.entry_id is not None else f"number {item.position}"
            problems.append((where, f"{named} is not on list {handover_list.reference}"))
            continue
        where = f"{where} (#{entry.position})"
        if item.outcome not in Outcome.values:
            problems.append((where, f"“{item.outcome}” is not a known outcome; use one of {', '.join(Outcome.values)}"))
        if entry.id in seen:
            problems.append((where, "the same child is answered twice in this reply"))
        if entry.reply_state == ListEntry.ReplyState.WITHDRAWN:
            problems.append((where, "this child was withdrawn from the list"))
        seen.add(entry.id)
        resolved.append((entry, item))
    if problems:
        raise ExchangeError(problems)

    now = timezone.now()
    with transaction.atomic():
        locked = HandoverList.objects.select_for_update().get(pk=handover_list.pk)
        reply = Reply.objects.create(
            handover_list=locked,
            received_from=received_from or locked.recipient,
            received_on=received_on,
            reference=reference,
            notes=notes,
            recorded_by=actor,
        )
        result = RecordedReply(reply=reply)
        result.outcomes = ReplyOutcome.objects.bulk_create(
            [
                ReplyOutcome(reply=reply, entry=entry, outcome=item.outcome, details=item.details,
                             reported_location=item.reported_location)
                for entry, item in resolved
            ]
        )
        answered = [entry for entry, _ in resolved]
        for entry, item in resolved:
            entry.reply_state = ListEntry.ReplyState.ANSWERED
            entry.last_outcome = item.outcome
            entry.answered_on = received_on
        ListEntry.objects.bulk_update(answered, ["reply_state", "last_outcome", "answered_on", "updated_at"],
                                      batch_size=1000)
        result.flags_resolved = Flag.objects.filter(
            entry__in=answered, resolved_at__isnull=True, kind__in=[Flag.Kind.OVERDUE, Flag.Kind.DUE_SOON]
        ).update(resolved_at=now, resolution=Flag.Resolution.ANSWERED, resolved_by=actor)

        for entry, item in resolved:
            label = Outcome(item.outcome).label
            message = f"Reply of {received_on} to {locked.reference} #{entry.position}: {label}"
            data = {"list": locked.reference, "outcome": item.outcome, "reply": reply.pk}
            target = OUTCOME_MOVES_CASE_TO.get(item.outcome, CaseStatus.REPLY_RECEIVED)
            if entry.case.status in WAITING_STATUSES and can_transition(entry.case.status, target):
                case_change_status(case=entry.case, to_status=target, actor=actor, note=message,
                                   kind=CaseEvent.Kind.REPLY_RECORDED, data=data)
                result.cases_moved += 1
            else:
                case_add_event(case=entry.case, kind=CaseEvent.Kind.REPLY_RECORDED, actor=actor, message=message,
                               data=data)

        record_reply_events(reply_id=reply.pk,
                            answered=[(entry.case_id, entry.pk, item.outcome) for entry, item in resolved])
        still_waiting = locked.entries.filter(reply_state=ListEntry.ReplyState.AWAITING).exists()
        locked.status = HandoverList.Status.PARTIALLY_ANSWERED if still_waiting else HandoverList.Status.ANSWERED
        locked.save(update_fields=["status", "updated_at"])
    handover_list.refresh_from_db()
    return result


def outcome_verify(
    *, outcome: ReplyOutcome, verification: str, note: str, actor: AbstractBaseUser | None
) -> ReplyOutcome:
    """The case worker's judgement of a claim, kept beside it and written to the case's timeline."""
    if verification not in Verification.values:
        raise ExchangeError([("verification", f"“{verification}” is not one of {', '.join(Verification.values)}")])
    with transaction.atomic():
        outcome.verification = verification
        outcome.verification_note = note
        outcome.verified_by = actor  # type: ignore[assignment]
        outcome.verified_at = timezone.now()
        outcome.save(update_fields=["verification", "verification_note", "verified_by", "verified_at", "updated_at"])
        case_add_event(
            case=outcome.entry.case, kind=CaseEvent.Kind.REPLY_VERIFIED, actor=actor,
            message=f"Claim “{outcome.get_outcome_display()}” marked {Verification(verification).label.lower()}"
                    + (f": {note}" if note else ""),
            data={"outcome": outcome.pk, "verification": verification},
        )
    return outcome


def flag_raise(*, case: Case, note: str, actor: AbstractBaseUser | None) -> Flag:
    """A case worker's own flag on a case: something needs attention that no deadline shows."""
    if not note.strip():
        raise ExchangeError([("note", "say what needs attention")])
    with transaction.atomic():
        flag = Flag.objects.create(kind=Flag.Kind.MANUAL, case=case, note=note, raised_by=actor)
        case_add_event(case=case, kind=CaseEvent.Kind.FLAG_RAISED, actor=actor, message=note, data={"flag": flag.pk})
    return flag


def flag_dismiss(*, flag: Flag, actor: AbstractBaseUser | None, note: str = "") -> Flag:
    """Close an open flag by hand; the sweep will not raise it again for the same deadline."""
    with transaction.atomic():
        locked = Flag.objects.select_for_update().get(pk=flag.pk)
        if locked.resolved_at is not None:
            return locked
        locked.resolved_at = timezone.now()
        locked.resolution = Flag.Resolution.DISMISSED
        locked.resolved_by = actor  # type: ignore[assignment]
        locked.note = "\n".join(p for p in (locked.note, note) if p)
        locked.save(update_fields=["resolved_at", "resolution", "resolved_by", "note"])
        case_add_event(case=locked.case, kind=CaseEvent.Kind.FLAG_RESOLVED, actor=actor,
                       message=f"{locked.get_kind_display()} dismissed" + (f": {note}" if note else ""),
                       data={"flag": locked.pk})
    return locked
