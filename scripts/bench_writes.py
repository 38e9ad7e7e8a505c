"""Writes of many rows: a reply recorded, and lists imported against the stored children."""

from __future__ import annotations

import datetime
import functools
import random
import re
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from scripts.bench_common import Results, Row, timed
from scripts.bench_fill import bench_superuser, make_list
from scripts.bench_sql import Raw, captured, short_sql

TARGET_IMPORT_S = 10.0


# --- A reply of many rows ---------------------------------------------------------------------------


OUTCOME_DRAW = [("not_found", 35), ("located", 20), ("no_information", 20), ("never_on_territory", 10),
                ("returned", 5), ("refused", 5), ("now_adult", 5)]


def raw_reply(raw: Raw, list_id: int, entry_outcomes: list[tuple[int, str]], received: datetime.date,
              actor_id: int) -> float:
    """The reply's writes by hand, in a transaction rolled back: the reply, its outcomes, the entries
    answered, their flags resolved, the waiting cases moved with their history row, a timeline line per
    child, the list's status. Returns seconds."""
    ids = [e for e, _ in entry_outcomes]
    said = [o for _, o in entry_outcomes]
    started = time.perf_counter()
    with raw.conn.cursor() as cursor:
        cursor.execute("BEGIN")
        try:
            cursor.execute("""
                INSERT INTO tracker_reply (created_at, updated_at, handover_list_id, received_from_id, received_on,
                    reference, document, notes, recorded_by_id)
                SELECT now(), now(), id, recipient_id, %s, '', '', '', %s FROM tracker_handoverlist WHERE id = %s
                RETURNING id""", [received, actor_id, list_id])
            reply_id = cursor.fetchone()[0]  # type: ignore[index]
            cursor.execute("CREATE TEMP TABLE said ON COMMIT DROP AS "
                           "SELECT * FROM unnest(%s::bigint[], %s::text[]) AS v(entry_id, outcome)", [ids, said])
            cursor.execute("""
                INSERT INTO tracker_replyoutcome (created_at, updated_at, reply_id, entry_id, outcome, details,
                    reported_location, verification, verification_note)
                SELECT now(), now(), %s, entry_id, outcome, '', '', 'unverified', '' FROM said""", [reply_id])
            cursor.execute("""
                UPDATE tracker_listentry e SET reply_state = 'answered', last_outcome = s.outcome, answered_on = %s,
                    updated_at = now()
                FROM said s WHERE e.id = s.entry_id""", [received])
            cursor.execute("""
                UPDATE tracker_flag SET resolved_at = now(), resolution = 'answered', resolved_by_id = %s
                WHERE entry_id IN (SELECT entry_id FROM said) AND resolved_at IS NULL
                  AND kind IN ('overdue', 'due_soon')""", [actor_id])
            cursor.execute("""
                WITH moving AS (
                    SELECT c.id, c.status AS from_status,
                           CASE WHEN s.outcome IN ('located', 'returned') THEN 'verifying' ELSE 'reply_received' END
                               AS to_status
                    FROM said s JOIN tracker_listentry e ON e.id = s.entry_id JOIN cases_case c ON c.id = e.case_id
                    WHERE c.status = 'awaiting_reply'
                ), moved AS (
                    UPDATE cases_case c SET status = m.to_status, updated_at = now() FROM moving m WHERE c.id = m.id
                    RETURNING c.id, m.from_status, m.to_status
                ), lines AS (
                    INSERT INTO cases_caseevent (case_id, kind, from_status, to_status, actor_id, happened_at, message,
                                                 data)
                    SELECT e.case_id, 'reply_recorded', coalesce(m.from_status, ''), coalesce(m.to_status, ''), %s,
                           now(), 'Reply of ' || %s || ' #' || e.position,
                           jsonb_build_object('outcome', s.outcome, 'reply', %s)
                    FROM said s JOIN tracker_listentry e ON e.id = s.entry_id LEFT JOIN moved m ON m.id = e.case_id
                )
                INSERT INTO cases_historicalcase (id, created_at, updated_at, child_id, status, assignee_id, priority,
                    opened_on, closed_on, closing_reason, closing_note, history_date, history_type, history_user_id,
                    history_change_reason)
                SELECT c.id, c.created_at, now(), c.child_id, m.to_status, c.assignee_id, c.priority, c.opened_on,
                       c.closed_on, c.closing_reason, c.closing_note, now(), '~', %s, 'Reply recorded'
                FROM moved m JOIN cases_case c ON c.id = m.id""", [actor_id, str(received), reply_id, actor_id])
            cursor.execute("""
                UPDATE tracker_handoverlist l SET updated_at = now(), status = CASE WHEN EXISTS (
                    SELECT 1 FROM tracker_listentry e WHERE e.handover_list_id = l.id AND e.reply_state = 'awaiting')
                    THEN 'partially_answered' ELSE 'answered' END
                WHERE l.id = %s""", [list_id])
            took = time.perf_counter() - started
        finally:
            cursor.execute("ROLLBACK")
    return took


def measure_reply(results: Results, raw: Raw, rng: random.Random, today: datetime.date, sizes: Sequence[int]) -> None:
    from tracker.models import HandoverList
    from tracker.services.exchange import OutcomeInput, reply_record

    actor = bench_superuser()
    draw = [o for o, weight in OUTCOME_DRAW for _ in range(weight)]
    counts: dict[int, int] = {}
    for n in sizes:
        list_id = make_list(raw.conn, entries=n, reference=f"BENCH-REPLY-{n}-{time.time_ns()}",
                            handed=today - datetime.timedelta(days=40), due=today - datetime.timedelta(days=10),
                            rng=rng)
        handover_list = HandoverList.objects.get(pk=list_id)
        entry_ids = list(handover_list.entries.order_by("position").values_list("id", flat=True))
        pairs = [(entry_id, rng.choice(draw)) for entry_id in entry_ids]
        baseline = raw_reply(raw, list_id, pairs, today, actor.pk)
        outcomes = [OutcomeInput(entry_id=entry_id, outcome=said) for entry_id, said in pairs]
        with captured() as queries:
            took, recorded = timed(f"reply of {n:,} rows recorded (reply_record)", functools.partial(
                reply_record, handover_list=handover_list, received_on=today, outcomes=outcomes, actor=actor))
        counts[n] = len(queries)
        kinds: dict[str, int] = {}
        db = queries.seconds
        for query in queries:
            verb = query["sql"].lstrip().split(" ", 1)[0].upper()
            kinds[verb] = kinds.get(verb, 0) + 1
        print(f"      {len(queries):,} queries ({', '.join(f'{k} {v:,}' for k, v in sorted(kinds.items()))}), "
              f"{db:.2f} s of them in the database as timed by Django; raw SQL {baseline:.2f} s; "
              f"{recorded.cases_moved:,} cases moved, {recorded.flags_resolved:,} flags resolved", flush=True)
        if n == max(sizes):
            results.add(Row(f"reply of {n:,} rows recorded (reply_record, list of {n:,} handed-over entries)",
                            f"{took:.2f} s", f"{baseline:.2f} s", f"{took / baseline:.0f}×",
                            f"{len(queries):,}"))
            if len(queries) > 100:
                per_row = sorted(kinds.items(), key=lambda kv: -kv[1])
                results.problems.append(
                    f"### Recording a reply of {n:,} rows: {len(queries):,} queries, {took:.1f} s "
                    f"(raw SQL {baseline:.2f} s)\n\n"
                    f"`tracker.services.exchange.reply_record` writes each answered entry's case on its own: "
                    f"{', '.join(f'{k} {v:,}' for k, v in per_row)} statements for {n:,} rows, "
                    f"{db:.1f} s of them in the database as timed by Django. A sample of the repeated statements:\n\n"
                    "```sql\n" + "\n".join(short_sql(q["sql"], 300) for q in _repeated(queries)) + "\n```")
    small, large = min(sizes), max(sizes)
    flat = counts[small] == counts[large]
    results.add(Row(f"reply: queries for {small:,} rows vs {large:,} rows", f"{counts[small]:,} vs {counts[large]:,}",
                    queries="flat" if flat else "grows with the rows", met=flat))


def _repeated(queries: list[dict[str, str]], show: int = 6) -> list[dict[str, str]]:
    """The statements that repeat most, by shape (numbers and quoted values blanked)."""
    shapes: dict[str, list[dict[str, str]]] = {}
    for query in queries:
        shape = re.sub(r"'[^']*'|\b\d+\b", "?", query["sql"])
        shapes.setdefault(shape, []).append(query)
    common = sorted(shapes.values(), key=len, reverse=True)[:show]
    return [{"sql": f"-- ×{len(group):,}: " + group[0]["sql"], "time": "0"} for group in common]


# --- Imports -----------------------------------------------------------------------------------------


class ImportClock:
    """Wraps the import's reading and matching (in this process only) to say where its time goes."""

    def __init__(self) -> None:
        import tracker.services.imports as imports
        from tracker import spreadsheets

        self.imports, self.spreadsheets = imports, spreadsheets
        self.read = self.read_cpu = self.match = self.match_cpu = 0.0
        self._parse = spreadsheets.parse_list
        self._find = imports.find_candidates

        def parse(*args: Any, **kwargs: Any) -> Any:
            return self._clock("read", self._parse, args, kwargs)

        def find(*args: Any, **kwargs: Any) -> Any:
            return self._clock("match", self._find, args, kwargs)

        spreadsheets.parse_list = parse
        imports.find_candidates = find

    def _clock(self, what: str, function: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            setattr(self, what, getattr(self, what) + time.perf_counter() - started)
            setattr(self, f"{what}_cpu", getattr(self, f"{what}_cpu") + time.process_time() - cpu)

    def reset(self) -> None:
        self.read = self.read_cpu = self.match = self.match_cpu = 0.0

    def restore(self) -> None:
        self.spreadsheets.parse_list = self._parse
        self.imports.find_candidates = self._find


def variant(rng: random.Random, person: dict[str, object]) -> dict[str, object]:
    """A stored child as another body writes it: Latin, Russian given name, capitals, year only, swapped."""
    from cases.matching import names

    row = dict(person)
    how = rng.choice(["latin", "russian", "capitals", "year", "swapped", "no_patronymic"])
    if how == "latin":
        for field in ("family_name", "given_name", "patronymic"):
            row[field] = names.transliterate_uk(str(row[field]))
    elif how == "russian":
        row["given_name"] = row["given_russian"]
    elif how == "capitals":
        row["family_name"] = str(row["family_name"]).upper()
    elif how == "year":
        row["birth_date_precision"] = "year"
    elif how == "swapped":
        row["family_name"], row["given_name"] = row["given_name"], row["family_name"]
    else:
        row["patronymic"] = ""
    return row


def list_csv(rows: list[dict[str, object]]) -> bytes:
    lines = ["№;Прізвище;Ім'я;По батькові;Дата народження;Стать;Населений пункт"]
    for number, row in enumerate(rows, start=1):
        birth = row["birth_date"]
        assert isinstance(birth, datetime.date)
        date = f"{birth:%Y}" if row["birth_date_precision"] == "year" else f"{birth:%d.%m.%Y}"
        lines.append(f"{number};{row['family_name']};{row['given_name']};{row['patronymic']};{date};"
                     f"{'ж' if row['sex'] == 'F' else 'ч'};{row['home_settlement']}")
    return ("\n".join(lines) + "\n").encode("utf-8-sig")


def import_list(population: Any, sample: list[dict[str, object]], rng: random.Random, rows: int, label: str,
                seen: set[frozenset[str]], clock: ImportClock) -> dict[str, Any]:
    """One list imported through the product's services; returns its times and query counts. `seen`
    keeps the lists of one run apart: each names other stored children, and new children no list
    named before."""
    from cases.matching import names
    from tracker.models import ImportBatch, ImportRow, Organisation
    from tracker.services.imports import (
        import_batch_create,
        import_batch_run,
        import_batch_start,
        import_batch_validate,
    )

    # One row per child: two rows the engine takes for one child refuse the whole file, as they should.
    def unique(people: Iterator[dict[str, object]], wanted: int) -> list[dict[str, object]]:
        kept = []
        for person in people:
            family, given = str(person["family_name"]), str(person["given_name"])
            identity = frozenset((names.latin_key(family), names.latin_key(given),
                                  names.canonical_given_name(family), names.canonical_given_name(given)))
            if identity not in seen:
                seen.add(identity)
                kept.append(person)
            if len(kept) == wanted:
                break
        return kept

    shuffled = rng.sample(sample, len(sample))
    known = [variant(rng, person) for person in unique(iter(shuffled), rows // 2)]
    new = unique((population.child() for _ in iter(int, 1)), rows - len(known))
    listed = known + new
    rng.shuffle(listed)
    sender = Organisation.objects.get(name="Ukrainian delegation")
    recipient = Organisation.objects.get(name="Russian delegation")
    for attempt in range(1, 4):
        batch = import_batch_create(kind=ImportBatch.Kind.LIST, content=list_csv(listed),
                                    file_name=f"bench-{label}-{attempt}.csv", actor=None, sender=sender,
                                    recipient=recipient, reference=f"BENCH-{label}-{attempt}-{time.time_ns()}",
                                    handed_over_on=datetime.date(2025, 6, 2),
                                    response_due_on=datetime.date(2025, 7, 2))
        clock.reset()
        with captured() as checking:
            checked, batch = timed(f"import {len(listed):,} rows: read, check and match",
                                   functools.partial(import_batch_validate, batch_id=batch.pk))
        if batch.status == ImportBatch.Status.VALIDATED:
            break
        # Two made-up rows the engine takes for one child refuse the file, as a real list would be
        # refused: drop the later line of each pair, as a case worker would, and import again.
        # (Two rows alike, or two rows the engine takes for one stored child.)
        twins = {error["line"] for error in batch.errors
                 if "the same child as line" in error["reason"] or "the same stored child" in error["reason"]}
        assert twins and len(twins) == len(batch.errors), batch.errors[:5]
        print(f"  (refused for {len(twins)} line(s) naming one child twice; those lines dropped)")
        listed = [row for number, row in enumerate(listed, start=2) if number not in twins]
    assert batch.status == ImportBatch.Status.VALIDATED, batch.errors[:5]
    read, match, match_cpu = clock.read, clock.match, clock.match_cpu
    verdicts = {v: batch.rows.filter(verdict=v).count() for v in ImportRow.Verdict.values}
    batch = import_batch_start(batch=batch, actor=None, proposed="reject", repeats_confirmed=True)
    cpu = time.process_time()
    with captured() as writing:
        written, batch = timed(f"import {len(listed):,} rows: write list, children, cases",
                               functools.partial(import_batch_run, batch_id=batch.pk, actor=None))
    write_cpu = time.process_time() - cpu
    assert batch.status == ImportBatch.Status.DONE, batch.errors[:5]
    check_db = checking.seconds
    write_db = writing.seconds
    total = checked + written
    print(f"  import {len(listed):,} rows in all{'':<40} {total:8.2f} s   (verdicts: "
          f"{', '.join(f'{k} {v}' for k, v in verdicts.items() if v)}; {len(known):,} rows were stored children)")
    print(f"      read {read:.2f} s; check (rest of the preview) {checked - read - match:.2f} s; match {match:.2f} s "
          f"(Python {match_cpu:.2f} s); write {written:.2f} s (Python {write_cpu:.2f} s); database time as timed "
          f"by Django: preview {check_db:.2f} s in {len(checking)} queries, write {write_db:.2f} s in "
          f"{len(writing)} queries", flush=True)
    return {"rows": len(listed), "total": total, "read": read, "check": checked - read - match, "match": match,
            "match_cpu": match_cpu, "write": written, "write_cpu": write_cpu, "queries": len(checking) + len(writing),
            "check_queries": len(checking), "write_queries": len(writing), "db": check_db + write_db}


def measure_import(results: Results, population: Any, sample: list[dict[str, object]], rng: random.Random,
                   rows: int, imports: int, small_rows: int) -> None:
    clock = ImportClock()
    try:
        seen: set[frozenset[str]] = set()
        runs = [import_list(population, sample, rng, rows, f"{rows}-{n}-{time.time_ns()}", seen, clock)
                for n in range(1, imports + 1)]
        small = import_list(population, sample, rng, small_rows, f"{small_rows}-{time.time_ns()}", seen, clock)
    finally:
        clock.restore()
    totals = [r["total"] for r in runs]
    middle = sorted(runs, key=lambda r: r["total"])[len(runs) // 2]
    median = statistics.median(totals)
    met = median < TARGET_IMPORT_S
    results.add(Row(f"import of {rows:,} rows against the stored children, median of {len(runs)} lists",
                    f"{median:.2f} s (each {', '.join(f'{t:.2f}' for t in totals)} s)",
                    "n/a (the matching is the engine's Python)", "—",
                    f"{middle['queries']}", f"< {TARGET_IMPORT_S:g} s", met))
    if not met:
        results.problems.append(
            f"### Import of {rows:,} rows: median {median:.2f} s, over the {TARGET_IMPORT_S:g} s target\n\n"
            f"The median list: reading the file {middle['read']:.2f} s; checking the rows {middle['check']:.2f} s; "
            f"matching {middle['match']:.2f} s, of which Python (the engine) {middle['match_cpu']:.2f} s and the "
            f"rest the candidate queries; writing {middle['write']:.2f} s, of which Python "
            f"{middle['write_cpu']:.2f} s. "
            f"The database's share as timed by Django: {middle['db']:.2f} s in {middle['queries']} queries. Wall "
            f"time beyond Python and the database is waiting for a core (the machine has two).")
    results.add(Row("import: where the time goes (the median list)",
                    f"read {middle['read']:.2f} s, check {middle['check']:.2f} s, match {middle['match']:.2f} s "
                    f"(Python {middle['match_cpu']:.2f} s), write {middle['write']:.2f} s "
                    f"(Python {middle['write_cpu']:.2f} s); database {middle['db']:.2f} s in all"))
    results.add(Row(f"import: queries for {small['rows']:,} rows vs {middle['rows']:,} rows",
                    f"{small['queries']} vs {middle['queries']} (preview {small['check_queries']} vs "
                    f"{middle['check_queries']}, write {small['write_queries']} vs {middle['write_queries']})",
                    queries=f"{small['queries']} vs {middle['queries']}"))
