"""Writes for the exchange: building and handing over lists, recording replies, verifying claims."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from cases.models import Case, CaseEvent, Child, age_on
from cases.services import (
    StatusStep,
    can_transition,
    case_add_event,
    cases_move,
)
from core.bulk import (
    CHANGED,
    insert_recorded,
    keys_in,
    record_history,
    update_instances,
)
from tracker.events import reply_recorded
from tracker.models import (
    Flag,
    HandoverList,
    ListEntry,
    Organisation,
    Outcome,
    Reply,
    ReplyOutcome,
    Verification,
)

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


@dataclass(frozen=True)
class HandOver:
    """When a list was handed over, and by when the reply is due."""

    handed_over_on: datetime.date
    response_due_on: datetime.date | None

    def problems(self) -> list[tuple[str, str]]:
        problems = []
        if self.handed_over_on > timezone.localdate():
            problems.append(("handed_over_on", "the hand-over date is in the future"))
        if self.response_due_on is not None and self.response_due_on < self.handed_over_on:
            problems.append(("response_due_on", "the response cannot be due before the hand-over date"))
        return problems


def list_add_cases(*, handover_list: HandoverList, cases: Iterable[Case], actor: User | None,
                   positions: Sequence[int] | None = None, handing_over: HandOver | None = None,
                   handed_over_as: Sequence[dict[str, Any]] | None = None) -> int:
    """Put cases on a draft list, numbered after the last entry (or at `positions`, one per case,
    as a list read from a file numbers them); a case already on it is skipped.

    Returns how many entries were added. An open case moves to "on a list"; a case further along
    keeps its status and gets a timeline line, since being listed again does not undo a reply.

    With `handing_over` (a list that was handed over as it was drawn up, such as one imported after
    the fact), each entry is written already awaiting its reply and each case takes the hand-over
    step too, in the same pass: the same rows and timeline lines as adding, then `list_hand_over`,
    at half the writes. `list_hand_over` must still be called to close the list itself.
    """
    problems = handing_over.problems() if handing_over is not None else []
    if problems:
        raise ExchangeError(problems)
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
        if positions is not None and len(positions) != len(cases):
            raise ExchangeError([("positions", "give one number per case")])
        entries, listed = [], []
        for index, case in enumerate(cases):
            if case.child_id in already:
                continue
            position = positions[index] if positions is not None else position + 1
            already.add(case.child_id)
            entries.append(ListEntry(handover_list_id=locked.pk, child_id=case.child_id, case_id=case.pk,
                                     position=position,
                                     as_handed_over=handed_over_as[index] if handed_over_as is not None else {}))
            listed.append(case)
        reason = f"Added to {locked.reference}"
        if handing_over is not None:
            _entries_hand_over(entries, handing_over)
            reason += f", handed over {handing_over.handed_over_on}"
        insert_recorded(entries, ListEntry, user=actor, reason=reason)
        at = {entry.case_id: entry.position for entry in entries}
        handed = _handed_over_message(locked, handing_over.handed_over_on) if handing_over is not None else ""

        def steps(case: Case) -> list[StatusStep]:
            # An open case moves to "on a list"; one further along keeps its status, since being
            # listed again does not undo a reply, and gets the line alone.
            to = CaseStatus.ON_LIST if case.status == CaseStatus.OPEN else case.status
            added = StatusStep(to, CaseEvent.Kind.ADDED_TO_LIST, f"Added to list {locked.reference} as #{at[case.pk]}")
            if handing_over is None:
                return [added]
            return [added, _hand_over_step(to, handed)]

        cases_move(cases=listed, steps=steps, actor=actor, data={"list": locked.reference}, reason=reason)
        added = len(entries)
    return added


def _entries_hand_over(entries: Sequence[ListEntry], handing_over: HandOver) -> None:
    """Set entries as handed over: awaiting a reply, by their own due date or the list's."""
    births = {pk: (born, precision) for pk, born, precision in Child.objects.filter(
        pk__in=keys_in(entry.child_id for entry in entries)).values_list("pk", "birth_date", "birth_date_precision")}
    for entry in entries:
        born, precision = births[entry.child_id]
        entry.reply_state = ListEntry.ReplyState.AWAITING
        entry.due_on = entry.due_on or handing_over.response_due_on
        entry.age_at_listing = age_on(born, precision, handing_over.handed_over_on)


def _handed_over_message(handover_list: HandoverList, handed_over_on: datetime.date) -> str:
    return f"List {handover_list.reference} handed over to {handover_list.recipient} on {handed_over_on}"


def _hand_over_step(status: str, message: str) -> StatusStep:
    # A case on the list now awaits the reply; one further along keeps its status and gets the line.
    to = CaseStatus.AWAITING_REPLY if status == CaseStatus.ON_LIST else status
    return StatusStep(to, CaseEvent.Kind.LIST_HANDED_OVER, message)


def list_hand_over(
    *,
    handover_list: HandoverList,
    handed_over_on: datetime.date,
    response_due_on: datetime.date | None,
    actor: User | None,
) -> HandoverList:
    """Record that a draft list was handed over: its entries now await a reply by their due dates.

    Entries written already handed over (see `list_add_cases`) are left as they are."""
    handing_over = HandOver(handed_over_on, response_due_on)
    problems = handing_over.problems()
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
        pending = locked.entries.filter(reply_state=ListEntry.ReplyState.NOT_SENT)
        entries = list(pending.select_related("case").only(
            "pk", "child_id", "due_on", "handover_list_id", "case__id", "case__status", "case__child_id"))
        _entries_hand_over(entries, handing_over)
        now = timezone.now()
        for entry in entries:
            entry.updated_at = now
        update_instances(entries, ListEntry, ["reply_state", "due_on", "age_at_listing", "updated_at"])
        record_history(ListEntry, [entry.pk for entry in entries], history_type=CHANGED, user=actor,
                       reason=f"{locked.reference} handed over")
        message = _handed_over_message(locked, handed_over_on)
        cases_move(cases=[entry.case for entry in entries],
                   steps=lambda case: [_hand_over_step(case.status, message)],
                   actor=actor, data={"list": locked.reference}, reason=f"{locked.reference} handed over")
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
    actor: User | None,
    received_from: Organisation | None = None,
    reference: str = "",
    notes: str = "",
) -> RecordedReply:
    """Record a reply to a list: each named entry is answered, its flags resolved, its case moved.

    All of it happens in one transaction, and nothing is written when any part is wrong: every
    problem is reported at once, each naming the entry (by its number on the list) or the field.
    """
    with transaction.atomic():
        # Locked before anything is read: two replies to one list are recorded one after the other,
        # each deciding on the entries and cases as the other left them.
        locked = HandoverList.objects.select_for_update().select_related("recipient").get(pk=handover_list.pk)
        resolved = _resolve_outcomes(locked, received_on, outcomes)
        now = timezone.now()
        reply = Reply.objects.create(
            handover_list=locked,
            received_from=received_from or locked.recipient,
            received_on=received_on,
            reference=reference,
            notes=notes,
            recorded_by=actor,
        )
        result = RecordedReply(reply=reply)
        said = f"Reply of {received_on} to {locked.reference}"
        result.outcomes = insert_recorded([
            ReplyOutcome(reply=reply, entry=entry, outcome=item.outcome, details=item.details,
                         reported_location=item.reported_location)
            for entry, item in resolved
        ], ReplyOutcome, user=actor, reason=said)
        answered = [entry for entry, _ in resolved]
        for entry, item in resolved:
            entry.reply_state = ListEntry.ReplyState.ANSWERED
            entry.last_outcome = item.outcome
            entry.answered_on = received_on
            entry.updated_at = now
        update_instances(answered, ListEntry, ["reply_state", "last_outcome", "answered_on", "updated_at"])
        record_history(ListEntry, [entry.pk for entry in answered], history_type=CHANGED, user=actor, reason=said)
        result.flags_resolved = Flag.objects.filter(
            entry_id__in=keys_in(entry.pk for entry in answered), resolved_at__isnull=True,
            kind__in=[Flag.Kind.OVERDUE, Flag.Kind.DUE_SOON],
        ).update(resolved_at=now, resolution=Flag.Resolution.ANSWERED, resolved_by=actor)

        claims = {entry.case_id: (entry, item) for entry, item in resolved}

        def steps(case: Case) -> list[StatusStep]:
            # A case waiting for this reply moves on; one that has moved on since (another list's
            # reply, a closure) keeps its status and gets the line alone.
            entry, item = claims[case.pk]
            target = OUTCOME_MOVES_CASE_TO.get(item.outcome, CaseStatus.REPLY_RECEIVED)
            if case.status not in WAITING_STATUSES or not can_transition(case.status, target):
                target = case.status
            message = f"{said} #{entry.position}: {Outcome(item.outcome).label}"
            return [StatusStep(target, CaseEvent.Kind.REPLY_RECORDED, message,
                               data={"outcome": item.outcome, "reply": reply.pk})]

        moved = cases_move(cases=[entry.case for entry in answered], steps=steps, actor=actor,
                           data={"list": locked.reference}, reason=said)
        result.cases_moved = len(moved)
        reply_recorded.send(sender=Reply, reply_id=reply.pk,
                            answered=[(entry.case_id, entry.pk, item.outcome) for entry, item in resolved])
        still_waiting = locked.entries.filter(reply_state=ListEntry.ReplyState.AWAITING).exists()
        locked.status = HandoverList.Status.PARTIALLY_ANSWERED if still_waiting else HandoverList.Status.ANSWERED
        locked.save(update_fields=["status", "updated_at"])
    handover_list.refresh_from_db()
    return result


def _resolve_outcomes(handover_list: HandoverList, received_on: datetime.date,
                      outcomes: Sequence[OutcomeInput]) -> list[tuple[ListEntry, OutcomeInput]]:
    """Each outcome's entry on the (locked) list, by id or by number; every problem at once, or none."""
    problems: list[tuple[str, str]] = []
    if handover_list.status == HandoverList.Status.DRAFT:
        problems.append(("handover_list", f"{handover_list.reference} has not been handed over yet"))
    if received_on > timezone.localdate():
        problems.append(("received_on", f"{received_on} is in the future"))
    elif handover_list.handed_over_on and received_on < handover_list.handed_over_on:
        problems.append(("received_on", f"{received_on} is before the list was handed over"))
    if not outcomes:
        problems.append(("outcomes", "a reply needs at least one child's outcome"))

    # What the reply and the road read of each entry and its case, in one query per way of naming them.
    entries = handover_list.entries.select_related("case").only(
        "pk", "position", "reply_state", "case_id", "child_id", "handover_list_id",
        "case__id", "case__status", "case__child_id")
    by_id = {e.id: e for e in entries.filter(id__in=keys_in(o.entry_id for o in outcomes if o.entry_id is not None))}
    by_position = {e.position: e for e in entries.filter(
        position__in=keys_in(o.position for o in outcomes if o.position is not None and o.entry_id is None))}
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
    return resolved


def outcome_verify(
    *, outcome: ReplyOutcome, verification: str, note: str, actor: User | None
) -> ReplyOutcome:
    """The case worker's judgement of a claim, kept beside it and written to the case's timeline."""
    if verification not in Verification.values:
        raise ExchangeError([("verification", f"“{verification}” is not one of {', '.join(Verification.values)}")])
    with transaction.atomic():
        outcome.verification = verification
        outcome.verification_note = note
        outcome.verified_by = actor
        outcome.verified_at = timezone.now()
        outcome.save(update_fields=["verification", "verification_note", "verified_by", "verified_at", "updated_at"])
        case_add_event(
            case=outcome.entry.case, kind=CaseEvent.Kind.REPLY_VERIFIED, actor=actor,
            message=f"Claim “{outcome.get_outcome_display()}” marked {Verification(verification).label.lower()}"
                    + (f": {note}" if note else ""),
            data={"outcome": outcome.pk, "verification": verification},
        )
    return outcome
