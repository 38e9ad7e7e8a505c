"""Import a handover list, or a reply to one, from a CSV or XLSX file.

    python manage.py import_list FILE --from ORG --to ORG [--handed-over DATE --due DATE] [--reference REF]
    python manage.py import_list FILE --reply-to LIST_REF --received DATE [--reference REPLY_REF]
    [--columns "Прізище=family_name,Примітка=ignore" | --columns mapping.txt]
    [--outcomes "розыск продолжается=not_found" | --outcomes phrases.txt] [--confirm-repeats]

Every row is checked first; a file with any bad row imports nothing and every bad row is printed
with its line, column and reason. Each child is matched to the stored children: the same child is
used again, a new one is added when nothing is close. A proposed match (possibly a stored child)
needs a person: by default nothing is imported and the command names the admin page where a case
worker decides them and confirms; `--proposed accept` uses the stored child for every one,
`--proposed new` adds a new child for every one. The same file imported twice does nothing the
second time.

Headers the reader does not know are mapped with --columns (header=field, or header=ignore), reply
phrases with --outcomes (phrase=outcome); either as a comma-separated list or a file of such lines.
The columns read, the ones left unread and anything read by inference (a header with a typo, a
totals row skipped) are printed. A child still awaiting a reply from the same recipient is listed
again only with --confirm-repeats.
"""

from __future__ import annotations

import datetime
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.urls import reverse

from tracker import spreadsheets
from tracker.models import HandoverList, ImportBatch, ImportRow, Organisation, Outcome
from tracker.services.exchange import ExchangeError
from tracker.services.imports import (
    AlreadyImported,
    import_batch_create,
    import_batch_repeats,
    import_batch_run,
    import_batch_start,
    import_batch_validate,
)

BAR_WIDTH = 30


def _date(option: str, value: str | None) -> datetime.date | None:
    if value is None:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"{option}: '{value}' is not a date (YYYY-MM-DD)") from error


def _organisation(option: str, name: str | None) -> Organisation | None:
    if name is None:
        return None
    found = list(Organisation.objects.filter(Q(name__iexact=name) | Q(short_name__iexact=name))[:2])
    if len(found) != 1:
        raise CommandError(f"{option}: {'no' if not found else 'more than one'} organisation named '{name}'")
    return found[0]


def _pairs(option: str, value: str | None) -> dict[str, str]:
    """"A=b,C=d", or the path of a file of such pairs (one a line, or comma-separated)."""
    if not value:
        return {}
    path = Path(value)
    text = value
    if "=" not in value or path.is_file():
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as error:
            raise CommandError(f"{option}: '{value}' is neither header=field pairs nor a readable file ({error})"
                               ) from error
    pairs = {}
    for item in (piece for line in text.splitlines() for piece in line.split(",")):
        if not item.strip():
            continue
        name, sep, target = item.rpartition("=")
        if not sep or not name.strip():
            raise CommandError(f"{option}: '{item.strip()}' is not a pair (write name=value)")
        pairs[name.strip()] = target.strip()
    return pairs


class Command(BaseCommand):
    help = "Import a handover list (--from/--to) or a reply (--reply-to) from a CSV or XLSX file."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--from", dest="sender", help="the organisation that hands the list over (required "
                                                          "for a list)")
        parser.add_argument("--to", dest="recipient", help="the organisation that receives it (required for a list)")
        parser.add_argument("--handed-over", help="YYYY-MM-DD; without it the list stays a draft")
        parser.add_argument("--due", help="YYYY-MM-DD, the reply deadline")
        parser.add_argument("--reference", default="", help="the list's reference (else its column in the file), "
                                                            "or the reply's own reference")
        parser.add_argument("--reply-to", help="the reference of the list this file replies to (required for a reply)")
        parser.add_argument("--received", help="YYYY-MM-DD, when the reply was received (required with --reply-to)")
        parser.add_argument("--columns", help="headers to read as fields: 'Прізище=family_name,Примітка=ignore', or "
                                              "a file of such pairs. Fields: " + ", ".join(
                                                  dict.fromkeys([*spreadsheets.LIST_COLUMNS,
                                                                 *spreadsheets.REPLY_COLUMNS])))
        parser.add_argument("--outcomes", help="reply phrases to read as outcomes: 'розыск продолжается=not_found', "
                                               "or a file of such pairs")
        parser.add_argument("--confirm-repeats", action="store_true",
                            help="list children still awaiting a reply from the same recipient again")
        parser.add_argument("--proposed", choices=["review", "accept", "new"], default="review",
                            help="what to do with proposed matches: leave them for review in the admin (default), "
                                 "accept the stored child, or add new children")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        try:
            content = path.read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error}") from error
        reply_to = options["reply_to"]
        handover_list = None
        if reply_to:
            handover_list = HandoverList.objects.filter(reference=reply_to).first()
            if handover_list is None:
                raise CommandError(f"--reply-to: no list {reply_to}")
        try:
            batch = import_batch_create(
                kind=ImportBatch.Kind.REPLY if reply_to else ImportBatch.Kind.LIST, content=content,
                file_name=path.name, actor=None, reference=options["reference"],
                sender=_organisation("--from", options["sender"]),
                recipient=_organisation("--to", options["recipient"]),
                handed_over_on=_date("--handed-over", options["handed_over"]),
                response_due_on=_date("--due", options["due"]),
                handover_list=handover_list, received_on=_date("--received", options["received"]),
                column_mapping=_pairs("--columns", options["columns"]),
                outcome_mapping=_pairs("--outcomes", options["outcomes"]),
            )
        except AlreadyImported as error:
            self.stdout.write(str(error).split(": ", 1)[1])
            return
        except ExchangeError as error:
            raise CommandError(str(error)) from error

        batch = import_batch_validate(batch_id=batch.pk, progress=self._bar("checking"))
        self._report_columns(batch)
        if batch.status == ImportBatch.Status.FAILED:
            for problem in batch.errors:
                where = f"line {problem['line']}" if problem["line"] else "file"
                column = f", {problem['column']}" if problem["column"] else ""
                self.stderr.write(f"{where}{column}: {problem['reason']}")
            if batch.summary.get("headers_found"):
                fields = spreadsheets.LIST_COLUMNS if batch.kind == ImportBatch.Kind.LIST else \
                    spreadsheets.REPLY_COLUMNS
                self.stderr.write("headers expected, by field (any one of): ")
                for field_name, names in fields.items():
                    self.stderr.write(f"  {field_name}: {', '.join(names[:6])}")
            if batch.summary.get("unknown_phrases"):
                self.stderr.write("map these phrases with --outcomes \"phrase=outcome,…\" (outcomes: "
                                  + ", ".join(Outcome.values) + "):")
                for phrase in batch.summary["unknown_phrases"]:
                    self.stderr.write(f"  {phrase}")
            raise CommandError(f"{path.name} refused: {len(batch.errors)} problem(s); nothing was imported")

        repeats = import_batch_repeats(batch) if batch.kind == ImportBatch.Kind.LIST else []
        if repeats and not options["confirm_repeats"]:
            for repeat in repeats:
                maybe = " (if the proposed match is accepted)" if repeat["proposed"] else ""
                self.stderr.write(f"line {repeat['line']}: {repeat['child']} is still awaiting a reply on "
                                  f"{repeat['list']} as #{repeat['position']}{maybe}")
            raise CommandError(f"{len(repeats)} child(ren) are still awaiting a reply from {batch.recipient}: run "
                               "again with --confirm-repeats to list them again; nothing was imported")

        proposed = batch.rows.filter(verdict=ImportRow.Verdict.PROPOSED).select_related("child")
        if proposed.exists() and options["proposed"] == "review":
            for row in proposed:
                self.stderr.write(f"line {row.line_number}: {row.data['family_name']} {row.data['given_name']} "
                                  f"may be child {row.child_id} ({row.child}), score {row.score}")
            url = reverse("admin:tracker_importbatch_change", args=[batch.pk])
            raise CommandError(f"{proposed.count()} proposed match(es) await review: decide them and confirm at "
                               f"{url} (or run again with --proposed accept / new); nothing was imported")
        decision = {"accept": ImportRow.Decision.ACCEPT, "new": ImportRow.Decision.REJECT}.get(options["proposed"], "")
        try:
            batch = import_batch_start(batch=batch, actor=None, proposed=decision,
                                       repeats_confirmed=options["confirm_repeats"])
        except ExchangeError as error:
            raise CommandError(str(error)) from error
        batch = import_batch_run(batch_id=batch.pk, actor=None, progress=self._bar("importing"))
        if batch.status != ImportBatch.Status.DONE:
            for problem in batch.errors:
                self.stderr.write(f"line {problem['line'] or '-'}: {problem['reason']}")
            raise CommandError(f"{path.name} refused while importing; nothing was imported")
        summary = batch.summary
        if batch.kind == ImportBatch.Kind.LIST:
            self.stdout.write(
                f"{summary['list']}: {summary['rows']} rows, {summary['matched']} matched, "
                f"{summary['accepted']} proposed and accepted, {summary['new']} new, 0 errors"
            )
        else:
            self.stdout.write(f"reply to {batch.handover_list}: {summary['answered']} answered, "
                              f"{summary['flags_resolved']} flag(s) cleared, 0 errors")

    def _report_columns(self, batch: ImportBatch) -> None:
        """The columns read and the ones left unread, and what was read by inference, as the preview shows."""
        summary = batch.summary
        if summary.get("columns"):
            read = ", ".join(f"{header} → {field_name}" for field_name, header in summary["columns"].items())
            self.stdout.write(f"columns read: {read}")
        if summary.get("ignored_columns"):
            self.stdout.write(f"columns ignored: {', '.join(summary['ignored_columns'])}")
        for notice in summary.get("notices", []):
            self.stdout.write(f"note: {notice}")

    def _bar(self, label: str) -> Any:
        """A progress line on stderr, redrawn in place; silent when stderr is not a terminal."""
        interactive = sys.stderr.isatty()

        def show(done: int, total: int) -> None:
            if not interactive or not total:
                return
            filled = BAR_WIDTH * done // total
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()

        return show
