"""Imports of lists and replies from spreadsheets: upload, check and match (the preview), decide, write."""

from __future__ import annotations

import datetime
import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from cases.matching.candidates import QUERY_BATCH, child_records, find_candidates
from cases.matching.engine import MatchScore, PersonRecord, blocking_keys, compare
from cases.models import Case, Child
from cases.services import (
    cases_open_many,
    children_add_spellings,
    children_create_many,
)
from core.bulk import (
    ANALYZE_AFTER_ROWS,
    bulk_job,
    insert_instances,
    keys_in,
    refresh_statistics,
)
from tracker import spreadsheets
from tracker.models import (
    HandoverList,
    ImportBatch,
    ImportRow,
    ListEntry,
    Organisation,
)
from tracker.services.exchange import (
    ExchangeError,
    HandOver,
    OutcomeInput,
    list_add_cases,
    list_hand_over,
    reply_record,
)
from tracker.spreadsheets import ParsedFile, RowProblem

CaseStatus = Case.Status


def file_too_large(size: int) -> str:
    limit = settings.TRACKER_IMPORT_MAX_BYTES
    return (f"the file is {size / 2**20:.1f} MB; at most {limit / 2**20:.0f} MB is taken in one import: "
            "split it into several files")


class AlreadyImported(ExchangeError):
    """The same file was already imported into the same place: nothing is done the second time."""


def import_batch_create(
    *,
    kind: str,
    content: bytes,
    file_name: str,
    actor: User | None,
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
    elif len(content) > settings.TRACKER_IMPORT_MAX_BYTES:
        problems.append(("file", file_too_large(len(content))))
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
        # updated_at too: a check still making progress is not taken for a lost one.
        ImportBatch.objects.filter(pk=batch.pk).update(progress=done, updated_at=timezone.now())
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
        parsed = spreadsheets.parse_list(content, batch.file_name, today=today,
                                         max_rows=settings.TRACKER_IMPORT_MAX_ROWS)
    else:
        parsed = spreadsheets.parse_reply(content, batch.file_name, today=today,
                                          max_rows=settings.TRACKER_IMPORT_MAX_ROWS)
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
        # Another run of the same check (a job delivered twice, the periodic resume) may have
        # finished first: its rows stand.
        current = ImportBatch.objects.select_for_update().get(pk=batch.pk)
        if current.status != ImportBatch.Status.VALIDATING:
            return current
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
    for match in rows:
        if match.verdict == ImportRow.Verdict.MATCHED and match.child_id is not None:
            if match.child_id in first_line:
                problems.append(RowProblem(match.line_number, parsed.columns.get("family_name", ""),
                                           f"the same stored child ({match.child}) "
                                           f"as line {first_line[match.child_id]}"))
            first_line.setdefault(match.child_id, match.line_number)
    if reference and not batch.reference:
        batch.reference = reference
        batch.save(update_fields=["reference", "updated_at"])
    return rows, problems


def _match_reply_rows(batch: ImportBatch, parsed: ParsedFile,
                      progress: ProgressCallback | None) -> tuple[list[ImportRow], list[RowProblem]]:
    """Each row to its entry on the list: by its number, checked against the name when both are
    given; by the name alone through the engine, over the list's own entries."""
    assert batch.handover_list is not None  # noqa: S101 an invariant, for the type checker
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
            if row.position not in by_position:
                problems.append(RowProblem(row.line, parsed.columns.get("position", "№"),
                                           f"number {row.position} is not on list {reference}"))
                continue
            entry = by_position[row.position]
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


def import_batch_decide(*, batch: ImportBatch, decisions: dict[int, str], actor: User | None) -> int:
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


def import_batch_start(*, batch: ImportBatch, actor: User | None, proposed: str = "") -> ImportBatch:
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
        locked.confirmed_by = actor
        locked.save(update_fields=["status", "progress", "confirmed_by", "updated_at"])
    return locked


@bulk_job()
def import_batch_run(*, batch_id: int, actor: User | None,
                     progress: ProgressCallback | None = None) -> ImportBatch:
    """Write a started batch, all of it in one transaction: the list with its children and cases,
    or the reply. If anything is refused, nothing is written and the batch says why."""
    rows: list[ImportRow] = []
    batch: ImportBatch | None = None
    try:
        with transaction.atomic():
            # Locked for the whole import: a second run of the same batch (a job delivered twice, the
            # periodic resume) finds it held and leaves it; a run killed half-way rolled back and let go.
            batch = ImportBatch.objects.select_for_update(skip_locked=True).filter(
                pk=batch_id, status=ImportBatch.Status.IMPORTING).first()
            if batch is None:
                return ImportBatch.objects.get(pk=batch_id)
            rows = list(batch.rows.select_related("child").order_by("position", "line_number"))
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
        assert batch is not None  # noqa: S101 an invariant, for the type checker
        batch.refresh_from_db()
        lines = {index: row.line_number for index, row in enumerate(rows)}
        return _fail(batch, [_problem_at_line(where, why, lines) for where, why in error.problems])
    except IntegrityError as error:
        if batch is None:
            raise
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


def _import_list(batch: ImportBatch, rows: list[ImportRow], actor: User | None,
                 progress: ProgressCallback | None) -> dict[str, Any]:
    assert batch.sender is not None and batch.recipient is not None  # noqa: S101 an invariant, for the type checker
    handover_list = HandoverList.objects.create(
        reference=batch.reference, title=f"Imported from {batch.file_name}", sender=batch.sender,
        recipient=batch.recipient, created_by=actor, notes=f"Import {batch.pk} of {batch.file_name}",
    )
    source = f"list {handover_list.reference} ({batch.file_name})"
    stored = [row for row in rows if row.verdict == ImportRow.Verdict.MATCHED
              or (row.verdict == ImportRow.Verdict.PROPOSED and row.decision == ImportRow.Decision.ACCEPT)]
    # A child merged since the preview stands for the child it was merged into.
    merged_into = {row.child.merged_into_id for row in stored if row.child is not None and row.child.merged_into_id}
    if merged_into:
        kept = Child.objects.in_bulk(list(merged_into))
        for row in stored:
            if row.child is not None and row.child.merged_into_id is not None:
                row.child = kept[row.child.merged_into_id]
    used: dict[int, int] = {}
    problems = []
    for row in stored:
        assert row.child is not None  # noqa: S101 an invariant, for the type checker
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
        # A row not new has its child, and every row its number (the reader numbers an unnumbered file).
        cases = [new_cases[row.line_number] if row.line_number in new_cases else live[cast(Child, row.child).pk]
                 for row in chunk]
        list_add_cases(handover_list=handover_list, cases=cases, positions=[cast(int, row.position) for row in chunk],
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


def _import_reply(batch: ImportBatch, rows: list[ImportRow], actor: User | None,
                  progress: ProgressCallback | None) -> dict[str, Any]:
    assert batch.handover_list is not None and batch.received_on is not None  # noqa: S101 an invariant, for the type checker
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


@dataclass(frozen=True)
class StaleImports:
    """Batches whose job was lost (a broker outage, a worker killed): to check again, or to write."""

    to_validate: list[int]
    to_run: list[tuple[int, int | None]]


def stale_import_batches(*, older_than: datetime.timedelta) -> StaleImports:
    """Batches left waiting for a job longer than `older_than`: uploaded or being checked (their check is
    run again, which is harmless), or confirmed and importing (the run takes the batch's lock, so one
    still running is left alone; one whose worker died was rolled back and is written afresh)."""
    cutoff = timezone.now() - older_than
    stale = ImportBatch.objects.filter(updated_at__lt=cutoff)
    # An uploaded file is checked while the case worker waits unless it is large: only large ones wait.
    to_validate = list(stale.filter(
        Q(status=ImportBatch.Status.VALIDATING)
        | Q(status=ImportBatch.Status.UPLOADED, row_count=0)).order_by("id").values_list("pk", flat=True))
    importing = stale.filter(status=ImportBatch.Status.IMPORTING).order_by("id")
    to_run: list[tuple[int, int | None]] = list(importing.values_list("pk", "confirmed_by_id"))
    return StaleImports(to_validate=to_validate, to_run=to_run)


def import_files_expire(*, now: datetime.datetime | None = None) -> int:
    """Delete the uploaded files the retention period has passed for: of imports finished or failed
    that long ago, and of ones left unconfirmed that long. The batch records stay, with their summary
    and errors; only the file, a copy of children's data no longer needed, goes. Returns how many."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=settings.TRACKER_IMPORT_FILE_RETENTION_DAYS)
    ended = Q(status__in=[ImportBatch.Status.DONE, ImportBatch.Status.FAILED], finished_at__lt=cutoff)
    left = Q(status__in=[ImportBatch.Status.UPLOADED, ImportBatch.Status.VALIDATED], updated_at__lt=cutoff)
    deleted = 0
    for batch in ImportBatch.objects.filter(ended | left).exclude(file="").only("pk", "file"):
        batch.file.delete(save=False)
        ImportBatch.objects.filter(pk=batch.pk).update(file="")
        deleted += 1
    return deleted
