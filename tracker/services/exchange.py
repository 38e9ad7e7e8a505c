"""Writes for the exchange: building and handing over lists, recording replies, verifying claims."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.core.files import File
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext

from cases.matching.names import latin_key
from cases.models import Case, CaseEvent, Child, age_on
from cases.services import (
    StatusStep,
    can_transition,
    cases_listed_planned,
    cases_listed_signal,
    cases_move,
    cases_open_listed,
    children_insert,
    children_planned,
)
from core.bulk import (
    CHANGED,
    CREATED,
    Writes,
    WritesBehind,
    allocate_keys,
    insert_recorded,
    keys_in,
    on_postgresql,
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
# Where a case stands when a disputed claim re-opens its follow-up: it awaits a further reply again.
# A case further along (a return under way, closed) keeps its status and gets the line alone.
REOPENED_BY_DISPUTE = frozenset({CaseStatus.REPLY_RECEIVED, CaseStatus.VERIFYING})
# What a case shows of a return: a claim of "returned" for any other case is doubtful.
RETURN_STATUSES = frozenset({CaseStatus.RETURN_IN_PROGRESS, CaseStatus.RETURNED})
ADULT_AGE = 18


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
            problems.append(("handed_over_on", gettext("the hand-over date is in the future")))
        if self.response_due_on is not None and self.response_due_on < self.handed_over_on:
            problems.append(("response_due_on", gettext("the response cannot be due before the hand-over date")))
        return problems


def _draft_locked(handover_list: HandoverList) -> HandoverList:
    """The list, locked for the caller's transaction, if it is still a draft: only a draft takes children."""
    locked = HandoverList.objects.select_for_update().get(pk=handover_list.pk)
    if locked.status != HandoverList.Status.DRAFT:
        raise ExchangeError(
            [("handover_list", f"{locked.reference} was handed over; only a draft list takes new children")])
    return locked


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
        locked = _draft_locked(handover_list)
        cases = list(cases)
        closed = [c for c in cases if c.status == CaseStatus.CLOSED]
        if closed:
            raise ExchangeError([(f"case {c.pk}", gettext("a closed case cannot be put on a list")) for c in closed])
        # Only the children being added are asked after: an import adds a long list in chunks, and
        # reading every entry already on it for each chunk grew with the square of its length.
        already = set(locked.entries.filter(child_id__in=keys_in({case.child_id for case in cases})).values_list(
            "child_id", flat=True))
        position = (locked.entries.aggregate(m=Max("position"))["m"] or 0)
        if positions is not None and len(positions) != len(cases):
            raise ExchangeError([("positions", gettext("give one number per case"))])
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


# An entry as `list_add_new_children` writes it.
_ENTRY_FIELDS = ("id", "handover_list_id", "child_id", "case_id", "position", "as_handed_over", "reply_state",
                 "due_on", "age_at_listing")


def list_add_new_children(*, handover_list: HandoverList, children: Sequence[dict[str, Any]],
                          positions: Sequence[int], actor: User | None, note: str,
                          handing_over: HandOver | None = None,
                          handed_over_as: Sequence[dict[str, Any]] | None = None) -> list[int]:
    """Children new to the tracker put on a draft list at `positions`: each child created from its
    fields (`children_insert`, history `note`), its case opened (`note`) and listed, its entry
    written, and with `handing_over` the list's hand-over step taken as well. The records
    `children_create_many` and `list_add_cases` write for the same children, line for line, in a
    fixed number of statements: a register of a hundred thousand new children is one import
    (`NewChildrenListing` writes it chunk by chunk). Returns the new children's keys."""
    _check_new_children(children, positions, handed_over_as, handing_over)
    if not children:
        return []
    with transaction.atomic():
        locked = _draft_locked(handover_list)
        if not on_postgresql():
            reason = _listed_reason(locked, handing_over)
            child_ids = children_insert(children=children, actor=actor, note=note)
            case_ids = cases_open_listed(child_ids=child_ids, steps=_listed_steps(locked, positions, handing_over),
                                         actor=actor, note=note, data={"list": locked.reference}, reason=reason)
            entries = _new_entries(child_ids, case_ids, positions, children, handed_over_as, handing_over)
            insert_recorded([ListEntry(handover_list_id=locked.pk, **dict(zip(_ENTRY_FIELDS[2:], entry, strict=True)))
                             for entry in entries], ListEntry, user=actor, reason=reason)
            return child_ids
        planned = _NewChildrenPlanned.of(locked, children, positions, handed_over_as, handing_over, actor=actor,
                                         note=note)
        planned.writes.send()
        planned.signal()
    return planned.child_ids


def _check_new_children(children: Sequence[dict[str, Any]], positions: Sequence[int],
                        handed_over_as: Sequence[dict[str, Any]] | None, handing_over: HandOver | None) -> None:
    problems = handing_over.problems() if handing_over is not None else []
    if len(positions) != len(children) or (handed_over_as is not None and len(handed_over_as) != len(children)):
        problems.append(("positions", gettext("give one number per case")))
    if problems:
        raise ExchangeError(problems)


@dataclass
class _NewChildrenPlanned:
    """The writes of new children listed (children, match keys, cases, timeline lines, entries, their
    history), built and not yet sent; the status signal to send once they are written."""

    child_ids: list[int]
    writes: Writes
    changes: list[tuple[Case, str, str]]
    actor: User | None

    @classmethod
    def of(cls, locked: HandoverList, children: Sequence[dict[str, Any]], positions: Sequence[int],
           handed_over_as: Sequence[dict[str, Any]] | None, handing_over: HandOver | None, *, actor: User | None,
           note: str, keys: tuple[Sequence[int], Sequence[int], Sequence[int]] | None = None) -> _NewChildrenPlanned:
        """Built for the draft list `locked`; `keys` gives the children's, cases' and entries' keys, taken
        by the caller from their sequences (else they are taken here)."""
        reason = _listed_reason(locked, handing_over)
        writes = Writes()
        child_keys, case_keys, entry_keys = keys if keys is not None else (None, None, None)
        child_ids = children_planned(writes, children=children, actor=actor, note=note, keys=child_keys)
        case_ids, changes = cases_listed_planned(writes, child_ids=child_ids,
                                                 steps=_listed_steps(locked, positions, handing_over), actor=actor,
                                                 note=note, data={"list": locked.reference}, reason=reason,
                                                 keys=case_keys)
        entries = _new_entries(child_ids, case_ids, positions, children, handed_over_as, handing_over)
        entry_ids = list(entry_keys) if entry_keys is not None else allocate_keys(ListEntry, len(entries))
        writes.insert_rows(ListEntry, _ENTRY_FIELDS,
                           ((key, locked.pk, *entry) for key, entry in zip(entry_ids, entries, strict=True)),
                           ready=True)
        writes.record_history(ListEntry, entry_ids, history_type=CREATED, user=actor, reason=reason)
        return cls(child_ids, writes, changes, actor)

    def signal(self) -> None:
        cases_listed_signal(self.changes, actor=self.actor)


class NewChildrenListing:
    """`list_add_new_children` for a register, chunk by chunk, inside the caller's transaction: each
    chunk's records are built here (`plan`) and sent by a helper thread (`send`, see
    `core.bulk.WritesBehind`) while the caller reads and builds the next. The database and Python
    each take about half of such a write; this way they take it side by side.

    The list is locked and every key the `count` children need is taken from the sequences at the
    start, so that building a chunk asks nothing of the database while the one before is sent. Used
    as a context manager: leaving waits for the last chunk."""

    def __init__(self, *, handover_list: HandoverList, count: int, actor: User | None, note: str,
                 handing_over: HandOver | None = None) -> None:
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("a listing chunk by chunk is one transaction: start it inside one")
        self.actor, self.note, self.handing_over = actor, note, handing_over
        self.locked = _draft_locked(handover_list)
        self.behind = WritesBehind()
        fast = on_postgresql()
        self._keys = [allocate_keys(model, count) if fast else [] for model in (Child, Case, ListEntry)]
        self._taken = 0

    def __enter__(self) -> NewChildrenListing:
        self.behind.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        self.behind.__exit__(kind, error, trace)

    def plan(self, *, children: Sequence[dict[str, Any]], positions: Sequence[int],
             handed_over_as: Sequence[dict[str, Any]] | None = None) -> _NewChildrenPlanned | None:
        """A chunk's records built, to be given to `send`; elsewhere than on PostgreSQL, written now."""
        if not on_postgresql():
            list_add_new_children(handover_list=self.locked, children=children, positions=positions, actor=self.actor,
                                  note=self.note, handing_over=self.handing_over, handed_over_as=handed_over_as)
            return None
        _check_new_children(children, positions, handed_over_as, self.handing_over)
        start, self._taken = self._taken, self._taken + len(children)
        if self._taken > len(self._keys[0]):
            raise ValueError(f"more than the {len(self._keys[0])} children announced")
        child_keys, case_keys, entry_keys = (taken[start:self._taken] for taken in self._keys)
        return _NewChildrenPlanned.of(self.locked, children, positions, handed_over_as, self.handing_over,
                                      actor=self.actor, note=self.note, keys=(child_keys, case_keys, entry_keys))

    def send(self, planned: _NewChildrenPlanned | None) -> None:
        """Send a chunk built by `plan` (after the one before is written), its signal once it is written."""
        if planned is not None:
            self.behind.send(planned.writes, then=planned.signal)


def _listed_reason(handover_list: HandoverList, handing_over: HandOver | None) -> str:
    reason = f"Added to {handover_list.reference}"
    if handing_over is not None:
        reason += f", handed over {handing_over.handed_over_on}"
    return reason


def _listed_steps(handover_list: HandoverList, positions: Sequence[int],
                  handing_over: HandOver | None) -> list[list[StatusStep]]:
    handed = _handed_over_message(handover_list, handing_over.handed_over_on) if handing_over is not None else ""
    steps = []
    for position in positions:
        added = StatusStep(CaseStatus.ON_LIST, CaseEvent.Kind.ADDED_TO_LIST,
                           f"Added to list {handover_list.reference} as #{position}")
        steps.append([added] if handing_over is None else [added, _hand_over_step(CaseStatus.ON_LIST, handed)])
    return steps


def _new_entries(child_ids: Sequence[int], case_ids: Sequence[int], positions: Sequence[int],
                 children: Sequence[dict[str, Any]], handed_over_as: Sequence[dict[str, Any]] | None,
                 handing_over: HandOver | None) -> list[tuple[Any, ...]]:
    """New children's entries, as `_ENTRY_FIELDS` after the entry's and the list's keys."""
    entries: list[tuple[Any, ...]] = []
    for index, (child_id, case_id, position, fields) in enumerate(
            zip(child_ids, case_ids, positions, children, strict=True)):
        as_handed = handed_over_as[index] if handed_over_as is not None else {}
        if handing_over is None:
            entries.append((child_id, case_id, position, as_handed, ListEntry.ReplyState.NOT_SENT, None, None))
            continue
        precision = fields.get("birth_date_precision") or Child.DatePrecision.DAY
        entries.append((child_id, case_id, position, as_handed,
                        *_handed_over(None, fields.get("birth_date"), precision, handing_over)))
    return entries


def _entries_hand_over(entries: Sequence[ListEntry], handing_over: HandOver) -> None:
    """Set entries as handed over: awaiting a reply, by their own due date or the list's."""
    births = {pk: (born, precision) for pk, born, precision in Child.objects.filter(
        pk__in=keys_in(entry.child_id for entry in entries)).values_list("pk", "birth_date", "birth_date_precision")}
    for entry in entries:
        entry.reply_state, entry.due_on, entry.age_at_listing = _handed_over(entry.due_on, *births[entry.child_id],
                                                                             handing_over)


def _handed_over(due_on: datetime.date | None, born: datetime.date | None, precision: str,
                 handing_over: HandOver) -> tuple[str, datetime.date | None, int | None]:
    """An entry's reply state, due date and the child's age once its list is handed over: awaiting a
    reply by its own due date or the list's, the age on the hand-over date as far as the birth date
    is known."""
    return (ListEntry.ReplyState.AWAITING, due_on or handing_over.response_due_on,
            age_on(born, precision, handing_over.handed_over_on))


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
            raise ExchangeError([("status", gettext("%(list)s was already handed over") % {"list": locked.reference})])
        if not locked.entries.exists():
            raise ExchangeError([("entries", gettext("%(list)s has no children on it") % {"list": locked.reference})])
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
    """One child's answer as given to `reply_record`: the entry by id, by its number on the list, or
    by the child's name as on the list (in any script). `label` says where the answer came from (a
    pasted line, a row of the page) in the problems reported about it."""

    outcome: str
    entry_id: int | None = None
    position: int | None = None
    name: str = ""
    details: str = ""
    reported_location: str = ""
    label: str = ""


@dataclass
class RecordedReply:
    reply: Reply
    outcomes: list[ReplyOutcome] = field(default_factory=list)
    flags_resolved: int = 0
    cases_moved: int = 0

    @property
    def further_claims(self) -> list[ReplyOutcome]:
        """The outcomes that are a further claim for an entry an earlier reply had answered."""
        return [outcome for outcome in self.outcomes if outcome.claim_number > 1]

    @property
    def doubtful(self) -> list[ReplyOutcome]:
        return [outcome for outcome in self.outcomes if outcome.doubt]


def reply_record(
    *,
    handover_list: HandoverList,
    received_on: datetime.date,
    outcomes: Sequence[OutcomeInput],
    actor: User | None,
    received_from: Organisation | None = None,
    reference: str = "",
    notes: str = "",
    document: File | None = None,
) -> RecordedReply:
    """Record a reply to a list: each named entry is answered, its flags resolved, its case moved.

    One letter is one reply, whatever mix of outcomes it holds. An entry answered before gets a
    further claim, numbered after the earlier ones and kept beside them; the entry shows the latest.
    A claim that the case's own record makes doubtful (an adult not yet 18 on the reply's date, a
    return the case does not show) is marked so as it is recorded.

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
            document=document or "",
        )
        result = RecordedReply(reply=reply)
        said = f"Reply of {received_on} to {locked.reference}"
        result.outcomes = insert_recorded([
            ReplyOutcome(reply=reply, entry=entry, outcome=item.outcome, details=item.details,
                         reported_location=item.reported_location, claim_number=entry.claim_count + 1,
                         doubt=_claim_doubt(entry, item.outcome, received_on))
            for entry, item in resolved
        ], ReplyOutcome, user=actor, reason=said)
        answered = [entry for entry, _ in resolved]
        for entry, item in resolved:
            entry.reply_state = ListEntry.ReplyState.ANSWERED
            entry.last_outcome = item.outcome
            entry.answered_on = received_on
            entry.claim_count += 1
            entry.claim_verification = Verification.UNVERIFIED
            entry.updated_at = now
        update_instances(answered, ListEntry, ["reply_state", "last_outcome", "answered_on", "claim_count",
                                               "claim_verification", "updated_at"])
        record_history(ListEntry, [entry.pk for entry in answered], history_type=CHANGED, user=actor, reason=said)
        # A disputed claim's flag is answered too: the further reply it waited for has come.
        result.flags_resolved = Flag.objects.filter(
            entry_id__in=keys_in(entry.pk for entry in answered), resolved_at__isnull=True,
            kind__in=[Flag.Kind.OVERDUE, Flag.Kind.DUE_SOON, Flag.Kind.DISPUTED],
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
            if entry.claim_count > 1:
                message += gettext(" (claim %(number)s for this entry)") % {"number": entry.claim_count}
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


# What a reply reads of each entry, its case and its child, for the road and the claims' doubts.
ENTRY_FIELDS_READ = (
    "pk", "position", "reply_state", "case_id", "child_id", "handover_list_id", "claim_count",
    "case__id", "case__status", "case__child_id", "case__closing_reason",
    "child__id", "child__birth_date", "child__birth_date_precision",
)
CHILD_NAME_FIELDS = ("family_name", "given_name", "patronymic", "family_name_latin", "given_name_latin", "aliases")


def _resolve_outcomes(handover_list: HandoverList, received_on: datetime.date,
                      outcomes: Sequence[OutcomeInput]) -> list[tuple[ListEntry, OutcomeInput]]:
    """Each outcome's entry on the (locked) list, by id, number or name; every problem at once, or none."""
    problems: list[tuple[str, str]] = []
    if handover_list.status == HandoverList.Status.DRAFT:
        problems.append(("handover_list", f"{handover_list.reference} has not been handed over yet"))
    if received_on > timezone.localdate():
        problems.append(("received_on", f"{received_on} is in the future"))
    elif handover_list.handed_over_on and received_on < handover_list.handed_over_on:
        problems.append(("received_on", f"{received_on} is before the list was handed over"))
    if not outcomes:
        problems.append(("outcomes", gettext("a reply needs at least one child's outcome")))

    # What the reply and the road read of each entry and its case, in one query per way of naming them.
    entries = handover_list.entries.select_related("case", "child").only(*ENTRY_FIELDS_READ)
    by_id = {e.id: e for e in entries.filter(id__in=keys_in(o.entry_id for o in outcomes if o.entry_id is not None))}
    by_position = {e.position: e for e in entries.filter(
        position__in=keys_in(o.position for o in outcomes if o.position is not None and o.entry_id is None))}
    named = [o for o in outcomes if o.entry_id is None and o.position is None and o.name]
    by_name = _entries_by_name(entries) if named else {}
    resolved: list[tuple[ListEntry, OutcomeInput]] = []
    seen: set[int] = set()
    for index, item in enumerate(outcomes):
        where = item.label or f"outcomes[{index}]"
        if item.entry_id is not None:
            entry = by_id.get(item.entry_id)
            missing = gettext("entry %(entry)s is not on list %(list)s") % {
                "entry": item.entry_id, "list": handover_list.reference}
        elif item.position is not None:
            entry = by_position.get(item.position)
            missing = gettext("number %(position)s is not on list %(list)s") % {
                "position": item.position, "list": handover_list.reference}
        else:
            entry, missing = _entry_named(by_name, item.name, handover_list.reference)
        if entry is None:
            problems.append((where, missing))
            continue
        where = f"{where} (#{entry.position})"
        if item.outcome not in Outcome.values:
            problems.append((where, gettext("“%(outcome)s” is not a known outcome; use one of %(known)s")
                             % {"outcome": item.outcome, "known": ", ".join(Outcome.values)}))
        if entry.id in seen:
            problems.append((where, gettext("the same child is answered twice in this reply")))
        if entry.reply_state == ListEntry.ReplyState.WITHDRAWN:
            problems.append((where, gettext("this child was withdrawn from the list")))
        seen.add(entry.id)
        resolved.append((entry, item))
    if problems:
        raise ExchangeError(problems)
    return resolved


def _entries_by_name(entries: QuerySet[ListEntry]) -> dict[str, list[ListEntry]]:
    """The list's entries by each spelling of their child's name folded to one key (family and
    given name, either way round, with or without the patronymic, and every alias), so that a name
    written in Cyrillic or Latin finds its child; in one query, asked only when a name is given."""
    found: dict[str, list[ListEntry]] = {}
    for entry in entries.only(*ENTRY_FIELDS_READ, *(f"child__{name}" for name in CHILD_NAME_FIELDS)):
        child = entry.child
        spellings = {
            (child.family_name, child.given_name), (child.given_name, child.family_name),
            (child.family_name, child.given_name, child.patronymic),
            (child.family_name_latin, child.given_name_latin), (child.given_name_latin, child.family_name_latin),
            *((str(alias),) for alias in child.aliases or []),
        }
        for key in {latin_key(" ".join(part for part in words if part)) for words in spellings} - {""}:
            found.setdefault(key, []).append(entry)
    return found


def _entry_named(by_name: dict[str, list[ListEntry]], name: str, reference: str) -> tuple[ListEntry | None, str]:
    """The one entry whose child has this name, or None and why not."""
    if not name.strip():
        return None, gettext("give the child's number on the list or name")
    found = by_name.get(latin_key(name), [])
    if len(found) == 1:
        return found[0], ""
    if found:
        return None, gettext("more than one child on list %(list)s is named “%(name)s”: give the number") % {
            "list": reference, "name": name}
    return None, gettext("no child on list %(list)s is named “%(name)s”: give the number") % {
        "list": reference, "name": name}


def _claim_doubt(entry: ListEntry, outcome: str, received_on: datetime.date) -> str:
    """Why the case's own record makes a claim doubtful, in words; empty when it does not."""
    if outcome == Outcome.NOW_ADULT:
        # With a year or a month only, the age counted is the highest the child may have: doubtful
        # only when the child cannot have been 18 yet.
        age = age_on(entry.child.birth_date, entry.child.birth_date_precision, received_on)
        if age is not None and age < ADULT_AGE:
            return gettext("claimed to be an adult, but the child was %(age)s on the reply's date (%(date)s)") % {
                "age": age, "date": received_on}
    if outcome == Outcome.RETURNED and entry.case.status not in RETURN_STATUSES and not (
            entry.case.status == CaseStatus.CLOSED and entry.case.closing_reason == Case.ClosingReason.REUNIFIED):
        return gettext("claimed to be returned, but the case shows no return (it is “%(status)s”)") % {
            "status": CaseStatus(entry.case.status).label}
    return ""


def outcome_verify(
    *,
    outcome: ReplyOutcome,
    verification: str,
    note: str,
    actor: User | None,
    evidence: File | None = None,
    follow_up_due_on: datetime.date | None = None,
) -> ReplyOutcome:
    """The case worker's judgement of a claim: unverified, verified or disputed, with who, when, a
    note and the evidence, kept beside the claim and written to the case's timeline.

    Disputing an entry's latest claim re-opens its follow-up: the entry awaits a further reply by
    `follow_up_due_on` (required then, not in the past), a flag of the kind "claim disputed" is
    raised, and a case that had moved on with the claim goes back to awaiting a reply. Taking the
    dispute back (verified or unverified again, before any further claim) answers the entry with the
    claim once more and resolves the flag. A claim an entry's later claim has replaced is judged
    alone: the later claim is the one the entry stands on.
    """
    if verification not in Verification.values:
        raise ExchangeError([("verification", gettext("“%(value)s” is not one of %(choices)s") % {
            "value": verification, "choices": ", ".join(Verification.values)})])
    with transaction.atomic():
        # The list first, as a reply locks it: a reply and a verdict on one list's entries take turns.
        list_id = ListEntry.objects.filter(pk=outcome.entry_id).values_list("handover_list_id", flat=True).get()
        handover_list = HandoverList.objects.select_for_update().get(pk=list_id)
        entry = ListEntry.objects.select_for_update().select_related("case").get(pk=outcome.entry_id)
        claim = ReplyOutcome.objects.select_for_update().select_related("reply").get(pk=outcome.pk)
        previous = claim.verification
        latest = claim.claim_number == entry.claim_count
        reopens = (verification == Verification.DISPUTED and previous != Verification.DISPUTED and latest
                   and entry.reply_state == ListEntry.ReplyState.ANSWERED)
        takes_back = (previous == Verification.DISPUTED and verification != Verification.DISPUTED and latest
                      and entry.reply_state == ListEntry.ReplyState.AWAITING)
        if reopens:
            _check_follow_up(follow_up_due_on)
        now = timezone.now()
        claim.verification, claim.verification_note = verification, note
        claim.verified_by, claim.verified_at = actor, now
        if evidence is not None:
            claim.verification_evidence = evidence
        # The timeline's line is stored in English, as every line the services write, and said again
        # in the reader's language by the case page (tracker/admin/timeline.py reads it back).
        with translation.override("en"):
            claimed = f"“{claim.get_outcome_display()}” in the reply of {claim.reply.received_on} (#{entry.position})"
        said = {
            Verification.VERIFIED: "Claim verified: ",
            Verification.UNVERIFIED: "Claim marked unverified: ",
            Verification.DISPUTED: "Claim disputed: ",
        }[Verification(verification)] + claimed + (f": {note}" if note else "")
        claim._change_reason = said[:100]  # type: ignore[attr-defined]
        claim.save(update_fields=["verification", "verification_note", "verified_by", "verified_at",
                                  "verification_evidence", "updated_at"])

        kind: str = (CaseEvent.Kind.CLAIM_DISPUTED if verification == Verification.DISPUTED
                     else CaseEvent.Kind.REPLY_VERIFIED)
        to_status = entry.case.status
        if latest:
            entry.claim_verification = verification
        if reopens:
            assert follow_up_due_on is not None  # noqa: S101 checked above, for the type checker
            entry.reply_state, entry.answered_on, entry.due_on = ListEntry.ReplyState.AWAITING, None, follow_up_due_on
            flag = Flag.objects.create(kind=Flag.Kind.DISPUTED, entry=entry, case_id=entry.case_id,
                                       due_on=follow_up_due_on, note=said, raised_by=actor, raised_at=now)
            said += f". A further reply is due by {follow_up_due_on}."
            # The line says the claim is disputed and that a flag is up; the move rides on it.
            if entry.case.status in REOPENED_BY_DISPUTE:
                to_status = CaseStatus.AWAITING_REPLY
        elif takes_back:
            entry.reply_state, entry.answered_on = ListEntry.ReplyState.ANSWERED, claim.reply.received_on
            Flag.objects.filter(entry=entry, kind=Flag.Kind.DISPUTED, resolved_at__isnull=True).update(
                resolved_at=now, resolution=Flag.Resolution.UNDISPUTED, resolved_by=actor)
            said += "; no longer disputed, the entry is answered by this claim again"
            target = OUTCOME_MOVES_CASE_TO.get(claim.outcome, CaseStatus.REPLY_RECEIVED)
            if entry.case.status == CaseStatus.AWAITING_REPLY and can_transition(entry.case.status, target):
                to_status = target
        if latest:
            entry._change_reason = said[:100]  # type: ignore[attr-defined]
            entry.save(update_fields=["claim_verification", "reply_state", "answered_on", "due_on", "updated_at"])
        data: dict[str, object] = {"outcome": claim.pk, "verification": verification}
        if reopens:
            data["flag"] = flag.pk
        cases_move(cases=[entry.case], steps=lambda case: [StatusStep(
            to_status if can_transition(case.status, to_status) else case.status, kind, said, data=data)],
            actor=actor, data={"list": handover_list.reference}, reason=said[:100])
        if reopens or takes_back:
            _list_status_follows_entries(handover_list)
    outcome.refresh_from_db()
    return outcome


def _check_follow_up(follow_up_due_on: datetime.date | None) -> None:
    if follow_up_due_on is None:
        raise ExchangeError([("follow_up_due_on", gettext(
            "a disputed claim re-opens the follow-up: give the date a further reply is due"))])
    if follow_up_due_on < timezone.localdate():
        raise ExchangeError([("follow_up_due_on", gettext("%(date)s is in the past") % {"date": follow_up_due_on})])


def _list_status_follows_entries(handover_list: HandoverList) -> None:
    """An answered list with an entry awaiting again is partially answered, and back when none is."""
    if handover_list.status not in (HandoverList.Status.ANSWERED, HandoverList.Status.PARTIALLY_ANSWERED):
        return
    waiting = handover_list.entries.filter(reply_state=ListEntry.ReplyState.AWAITING).exists()
    status = HandoverList.Status.PARTIALLY_ANSWERED if waiting else HandoverList.Status.ANSWERED
    if status != handover_list.status:
        handover_list.status = status
        handover_list._change_reason = gettext("Entries awaiting again after a dispute")  # type: ignore[attr-defined]
        handover_list.save(update_fields=["status", "updated_at"])
