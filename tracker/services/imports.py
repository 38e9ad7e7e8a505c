"""Imports of lists and replies from spreadsheets: upload, check and match (the preview), decide, write."""

from __future__ import annotations

import datetime
import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, NamedTuple, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from cases.matching.candidates import QUERY_BATCH, child_records, find_candidates, sync_match_keys_many
from cases.matching.engine import MatchScore, PersonRecord, blocking_keys, compare
from cases.models import MATCH_FIELDS, Case, Child
from cases.services import (
    cases_open_many,
    children_add_spellings,
)
from core.bulk import (
    ANALYZE_AFTER_ROWS,
    CHANGED,
    bulk_job,
    insert_instances,
    insert_rows,
    keys_in,
    record_history,
    refresh_statistics,
    update_instances,
)
from tracker import spreadsheets
from tracker.models import (
    HandoverList,
    ImportBatch,
    ImportMapping,
    ImportRow,
    ListEntry,
    Organisation,
    Outcome,
)
from tracker.services.exchange import (
    ExchangeError,
    HandOver,
    NewChildrenListing,
    OutcomeInput,
    list_add_cases,
    list_hand_over,
    reply_record,
)
from tracker.spreadsheets import ParsedFile, RowProblem

CaseStatus = Case.Status


def file_too_large(size: int) -> str:
    limit = settings.TRACKER_IMPORT_MAX_BYTES
    return _("the file is {size} MB; at most {limit} MB is taken in one import: split it into several files").format(
        size=f"{size / 2**20:.1f}", limit=f"{limit / 2**20:.0f}")


def mapping_read(*, kind: str, columns: dict[str, str] | None = None, outcomes: dict[str, str] | None = None
                 ) -> tuple[dict[str, str], dict[str, str]]:
    """A case worker's mapping, checked, with its keys folded as the reader compares them: headers to
    a field of the kind of file (or "ignore"), reply phrases to an outcome. Refuses an unknown name."""
    fields = spreadsheets.LIST_COLUMNS if kind == ImportBatch.Kind.LIST else spreadsheets.REPLY_COLUMNS
    problems: list[tuple[str, str]] = []
    read_columns: dict[str, str] = {}
    for header, field_name in (columns or {}).items():
        key = spreadsheets.fold(header).replace(" ", "")
        if not key:
            continue
        if field_name not in fields and field_name != spreadsheets.IGNORE:
            problems.append(("columns", _("“{header}={field}”: {field} is not a field; use one of {known}, or "
                                          "ignore").format(header=header, field=field_name,
                                                           known=", ".join(fields))))
        read_columns[key] = field_name
    read_outcomes: dict[str, str] = {}
    for phrase, outcome in (outcomes or {}).items():
        if outcome not in Outcome.values:
            problems.append(("outcomes", _("“{phrase}={outcome}”: {outcome} is not an outcome; use one of {known}")
                             .format(phrase=phrase, outcome=outcome, known=", ".join(Outcome.values))))
        key = spreadsheets.phrase_key(phrase)
        if key:
            read_outcomes[key] = outcome
    if problems:
        raise ExchangeError(problems)
    return read_columns, read_outcomes


def _mapping_sender(batch: ImportBatch) -> Organisation | None:
    """Whose files a batch's mapping is remembered for: a list's sender; a reply's author, the party
    the list was handed to."""
    if batch.kind == ImportBatch.Kind.LIST:
        return batch.sender
    return batch.handover_list.recipient if batch.handover_list is not None else None


def _mapping_for(batch: ImportBatch) -> tuple[dict[str, str], dict[str, str]]:
    sender = _mapping_sender(batch)
    remembered = ImportMapping.objects.filter(organisation=sender, kind=batch.kind).first() if sender else None
    columns = {**(remembered.columns if remembered else {}), **batch.column_mapping}
    outcomes = {**(remembered.outcomes if remembered else {}), **batch.outcome_mapping}
    return columns, outcomes


def import_batch_remap(*, batch: ImportBatch, columns: dict[str, str], outcomes: dict[str, str],
                       actor: User | None, remember: bool = True) -> ImportBatch:
    """A case worker's mapping of a file's headers (and a reply's phrases), kept on the batch and, with
    `remember`, for the sender's next files; the file is then checked again (the caller queues it)."""
    read_columns, read_outcomes = mapping_read(kind=batch.kind, columns=columns, outcomes=outcomes)
    with transaction.atomic():
        locked = ImportBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status not in (ImportBatch.Status.FAILED, ImportBatch.Status.VALIDATED,
                                 ImportBatch.Status.UPLOADED):
            raise ExchangeError([("status", _("import {pk} is {status}: its mapping cannot change now").format(
                pk=locked.pk, status=locked.get_status_display().lower()))])
        if not locked.file:
            raise ExchangeError([("file", _("the file of import {pk} was deleted").format(pk=locked.pk))])
        locked.column_mapping = {**locked.column_mapping, **read_columns}
        locked.outcome_mapping = {**locked.outcome_mapping, **read_outcomes}
        locked.status = ImportBatch.Status.UPLOADED
        locked.errors = []
        locked.progress = 0
        # Counted again by the check; an uploaded batch with no count is what the safety net re-queues.
        locked.row_count = 0
        locked.finished_at = None
        locked.rows.all().delete()
        locked.save(update_fields=["column_mapping", "outcome_mapping", "status", "errors", "progress",
                                   "row_count", "finished_at", "updated_at"])
        sender = _mapping_sender(locked)
        if remember and sender is not None:
            memory, _created = ImportMapping.objects.select_for_update().get_or_create(
                organisation=sender, kind=locked.kind)
            memory.columns = {**memory.columns, **read_columns}
            memory.outcomes = {**memory.outcomes, **read_outcomes}
            memory.updated_by = actor
            memory.save()
    return locked


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
    column_mapping: dict[str, str] | None = None,
    outcome_mapping: dict[str, str] | None = None,
) -> ImportBatch:
    """Keep an uploaded file with what it is to become; nothing of it is read into the lists yet.

    Refuses a file already imported into the same place (same bytes, same list or "a new list").
    `column_mapping` and `outcome_mapping` say how to read headers and reply phrases the reader does
    not know (see `mapping_read`).
    """
    problems: list[tuple[str, str]] = []
    read_columns, read_outcomes = mapping_read(kind=kind, columns=column_mapping, outcomes=outcome_mapping)
    reference = reference.strip()
    if kind == ImportBatch.Kind.LIST:
        if sender is None or recipient is None:
            problems.append(("sender", _("a list needs the party that hands it over and the one that receives it")))
        elif sender.pk == recipient.pk:
            problems.append(("recipient", _("a list is handed to another party than its sender")))
        if handed_over_on and handed_over_on > timezone.localdate():
            problems.append(("handed_over_on", _("the hand-over date is in the future")))
        if handed_over_on and response_due_on and response_due_on < handed_over_on:
            problems.append(("response_due_on", _("the response cannot be due before the hand-over date")))
        if response_due_on and not handed_over_on:
            problems.append(("handed_over_on", _("a reply date needs the hand-over date")))
        if reference and HandoverList.objects.filter(reference=reference).exists():
            problems.append(("reference", _("a list {reference} already exists").format(reference=reference)))
        target = "list"
    elif kind == ImportBatch.Kind.REPLY:
        if handover_list is None:
            problems.append(("handover_list", _("a reply answers a list: choose it")))
        if received_on is None:
            problems.append(("received_on", _("say when the reply was received")))
        target = f"reply:{handover_list.pk if handover_list else ''}"
    else:
        raise ExchangeError([("kind", _("“{kind}” is neither a list nor a reply").format(kind=kind))])
    if not content:
        problems.append(("file", _("the file is empty")))
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
                        created_by=actor, column_mapping=read_columns, outcome_mapping=read_outcomes)
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
    today = timezone.localdate()
    columns, outcomes = _mapping_for(batch)
    # Read as a stream from storage: the file is never held whole in memory.
    with batch.file.open("rb") as uploaded:
        if batch.kind == ImportBatch.Kind.LIST:
            # The search for a child listed twice may go on elsewhere while the rows are matched.
            parsed = spreadsheets.parse_list(uploaded, batch.file_name, today=today,
                                             max_rows=settings.TRACKER_IMPORT_MAX_ROWS, mapping=columns, finish=False)
        else:
            parsed = spreadsheets.parse_reply(uploaded, batch.file_name, today=today,
                                              max_rows=settings.TRACKER_IMPORT_MAX_ROWS, mapping=columns,
                                              outcomes=outcomes)
    batch.summary = {"header_line": parsed.header_line, "columns": parsed.columns,
                     "ignored_columns": parsed.ignored_columns, "notices": parsed.notices,
                     "headers_found": parsed.headers_found, "unread_headers": parsed.unread_headers,
                     "unknown_phrases": parsed.unknown_phrases,
                     "title": parsed.title}

    def count_rows() -> None:
        # Each line once: a row read may be named by a problem too (a child listed twice).
        lines = {row.line for row in parsed.rows} | {p.line for p in parsed.problems if p.line is not None}
        batch.row_count = len(lines)
        batch.save(update_fields=["row_count", "summary", "updated_at"])

    count_rows()
    rows: Sequence[ImportRow | _NewRow] = []
    problems: list[RowProblem] = []
    try:
        if not parsed.problems:
            if batch.kind == ImportBatch.Kind.LIST:
                rows, problems = _match_list_rows(batch, parsed, progress)
            else:
                rows, problems = _match_reply_rows(batch, parsed, progress)
    except BaseException:
        parsed.abandon()
        raise
    parsed.complete()
    count_rows()
    if parsed.problems or problems:
        return _fail(batch, [*parsed.problems, *problems])
    with transaction.atomic():
        # Another run of the same check (a job delivered twice, the periodic resume) may have
        # finished first: its rows stand.
        current = ImportBatch.objects.select_for_update().get(pk=batch.pk)
        if current.status != ImportBatch.Status.VALIDATING:
            return current
        batch.rows.all().delete()
        insert_instances([row for row in rows if isinstance(row, ImportRow)], ImportRow)
        insert_rows(ImportRow, ("batch_id", "line_number", "position", "data", "verdict"),
                    [(batch.pk, *row) for row in rows if isinstance(row, _NewRow)])
        counts = {verdict: sum(row.verdict == verdict for row in rows) for verdict in ImportRow.Verdict.values}
        batch.summary = {**batch.summary, "rows": len(rows), **counts}
        batch.status = ImportBatch.Status.VALIDATED
        batch.progress = len(rows)
        batch.errors = []
        batch.save(update_fields=["summary", "status", "progress", "errors", "updated_at"])
    return batch


class _NewRow(NamedTuple):
    """A row no stored child matches, as its `ImportRow` stores it (no child, score or reasons): the
    most of a register's rows, kept without a model instance each."""

    line_number: int
    position: int | None
    data: dict[str, Any]
    verdict: str = ImportRow.Verdict.NEW

    @property
    def child_id(self) -> None:
        return None


def _match_list_rows(batch: ImportBatch, parsed: ParsedFile,
                     progress: ProgressCallback | None) -> tuple[list[ImportRow | _NewRow], list[RowProblem]]:
    problems: list[RowProblem] = []
    reference = batch.reference or next((row.data["reference"] for row in parsed.rows if row.data["reference"]), "")
    if not reference:
        problems.append(RowProblem(None, "", _("the list needs a reference: give it with the upload, or in a "
                                               "“Номер списку / list reference” column")))
    elif not batch.reference and HandoverList.objects.filter(reference=reference).exists():
        problems.append(RowProblem(None, parsed.columns.get("reference", ""),
                                   _("a list {reference} already exists").format(reference=reference)))
    rows: list[ImportRow | _NewRow] = []
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
            if best is None:
                rows.append(_NewRow(row.line, row.position, row.data))
                continue
            rows.append(ImportRow(
                batch=batch, line_number=row.line, position=row.position, data=row.data, verdict=verdict,
                child=best.child, score=best.score.score, reasons=list(best.score.reasons),
            ))
        _report_progress(batch, len(rows), len(parsed.rows), progress)
    first_line: dict[int, int] = {}
    for match in rows:
        if match.verdict == ImportRow.Verdict.MATCHED and match.child_id is not None:
            if match.child_id in first_line:
                problems.append(RowProblem(match.line_number, parsed.columns.get("family_name", ""),
                                           _("the same stored child ({child}) as line {line}").format(
                                               child=match.child, line=first_line[match.child_id])))
            first_line.setdefault(match.child_id, match.line_number)
    if reference and not batch.reference:
        batch.reference = reference
        batch.save(update_fields=["reference", "updated_at"])
    batch.summary = {**batch.summary, "repeats": _repeats(batch, rows)}
    return rows, problems


def _repeats(batch: ImportBatch, rows: Sequence[ImportRow | _NewRow]) -> list[dict[str, Any]]:
    """Rows whose child (as matched, or as proposed) is still awaiting a reply from the same recipient
    on another list, or on a draft to it: listed again, their open entries and flags would double."""
    by_child = {row.child_id: row for row in rows if row.child_id is not None}
    if not by_child or batch.recipient_id is None:
        return []
    open_entries = ListEntry.objects.filter(
        child_id__in=keys_in(by_child), handover_list__recipient_id=batch.recipient_id,
        reply_state__in=[ListEntry.ReplyState.AWAITING, ListEntry.ReplyState.NOT_SENT],
    ).values_list("child_id", "handover_list__reference", "position", "handover_list__handed_over_on")
    repeats = []
    for child_id, reference, position, handed_over_on in open_entries.order_by("handover_list__handed_over_on"):
        row = by_child[child_id]
        repeats.append({"line": row.line_number, "child": str(row.child), "list": reference, "position": position,
                        "handed_over_on": handed_over_on.isoformat() if handed_over_on else None,
                        "proposed": row.verdict == ImportRow.Verdict.PROPOSED})
    return sorted(repeats, key=lambda repeat: repeat["line"])


def import_batch_repeats(batch: ImportBatch) -> list[dict[str, Any]]:
    """The rows listing a child still awaiting a reply from the same recipient, as the import would
    write them: matched rows, and proposed ones unless decided to be another child."""
    rejected = set(batch.rows.filter(verdict=ImportRow.Verdict.PROPOSED, decision=ImportRow.Decision.REJECT)
                   .values_list("line_number", flat=True)) if batch.summary.get("repeats") else set()
    return [repeat for repeat in batch.summary.get("repeats", []) if repeat["line"] not in rejected]


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
                                           _("number {position} is not on list {reference}").format(
                                               position=row.position, reference=reference)))
                continue
            entry = by_position[row.position]
            if named:
                score = judged(record, entry)
                if score.verdict == "different":
                    problems.append(RowProblem(row.line, name_column,
                                               _("number {position} on {reference} is {child}, not {name}").format(
                                                   position=row.position, reference=reference, child=entry.child,
                                                   name=f"{record.family_name} {record.given_name}")))
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
                closest = _("; the closest is number {position} ({child})").format(
                    position=scored[0][1].position, child=scored[0][1].child) if scored else ""
                why = _("more than one child on the list has this name: give the number") if chosen else \
                    _("no child on list {reference} is this one{closest}: give the number").format(
                        reference=reference, closest=closest)
                problems.append(RowProblem(row.line, name_column, why))
                continue
            score, entry = chosen[0]
        if entry.pk in answered:
            problems.append(RowProblem(row.line, name_column or parsed.columns.get("position", "№"),
                                       _("number {position} is already answered on line {line}").format(
                                           position=entry.position, line=answered[entry.pk])))
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
        raise ExchangeError([(_("line {line}").format(line=line), _("“{value}” is not a decision").format(value=value))
                             for line, value in unknown.items()])
    with transaction.atomic():
        locked = ImportBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != ImportBatch.Status.VALIDATED:
            raise ExchangeError([("status", _("import {pk} is {status}, not awaiting confirmation").format(
                pk=locked.pk, status=locked.get_status_display().lower()))])
        decided = 0
        for row in locked.rows.filter(verdict=ImportRow.Verdict.PROPOSED, line_number__in=list(decisions)):
            if row.decision != decisions[row.line_number]:
                row.decision = decisions[row.line_number]
                row.save(update_fields=["decision"])
                decided += 1
    return decided


def import_batch_start(*, batch: ImportBatch, actor: User | None, proposed: str = "",
                       repeats_confirmed: bool = False) -> ImportBatch:
    """Check the batch may be imported and mark it as importing, in its own short transaction, so
    that the admin shows it at once and a second confirmation is refused.

    `proposed` decides every still undecided proposed match ("accept" or "reject"); without it,
    an undecided one stops the import, naming its line. A child still awaiting a reply from the same
    recipient (`import_batch_repeats`) is listed again only with `repeats_confirmed`.
    """
    with transaction.atomic():
        locked = ImportBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != ImportBatch.Status.VALIDATED:
            raise ExchangeError([("status", _("import {pk} is {status}, not awaiting confirmation").format(
                pk=locked.pk, status=locked.get_status_display().lower()))])
        undecided = locked.rows.filter(verdict=ImportRow.Verdict.PROPOSED, decision="")
        if proposed:
            undecided.update(decision=proposed)
        elif undecided.exists():
            lines = ", ".join(str(line) for line in undecided.values_list("line_number", flat=True)[:50])
            raise ExchangeError([("proposed", _("decide the proposed matches first (lines {lines})").format(
                lines=lines))])
        repeats = import_batch_repeats(locked)
        if repeats and not repeats_confirmed:
            lines = ", ".join(str(repeat["line"]) for repeat in repeats[:50])
            raise ExchangeError([("repeats", _(
                "{count} children are still awaiting a reply from {recipient} on another list (lines {lines}): "
                "confirm to list them again").format(count=len(repeats), recipient=locked.recipient, lines=lines))])
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
            if batch.kind == ImportBatch.Kind.LIST:
                made = _import_list(batch, actor, progress)
                written = made.pop("rows_written")
            else:
                rows = list(batch.rows.select_related("child").order_by("position", "line_number"))
                made = _import_reply(batch, rows, actor, progress)
                written = len(rows)
            batch.status = ImportBatch.Status.DONE
            batch.progress = written
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
        return _fail(batch, [{"line": None, "column": "", "reason": _("refused by the database: {error}").format(
            error=error)}])
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
# New children are written this many at a time: the rows read from the batch, the values derived and
# the statements sent are bounded by it, not by the size of the list.
NEW_CHILDREN_CHUNK = 10_000


def _import_list(batch: ImportBatch, actor: User | None, progress: ProgressCallback | None) -> dict[str, Any]:
    assert batch.sender is not None and batch.recipient is not None  # noqa: S101 an invariant, for the type checker
    handover_list = HandoverList.objects.create(
        reference=batch.reference, title=(batch.summary.get("title") or "")[:200], sender=batch.sender,
        recipient=batch.recipient, created_by=actor, notes=f"Import {batch.pk} of {batch.file_name}",
    )
    source = f"list {handover_list.reference} ({batch.file_name})"
    ordered = batch.rows.order_by("position", "line_number")
    known_rows = Q(verdict=ImportRow.Verdict.MATCHED) | Q(verdict=ImportRow.Verdict.PROPOSED,
                                                           decision=ImportRow.Decision.ACCEPT)
    stored = list(ordered.filter(known_rows).select_related("child"))
    total = batch.rows.count()
    # A list handed over before it was imported is written handed over, entry by entry, as it is filled.
    handing_over = HandOver(batch.handed_over_on, batch.response_due_on) if batch.handed_over_on else None
    counts = _list_known_children(handover_list, stored, actor=actor, source=source, handing_over=handing_over)
    done = len(stored)
    _report_progress(batch, done, total, progress)
    # The children new to the tracker, the most of a register: read from the batch a chunk at a time and
    # written as `list_add_new_children` writes them, the same records in a fixed number of statements a
    # chunk. Each chunk's records are sent by a helper thread while the next chunk is read and worked
    # out (`NewChildrenListing`): the database and Python each take about half of the write.
    fresh = ordered.exclude(known_rows).values_list("position", "data")
    # A small first chunk: the database has nothing to do until it is built.
    chunks = _chunked(fresh.iterator(chunk_size=NEW_CHILDREN_CHUNK), NEW_CHILDREN_CHUNK,
                      first=NEW_CHILDREN_CHUNK // 5)
    with NewChildrenListing(handover_list=handover_list, count=total - len(stored), actor=actor,
                            note=f"Added from {source}", handing_over=handing_over) as listing:
        current = next(chunks, [])
        while current:
            # The reader numbers an unnumbered file, so every row has its position.
            planned = listing.plan(children=[_child_fields(data) for _position, data in current],
                                   positions=[cast(int, position) for position, _data in current],
                                   handed_over_as=[as_handed_over(data) for _position, data in current])
            # The next chunk read before this one is sent: building it then needs nothing of the database.
            following = next(chunks, [])
            listing.send(planned)
            _report_progress(batch, done, total, progress)
            done += len(current)
            current = following
    counts["new"] = done - len(stored)
    _report_progress(batch, done, total, progress)
    if batch.handed_over_on:
        list_hand_over(handover_list=handover_list, handed_over_on=batch.handed_over_on,
                       response_due_on=batch.response_due_on, actor=actor)
    batch.handover_list = handover_list
    if done >= ANALYZE_AFTER_ROWS:
        # The deadline sweep plans its statements on the entries' statistics.
        refresh_statistics(ListEntry)
    return {**counts, "list": handover_list.reference, "rows_written": done}


def _chunked(rows: Iterator[Any], size: int, *, first: int | None = None) -> Iterator[list[Any]]:
    """The rows in lists of `size` (the first of `first`)."""
    taking = first or size
    while chunk := list(islice(rows, taking)):
        yield chunk
        taking = size


def _list_known_children(handover_list: HandoverList, stored: list[ImportRow], *, actor: User | None, source: str,
                         handing_over: HandOver | None) -> dict[str, int]:
    """The rows of children already in the tracker put on the list: a spelling not known kept, blank
    fields filled, a case opened where none is live, then listed as a case worker lists them."""
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
            problems.append((_("line {line}").format(line=row.line_number),
                             _("{child} is already the child of line {line}").format(
                                 child=row.child, line=used[row.child.pk])))
        used.setdefault(row.child.pk, row.line_number)
    if problems:
        raise ExchangeError(problems)
    # What listing reads of a live case: its key, child and status (the move reads the status afresh).
    live = {case.child_id: case for case in Case.objects.filter(child_id__in=keys_in(used)).exclude(
        status=CaseStatus.CLOSED).only("pk", "child_id", "status")}
    counts = {"matched": 0, "accepted": 0, "spellings_added": 0, "blanks_filled": 0}
    # Written in bulk, a chunk of rows at a time, through the same services a case worker's single
    # writes use.
    for start in range(0, len(stored), IMPORT_CHUNK):
        chunk = stored[start:start + IMPORT_CHUNK]
        for row in chunk:
            counts["matched" if row.verdict == ImportRow.Verdict.MATCHED else "accepted"] += 1
        counts["spellings_added"] += children_add_spellings(spellings=[
            (row.child, row.data["family_name"], row.data["given_name"], row.data["patronymic"])
            for row in chunk if row.child is not None], source=source, actor=actor)
        counts["blanks_filled"] += _children_fill_blanks(chunk, source=source, actor=actor)
        without_case = [row.child for row in chunk if row.child is not None and row.child.pk not in live]
        for case in cases_open_many(children=without_case, actor=actor, note=f"Opened for {source}"):
            live[case.child_id] = case
        list_add_cases(handover_list=handover_list, cases=[live[cast(Child, row.child).pk] for row in chunk],
                       positions=[cast(int, row.position) for row in chunk], actor=actor, handing_over=handing_over,
                       handed_over_as=[as_handed_over(row.data) for row in chunk])
    return counts


# A row's values, by the child's field they give (the reader's names for them on the left).
_CHILD_FIELDS = {
    "family_name": "family_name", "given_name": "given_name", "patronymic": "patronymic",
    "family_name_latin": "family_name_latin", "given_name_latin": "given_name_latin",
    "patronymic_latin": "patronymic_latin", "sex": "sex", "settlement": "home_settlement", "oblast": "home_oblast",
    "circumstances": "circumstances", "category": "category", "last_known_location": "last_known_location",
    "icrc_reference": "icrc_reference", "nib_reference": "nib_reference",
}
# What a stored child holds when nothing is known: a matched child's field with this is filled from the row.
_UNKNOWN = {"sex": Child.Sex.UNKNOWN, "category": Child.Category.UNKNOWN}
# The handover document's own fields of a row, as the entry keeps them.
HANDED_OVER_FIELDS = ("family_name", "given_name", "patronymic", "family_name_latin", "given_name_latin",
                      "patronymic_latin", "birth_date_text", "sex", "settlement", "oblast", "circumstances",
                      "category", "last_known_location")


def _child_fields(data: dict[str, Any]) -> dict[str, Any]:
    """A new child's fields from a row: what the row gives, the model's defaults for the rest."""
    fields = {name: data[key] for key, name in _CHILD_FIELDS.items() if data.get(key)}
    fields["family_name"], fields["given_name"] = data["family_name"], data["given_name"]
    if data.get("birth_date"):
        fields["birth_date"] = datetime.date.fromisoformat(data["birth_date"])
        fields["birth_date_precision"] = data["birth_date_precision"]
    if data.get("last_known_on"):
        fields["last_known_on"] = datetime.date.fromisoformat(data["last_known_on"])
    if data.get("name_as_written"):
        # Words in brackets beside the name ("Бондар (Мельник)"), left out of it by the reader.
        fields["notes"] = f"Name as listed: {data['name_as_written']}"
    return fields


def as_handed_over(data: dict[str, Any]) -> dict[str, Any]:
    """A row as the list handed it over, for its entry: the document prints this, not the child as stored."""
    return {key: data[key] for key in HANDED_OVER_FIELDS if data.get(key) and data[key] != "U"}


def _children_fill_blanks(rows: list[ImportRow], *, source: str, actor: User | None) -> int:
    """A matched child's blank fields (no patronymic, birth date, sex, home, category ...) filled from
    the row, in bulk, each change in the child's history. Names and anything already known stay."""
    changed: dict[int, tuple[Child, set[str]]] = {}
    for row in rows:
        child = cast(Child, row.child)
        fields = _child_fields(row.data)
        names: set[str] = set()
        for name, value in fields.items():
            if name in ("family_name", "given_name", "circumstances", "birth_date_precision"):
                continue
            current = getattr(child, name)
            if value and (current in ("", None) or current == _UNKNOWN.get(name)):
                setattr(child, name, value)
                names.add(name)
                if name == "birth_date":
                    child.birth_date_precision = fields["birth_date_precision"]
                    names.add("birth_date_precision")
        if names:
            changed[child.pk] = (child, names)
    if not changed:
        return 0
    children = [child for child, _names in changed.values()]
    now = timezone.now()
    for child in children:
        child.fill_derived()
        child.updated_at = now
    written = sorted({name for _child, names in changed.values() for name in names})
    update_instances(children, Child, [*written, "family_name_latin", "given_name_latin", "patronymic_latin",
                                       "search_names", "updated_at"])
    record_history(Child, list(changed), history_type=CHANGED, user=actor,
                   reason=f"Blank fields filled from {source}")
    if MATCH_FIELDS & set(written):
        sync_match_keys_many([child for child, names in changed.values() if MATCH_FIELDS & names])
    return len(changed)


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
