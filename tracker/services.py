"""Writes for the exchange: building and handing over lists, recording replies, raising flags by hand."""

from __future__ import annotations

import datetime
import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.dispatch import receiver
from django.utils import timezone

from cases.bulk import (
    ANALYZE_AFTER_ROWS,
    CHANGED,
    bulk_job,
    insert_instances,
    insert_recorded,
    keys_in,
    record_history,
    refresh_statistics,
)
from cases.matching import MatchScore, PersonRecord, blocking_keys, compare
from cases.matching_db import QUERY_BATCH, child_records, find_candidates
from cases.models import Case, CaseEvent, Child, age_on
from cases.services import (
    StatusStep,
    can_transition,
    case_add_event,
    case_change_status,
    cases_move_many,
    cases_open_many,
    children_add_spellings,
    children_create_many,
)
from cases.signals import child_merged
from tracker import imports
from tracker.imports import ParsedFile, RowProblem
from tracker.models import (
    Flag,
    HandoverList,
    ImportBatch,
    ImportRow,
    ListEntry,
    Organisation,
    Outcome,
    Reply,
    ReplyOutcome,
    Verification,
)
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


def list_add_cases(*, handover_list: HandoverList, cases: Iterable[Case], actor: AbstractBaseUser | None,
                   positions: Sequence[int] | None = None, handing_over: HandOver | None = None) -> int:
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
                                     position=position))
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

        cases_move_many(cases=listed, steps=steps, actor=actor, data={"list": locked.reference})
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
    actor: AbstractBaseUser | None,
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
            "pk", "child_id", "due_on", "case__id", "case__status", "case__child_id"))
        _entries_hand_over(entries, handing_over)
        # A few UPDATEs (one per age and due date) instead of Django's row-by-row CASE of bulk_update.
        groups: dict[tuple[datetime.date | None, int | None], list[int]] = defaultdict(list)
        now = timezone.now()
        for entry in entries:
            groups[(entry.due_on, entry.age_at_listing)].append(entry.pk)
        for (due_on, age), ids in groups.items():
            ListEntry.objects.filter(pk__in=keys_in(ids)).update(
                reply_state=ListEntry.ReplyState.AWAITING, due_on=due_on, age_at_listing=age, updated_at=now)
        record_history(ListEntry, [entry.pk for entry in entries], history_type=CHANGED, user=actor,
                       reason=f"{locked.reference} handed over")
        message = _handed_over_message(locked, handed_over_on)
        cases_move_many(cases=[entry.case for entry in entries], steps=lambda case: [_hand_over_step(
            case.status, message)], actor=actor, data={"list": locked.reference})
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


@receiver(child_merged)
def entries_follow_merged_child(sender: Any, keep: Child, merged: Child, actor: AbstractBaseUser | None,
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


# --- Imports of lists and replies from spreadsheets ---------------------------------------------


class AlreadyImported(ExchangeError):
    """The same file was already imported into the same place: nothing is done the second time."""


def import_batch_create(
    *,
    kind: str,
    content: bytes,
    file_name: str,
    actor: AbstractBaseUser | None,
    sender: Organisation | None = None,
    recipient: Organisation | None = None,
    reference: str = "",
    handed_over_on: datetime.date | None = None,
    response_due_on: datetime.date | None = None,
    handover_list: HandoverList | None = None,
    received_on: datetime.date | None = None,
) -> ImportBatch:
    """Keep an uploaded file with what it is to become; nothing of it is read into the lists yet.

    Refuses a file already imported into the same place (same bytes, same list or "a new list").
    """
    problems: list[tuple[str, str]] = []
    reference = reference.strip()
    if kind == ImportBatch.Kind.LIST:
        if sender is None or recipient is None:
            problems.append(("sender", "a list needs the party that hands it over and the one that receives it"))
        elif sender.pk == recipient.pk:
            problems.append(("recipient", "a list is handed to another party than its sender"))
        if handed_over_on and handed_over_on > timezone.localdate():
            problems.append(("handed_over_on", "the hand-over date is in the future"))
        if handed_over_on and response_due_on and response_due_on < handed_over_on:
            problems.append(("response_due_on", "the response cannot be due before the hand-over date"))
        if response_due_on and not handed_over_on:
            problems.append(("handed_over_on", "a reply date needs the hand-over date"))
        if reference and HandoverList.objects.filter(reference=reference).exists():
            problems.append(("reference", f"a list {reference} already exists"))
        target = "list"
    elif kind == ImportBatch.Kind.REPLY:
        if handover_list is None:
            problems.append(("handover_list", "a reply answers a list: choose it"))
        if received_on is None:
            problems.append(("received_on", "say when the reply was received"))
        target = f"reply:{handover_list.pk if handover_list else ''}"
    else:
        raise ExchangeError([("kind", f"“{kind}” is neither a list nor a reply")])
    if not content:
        problems.append(("file", "the file is empty"))
    digest = hashlib.sha256(content).hexdigest()
    # Asked first: a second run of the same import is told it is done, not that its list exists.
    done = ImportBatch.objects.filter(file_sha256=digest, target=target, status=ImportBatch.Status.DONE).first()
    if done is not None:
        into = f" as list {done.handover_list}" if kind == ImportBatch.Kind.LIST and done.handover_list else ""
        raise AlreadyImported([("file", f"{file_name} was already imported{into} (import {done.pk}); "
                                        "nothing was imported again")])
    if problems:
        raise ExchangeError(problems)
    batch = ImportBatch(kind=kind, file_name=file_name[:255], file_sha256=digest, target=target, sender=sender,
                        recipient=recipient, reference=reference, handed_over_on=handed_over_on,
                        response_due_on=response_due_on, handover_list=handover_list, received_on=received_on,
                        created_by=actor)
    batch.file.save(file_name, ContentFile(content), save=False)
    batch.save()
    return batch


ProgressCallback = Callable[[int, int], None]


def _progress_key(batch_id: int) -> str:
    return f"tracker:import-progress:{batch_id}"


def _report_progress(batch: ImportBatch, done: int, total: int, progress: ProgressCallback | None) -> None:
    # Inside the import's transaction the batch row's own progress is invisible to other
    # connections until the end; the shared cache is what the admin page reads meanwhile.
    cache.set(_progress_key(batch.pk), done, timeout=6 * 3600)
    if not transaction.get_connection().in_atomic_block:
        ImportBatch.objects.filter(pk=batch.pk).update(progress=done)
    if progress is not None:
        progress(done, total)


def import_progress(batch: ImportBatch) -> int:
    """Rows checked or written so far, for a batch being checked or imported now."""
    if batch.is_running:
        return max(int(cache.get(_progress_key(batch.pk)) or 0), batch.progress)
    return batch.progress


def _fail(batch: ImportBatch, problems: Iterable[RowProblem | dict[str, Any]]) -> ImportBatch:
    errors = [p.as_dict() if isinstance(p, RowProblem) else p for p in problems]
    batch.errors = sorted(errors, key=lambda e: (e["line"] is not None, e["line"] or 0, e["column"]))
    batch.status = ImportBatch.Status.FAILED
    batch.finished_at = timezone.now()
    batch.save(update_fields=["errors", "status", "finished_at", "updated_at"])
    return batch


@bulk_job()
def import_batch_validate(*, batch_id: int, progress: ProgressCallback | None = None) -> ImportBatch:
    """Read and check every row, and match each to the stored children: the preview.

    A file with any bad row is refused as a whole, with every problem named (line, column,
    reason); otherwise its rows are kept as they will be saved, each with its match: the same child
    as a stored one, possibly a stored one (for the case worker to decide), or a new child.
    """
    with transaction.atomic():
        batch = ImportBatch.objects.select_for_update().get(pk=batch_id)
        if batch.status not in (ImportBatch.Status.UPLOADED, ImportBatch.Status.VALIDATING):
            return batch
        batch.status = ImportBatch.Status.VALIDATING
        batch.save(update_fields=["status", "updated_at"])
    with batch.file.open("rb") as uploaded:
        content = uploaded.read()
    today = timezone.localdate()
    if batch.kind == ImportBatch.Kind.LIST:
        parsed = imports.parse_list(content, batch.file_name, today=today)
    else:
        parsed = imports.parse_reply(content, batch.file_name, today=today)
    batch.row_count = len(parsed.rows) + len({p.line for p in parsed.problems if p.line is not None})
    batch.summary = {"header_line": parsed.header_line, "columns": parsed.columns,
                     "ignored_columns": parsed.ignored_columns}
    batch.save(update_fields=["row_count", "summary", "updated_at"])
    if parsed.problems:
        return _fail(batch, parsed.problems)
    if batch.kind == ImportBatch.Kind.LIST:
        rows, problems = _match_list_rows(batch, parsed, progress)
    else:
        rows, problems = _match_reply_rows(batch, parsed, progress)
    if problems:
        return _fail(batch, problems)
    with transaction.atomic():
        batch.rows.all().delete()
        insert_instances(rows, ImportRow)
        counts = {verdict: sum(row.verdict == verdict for row in rows) for verdict in ImportRow.Verdict.values}
        batch.summary = {**batch.summary, "rows": len(rows), **counts}
        batch.status = ImportBatch.Status.VALIDATED
        batch.progress = len(rows)
        batch.errors = []
        batch.save(update_fields=["summary", "status", "progress", "errors", "updated_at"])
    return batch


def _match_list_rows(batch: ImportBatch, parsed: ParsedFile,
                     progress: ProgressCallback | None) -> tuple[list[ImportRow], list[RowProblem]]:
    problems: list[RowProblem] = []
    reference = batch.reference or next((row.data["reference"] for row in parsed.rows if row.data["reference"]), "")
    if not reference:
        problems.append(RowProblem(None, "", "the list needs a reference: give it with the upload, or in a "
                                             "“Номер списку / list reference” column"))
    elif not batch.reference and HandoverList.objects.filter(reference=reference).exists():
        problems.append(RowProblem(None, parsed.columns.get("reference", ""), f"a list {reference} already exists"))
    rows: list[ImportRow] = []
    step = QUERY_BATCH
    for start in range(0, len(parsed.rows), step):
        chunk = parsed.rows[start:start + step]
        for row, found in zip(chunk, find_candidates([row.record() for row in chunk]), strict=True):
            best = found[0] if found else None
            verdict = ImportRow.Verdict.NEW
            if best is not None:
                verdict = ImportRow.Verdict.MATCHED if best.verdict == "same" else ImportRow.Verdict.PROPOSED
                if verdict == ImportRow.Verdict.MATCHED and len(found) > 1 and found[1].verdict == "same":
                    # Two stored children the row is equally sure of: a duplicate pair, for a person to judge.
                    verdict = ImportRow.Verdict.PROPOSED
            rows.append(ImportRow(
                batch=batch, line_number=row.line, position=row.position, data=row.data, verdict=verdict,
                child=best.child if best else None, score=best.score.score if best else None,
                reasons=list(best.score.reasons) if best else [],
            ))
        _report_progress(batch, len(rows), len(parsed.rows), progress)
    first_line: dict[int, int] = {}
    for row in rows:
        if row.verdict == ImportRow.Verdict.MATCHED and row.child_id is not None:
            if row.child_id in first_line:
                problems.append(RowProblem(row.line_number, parsed.columns.get("family_name", ""),
                                           f"the same stored child ({row.child}) as line {first_line[row.child_id]}"))
            first_line.setdefault(row.child_id, row.line_number)
    if reference and not batch.reference:
        batch.reference = reference
        batch.save(update_fields=["reference", "updated_at"])
    return rows, problems


def _match_reply_rows(batch: ImportBatch, parsed: ParsedFile,
                      progress: ProgressCallback | None) -> tuple[list[ImportRow], list[RowProblem]]:
    """Each row to its entry on the list: by its number, checked against the name when both are
    given; by the name alone through the engine, over the list's own entries."""
    assert batch.handover_list is not None
    reference = batch.handover_list.reference
    entries = list(batch.handover_list.entries.select_related("child"))
    by_position = {entry.position: entry for entry in entries}
    spellings = {entry.pk: child_records(entry.child) for entry in entries}
    filed: dict[str, set[int]] = defaultdict(set)
    for entry in entries:
        for record in spellings[entry.pk]:
            for key in blocking_keys(record):
                filed[key].add(entry.pk)
    by_id = {entry.pk: entry for entry in entries}
    name_column = parsed.columns.get("family_name") or parsed.columns.get("full_name", "")

    def judged(record: PersonRecord, entry: ListEntry) -> MatchScore:
        return max((compare(record, spelling) for spelling in spellings[entry.pk]), key=lambda s: s.points)

    rows: list[ImportRow] = []
    problems: list[RowProblem] = []
    answered: dict[int, int] = {}
    for row in parsed.rows:
        record = row.record()
        named = bool(row.data["family_name"] and row.data["given_name"])
        score = None
        if row.position is not None:
            entry = by_position.get(row.position)
            if entry is None:
                problems.append(RowProblem(row.line, parsed.columns.get("position", "№"),
                                           f"number {row.position} is not on list {reference}"))
                continue
            if named:
                score = judged(record, entry)
                if score.verdict == "different":
                    problems.append(RowProblem(row.line, name_column,
                                               f"number {row.position} on {reference} is {entry.child}, "
                                               f"not {record.family_name} {record.given_name}"))
                    continue
        else:
            near = set().union(*(filed.get(key, set()) for key in blocking_keys(record)))
            scored = sorted(((judged(record, by_id[pk]), by_id[pk]) for pk in near),
                            key=lambda pair: -pair[0].points)
            # Among the few children of one list, a name alone may do: the one child judged the
            # same, or failing that the one child judged possibly the same.
            same = [pair for pair in scored if pair[0].verdict == "same"]
            possible = [pair for pair in scored if pair[0].verdict == "possible"]
            chosen = same if same else possible
            if len(chosen) != 1:
                closest = f"; the closest is number {scored[0][1].position} ({scored[0][1].child})" if scored else ""
                why = "more than one child on the list has this name: give the number" if chosen else \
                    f"no child on list {reference} is this one{closest}: give the number"
                problems.append(RowProblem(row.line, name_column, why))
                continue
            score, entry = chosen[0]
        if entry.pk in answered:
            problems.append(RowProblem(row.line, name_column or parsed.columns.get("position", "№"),
                                       f"number {entry.position} is already answered on line {answered[entry.pk]}"))
            continue
        answered[entry.pk] = row.line
        rows.append(ImportRow(batch=batch, line_number=row.line, position=entry.position, data=row.data,
                              verdict=ImportRow.Verdict.ENTRY, child=entry.child,
                              score=score.score if score else None, reasons=list(score.reasons) if score else []))
    _report_progress(batch, len(parsed.rows), len(parsed.rows), progress)
    return rows, problems


def import_batch_decide(*, batch: ImportBatch, decisions: dict[int, str], actor: AbstractBaseUser | None) -> int:
    """A case worker's decisions on proposed matches, by line: "accept" the stored child, or
    "reject" it for a new child. Returns how many rows were decided."""
    unknown = {line: value for line, value in decisions.items() if value not in ImportRow.Decision.values}
    if unknown:
        raise ExchangeError([(f"line {line}", f"“{value}” is not a decision") for line, value in unknown.items()])
    with transaction.atomic():
        locked = ImportBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != ImportBatch.Status.VALIDATED:
            raise ExchangeError([("status", f"import {locked.pk} is {locked.get_status_display().lower()}, "
                                            "not awaiting confirmation")])
        decided = 0
        for row in locked.rows.filter(verdict=ImportRow.Verdict.PROPOSED, line_number__in=list(decisions)):
            if row.decision != decisions[row.line_number]:
                row.decision = decisions[row.line_number]
                row.save(update_fields=["decision"])
                decided += 1
    return decided


def import_batch_start(*, batch: ImportBatch, actor: AbstractBaseUser | None, proposed: str = "") -> ImportBatch:
    """Check the batch may be imported and mark it as importing, in its own short transaction, so
    that the admin shows it at once and a second confirmation is refused.

    `proposed` decides every still undecided proposed match ("accept" or "reject"); without it,
    an undecided one stops the import, naming its line.
    """
    with transaction.atomic():
        locked = ImportBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != ImportBatch.Status.VALIDATED:
            raise ExchangeError([("status", f"import {locked.pk} is {locked.get_status_display().lower()}, "
                                            "not awaiting confirmation")])
        undecided = locked.rows.filter(verdict=ImportRow.Verdict.PROPOSED, decision="")
        if proposed:
            undecided.update(decision=proposed)
        elif undecided.exists():
            lines = ", ".join(str(line) for line in undecided.values_list("line_number", flat=True)[:50])
            raise ExchangeError([("proposed", f"decide the proposed matches first (lines {lines})")])
        locked.status = ImportBatch.Status.IMPORTING
        locked.progress = 0
        locked.save(update_fields=["status", "progress", "updated_at"])
    return locked


@bulk_job()
def import_batch_run(*, batch_id: int, actor: AbstractBaseUser | None,
                     progress: ProgressCallback | None = None) -> ImportBatch:
    """Write a started batch, all of it in one transaction: the list with its children and cases,
    or the reply. If anything is refused, nothing is written and the batch says why."""
    batch = ImportBatch.objects.get(pk=batch_id)
    if batch.status != ImportBatch.Status.IMPORTING:
        return batch
    rows = list(batch.rows.select_related("child").order_by("position", "line_number"))
    try:
        with transaction.atomic():
            if batch.kind == ImportBatch.Kind.LIST:
                made = _import_list(batch, rows, actor, progress)
            else:
                made = _import_reply(batch, rows, actor, progress)
            batch.status = ImportBatch.Status.DONE
            batch.progress = len(rows)
            batch.finished_at = timezone.now()
            batch.summary = {**batch.summary, **made}
            batch.save(update_fields=["status", "progress", "finished_at", "summary", "handover_list", "reply",
                                      "updated_at"])
    except ExchangeError as error:
        batch.refresh_from_db()
        lines = {index: row.line_number for index, row in enumerate(rows)}
        return _fail(batch, [_problem_at_line(where, why, lines) for where, why in error.problems])
    except IntegrityError as error:
        batch.refresh_from_db()
        return _fail(batch, [{"line": None, "column": "", "reason": f"refused by the database: {error}"}])
    cache.delete(_progress_key(batch.pk))
    return batch


def _problem_at_line(where: str, why: str, lines: dict[int, int]) -> dict[str, Any]:
    found = re.match(r"outcomes\[(\d+)\]", where)
    if found and int(found.group(1)) in lines:
        return {"line": lines[int(found.group(1))], "column": "", "reason": why}
    found = re.match(r"line (\d+)$", where)
    if found:
        return {"line": int(found.group(1)), "column": "", "reason": why}
    return {"line": None, "column": where, "reason": why}


IMPORT_CHUNK = 2000


def _import_list(batch: ImportBatch, rows: list[ImportRow], actor: AbstractBaseUser | None,
                 progress: ProgressCallback | None) -> dict[str, Any]:
    handover_list = HandoverList.objects.create(
        reference=batch.reference, title=f"Imported from {batch.file_name}", sender=batch.sender,
        recipient=batch.recipient, created_by=actor, notes=f"Import {batch.pk} of {batch.file_name}",
    )
    source = f"list {handover_list.reference} ({batch.file_name})"
    stored = [row for row in rows if row.verdict == ImportRow.Verdict.MATCHED
              or (row.verdict == ImportRow.Verdict.PROPOSED and row.decision == ImportRow.Decision.ACCEPT)]
    # A child merged since the preview stands for the child it was merged into.
    for row in stored:
        if row.child is not None and row.child.merged_into_id is not None:
            row.child = Child.objects.get(pk=row.child.merged_into_id)
    used: dict[int, int] = {}
    problems = []
    for row in stored:
        assert row.child is not None
        if row.child.pk in used:
            problems.append((f"line {row.line_number}",
                             f"{row.child} is already the child of line {used[row.child.pk]}"))
        used.setdefault(row.child.pk, row.line_number)
    if problems:
        raise ExchangeError(problems)
    # What listing reads of a live case: its key, child and status (the move reads the status afresh).
    live = {case.child_id: case for case in Case.objects.filter(child_id__in=keys_in(used)).exclude(
        status=CaseStatus.CLOSED).only("pk", "child_id", "status")}
    stored_lines = {row.line_number for row in stored}
    counts = {"matched": 0, "accepted": 0, "new": 0, "spellings_added": 0}
    # A list handed over before it was imported is written handed over, entry by entry, as it is filled.
    handing_over = HandOver(batch.handed_over_on, batch.response_due_on) if batch.handed_over_on else None
    # Written in bulk, a chunk of rows at a time, through the same services a case worker's single
    # writes use: children and cases with history, match keys and timelines, then the entries.
    for start in range(0, len(rows), IMPORT_CHUNK):
        chunk = rows[start:start + IMPORT_CHUNK]
        known = [row for row in chunk if row.line_number in stored_lines]
        for row in known:
            counts["matched" if row.verdict == ImportRow.Verdict.MATCHED else "accepted"] += 1
        counts["spellings_added"] += children_add_spellings(spellings=[
            (row.child, row.data["family_name"], row.data["given_name"], row.data["patronymic"])
            for row in known if row.child is not None], source=source, actor=actor)
        without_case = [row.child for row in known if row.child is not None and row.child.pk not in live]
        for case in cases_open_many(children=without_case, actor=actor, note=f"Opened for {source}"):
            live[case.child_id] = case
        fresh = [row for row in chunk if row.line_number not in stored_lines]
        counts["new"] += len(fresh)
        made = children_create_many(actor=actor, note=f"Added from {source}", children=[Child(
            family_name=row.data["family_name"], given_name=row.data["given_name"], patronymic=row.data["patronymic"],
            birth_date=datetime.date.fromisoformat(row.data["birth_date"]) if row.data["birth_date"] else None,
            birth_date_precision=row.data["birth_date_precision"], sex=row.data["sex"],
            home_settlement=row.data["settlement"], home_oblast=row.data["oblast"],
            last_known_location=row.data["last_known_location"],
        ) for row in fresh])
        new_cases = dict(zip((row.line_number for row in fresh), made, strict=True))
        cases = [new_cases[row.line_number] if row.line_number in new_cases else live[row.child.pk]  # type: ignore[union-attr]
                 for row in chunk]
        list_add_cases(handover_list=handover_list, cases=cases, positions=[row.position for row in chunk],
                       actor=actor, handing_over=handing_over)
        _report_progress(batch, start + len(chunk), len(rows), progress)
    if batch.handed_over_on:
        list_hand_over(handover_list=handover_list, handed_over_on=batch.handed_over_on,
                       response_due_on=batch.response_due_on, actor=actor)
    batch.handover_list = handover_list
    if len(rows) >= ANALYZE_AFTER_ROWS:
        # The deadline sweep plans its statements on the entries' statistics.
        refresh_statistics(ListEntry)
    return {**counts, "list": handover_list.reference}


def _import_reply(batch: ImportBatch, rows: list[ImportRow], actor: AbstractBaseUser | None,
                  progress: ProgressCallback | None) -> dict[str, Any]:
    assert batch.handover_list is not None and batch.received_on is not None
    recorded = reply_record(
        handover_list=batch.handover_list, received_on=batch.received_on, actor=actor, reference=batch.reference,
        notes=f"Imported from {batch.file_name} (import {batch.pk})",
        outcomes=[OutcomeInput(position=row.position, outcome=row.data["outcome"], details=row.data["details"],
                               reported_location=row.data["reported_location"]) for row in rows],
    )
    batch.reply = recorded.reply
    _report_progress(batch, len(rows), len(rows), progress)
    return {"answered": len(recorded.outcomes), "flags_resolved": recorded.flags_resolved,
            "cases_moved": recorded.cases_moved}
